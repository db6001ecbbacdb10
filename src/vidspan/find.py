"""``find(video, query)``: the span of a video where something happens."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, overload

from vidspan.models.base import Generation
from vidspan.parse import parse_span
from vidspan.types import Clip, Grounding
from vidspan.video import SamplingConfig
from vidspan.windows import ModelLike, Progress, VideoLike, iter_window_clips, opened

logger = logging.getLogger(__name__)


@overload
def find(video: VideoLike, query: str, model: ModelLike | None = ..., **kwargs: Any) -> Grounding: ...
@overload
def find(
    video: VideoLike, query: Sequence[str], model: ModelLike | None = ..., **kwargs: Any
) -> list[Grounding]: ...
def find(
    video: VideoLike,
    query: str | Sequence[str],
    model: ModelLike | None = None,
    *,
    sampling: SamplingConfig | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> Grounding | list[Grounding]:
    """Find when something happens in a video.

    Every window of a long video is asked; the answer with the highest score (mean token probability
    when the backend reports it) wins, and its span is returned in source seconds. Several queries about
    one video decode it once.

    Args:
        video: Path of a video file.
        query: What to look for (``"a person opens the door"``), or a list of such queries.
        model: Model name, alias, hub id, checkpoint directory, or a loaded :class:`VideoModel`.
        sampling: Frame sampling settings; keyword overrides in ``options`` win over it.
        prompt: Replace the family's grounding prompt; ``{event}`` is replaced by the query.
        max_new_tokens: Generation budget (default: the family's).
        strict: Raise :class:`vidspan.errors.ParseError` when an answer breaks the format.
        progress: ``progress(done, total, message)`` callback.
        **options: Sampling overrides (:class:`vidspan.windows.SamplingOptions`: ``fps``, ``min_frames``,
            ``max_frames``, ``max_pixels``, ``min_pixels``, ``window_seconds``, ``overlap_seconds``) and,
            when ``model`` is a name, options for :func:`vidspan.get_model` (``device``, ``base_url``...).

    Returns:
        A :class:`Grounding` for one query, a list of them (same order) for several.

    Raises:
        ValueError: an empty query.
        VideoError: the file cannot be read as a video.
        ParseError: ``strict`` and an answer breaks the format.
    """
    single = isinstance(query, str)
    queries = [query] if isinstance(query, str) else list(query)
    if not queries:
        raise ValueError("Invalid query: []. It must name at least one event.")
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"Invalid query: {q!r}. It must be a non-empty string.")
    started = time.perf_counter()
    with opened(video, model, sampling, options) as (reader, vm, settings):
        template = prompt if prompt is not None else vm.family.find_prompt
        prompts = [template.replace("{event}", q.strip()) for q in queries]
        budget = max_new_tokens or vm.family.find_max_new_tokens
        timings: dict[str, float] = {"load": time.perf_counter() - started - settings.timings["probe"]}

        candidates: list[list[Grounding]] = [[] for _ in queries]
        for item in iter_window_clips(reader, settings, progress=progress):
            generations = vm.generate_many(item.clip, prompts, max_new_tokens=budget)
            for generation in generations:
                for stage, seconds in generation.timings.items():
                    timings[stage] = timings.get(stage, 0.0) + seconds
            t0 = time.perf_counter()
            for i, (q, generation) in enumerate(zip(queries, generations, strict=True)):
                candidates[i].append(
                    candidate_from_generation(
                        vm.family.output_format, q, generation, item.clip, strict, vm.name
                    )
                )
            timings["parse"] = timings.get("parse", 0.0) + time.perf_counter() - t0

        timings.update(settings.timings)
        timings["total"] = time.perf_counter() - started
    record = settings.to_dict() | vm.settings() | {"prompt": template, "max_new_tokens": budget}
    results = [best_candidate(c, record, timings) for c in candidates]
    return results[0] if single else results


def candidate_from_generation(
    output_format: str, query: str, generation: Generation, clip: Clip, strict: bool, model: str
) -> Grounding:
    """One window's answer as a :class:`Grounding` in source time (span clipped to the window)."""
    parsed = parse_span(
        generation.text, output_format=output_format, duration_seconds=clip.window.duration, strict=strict
    )
    span = parsed.span.shift(clip.window.start) if parsed.span is not None else None
    score = math.exp(generation.mean_logprob) if generation.mean_logprob is not None else None
    return Grounding(
        query=query,
        raw=generation.text,
        span=span,
        format_ok=parsed.format_ok,
        score=score,
        window=clip.window,
        model=model,
        violations=parsed.violations,
    )


def _rank(candidate: Grounding) -> tuple[int, int, float]:
    """Found spans first, then well-formed answers, then by score."""
    return (
        candidate.span is not None,
        candidate.format_ok,
        candidate.score if candidate.score is not None else -1.0,
    )


def best_candidate(
    candidates: list[Grounding], record: dict[str, Any], timings: dict[str, float]
) -> Grounding:
    """The winning window's answer, with every window's answer kept in ``candidates``."""
    best = max(candidates, key=_rank)  # max keeps the earliest window on ties
    others = tuple(candidates) if len(candidates) > 1 else ()
    return replace(best, candidates=others, settings=record, timings=dict(timings))
