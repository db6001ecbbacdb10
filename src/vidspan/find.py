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
from vidspan.windows import ModelLike, Progress, VideoLike, iter_window_clips, load_model, sampling_for

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
    fps: float | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    window_seconds: float | None = None,
    overlap_seconds: float | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    **model_options: Any,
) -> Grounding | list[Grounding]:
    """Find when something happens in a video.

    Every window of a long video is asked; the answer with the highest score (mean token probability
    when the backend reports it) wins, and its span is returned in source seconds. Several queries about
    one video decode it once.

    Args:
        video: Path of a video file.
        query: What to look for (``"a person opens the door"``), or a list of such queries.
        model: Model name, alias, hub id, checkpoint directory, or a loaded :class:`VideoModel`.
        sampling: Frame sampling settings; the keyword overrides below win over it.
        fps: Target sampling rate (default 2.0).
        min_frames: Fewest frames per window (default 4).
        max_frames: Most frames per window (default 240).
        max_pixels: Per-frame pixel budget (default 200704).
        min_pixels: Per-frame pixel floor (default 128 tokens).
        window_seconds: Length of one model window (default ``max_frames / fps``).
        overlap_seconds: Overlap between neighbouring windows (default 10).
        prompt: Replace the family's grounding prompt; ``{event}`` is replaced by the query.
        max_new_tokens: Generation budget (default: the family's).
        strict: Raise :class:`vidspan.errors.ParseError` when an answer breaks the format.
        progress: ``progress(done, total, message)`` callback.
        **model_options: Passed to :func:`vidspan.get_model` when ``model`` is a name.

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
    vm = load_model(model, **model_options)
    settings = sampling_for(
        vm.family.patch_factor,
        sampling,
        fps=fps,
        min_frames=min_frames,
        max_frames=max_frames,
        max_pixels=max_pixels,
        min_pixels=min_pixels,
        window_seconds=window_seconds,
        overlap_seconds=overlap_seconds,
    )
    template = prompt if prompt is not None else vm.family.find_prompt
    prompts = [template.replace("{event}", q.strip()) for q in queries]
    budget = max_new_tokens or vm.family.find_max_new_tokens
    timings: dict[str, float] = {"load": time.perf_counter() - started}

    candidates: list[list[Grounding]] = [[] for _ in queries]
    for item in iter_window_clips(video, settings, progress=progress):
        generations = vm.generate_many(item.clip, prompts, max_new_tokens=budget)
        for generation in generations:
            for stage, seconds in generation.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        t0 = time.perf_counter()
        for i, (q, generation) in enumerate(zip(queries, generations, strict=True)):
            candidates[i].append(
                candidate_from_generation(vm.family.output_format, q, generation, item.clip, strict, vm.name)
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
