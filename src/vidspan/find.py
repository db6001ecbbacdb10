"""``find(video, query)``: the span of a video where something happens."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, overload

from vidspan.models.base import Generation, VideoModel
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
        timings: dict[str, float] = {"load": time.perf_counter() - started - settings.timings["probe"]}
        clips = (item.clip for item in iter_window_clips(reader, settings, progress=progress))
        results = ground(vm, clips, queries, prompt=prompt, max_new_tokens=max_new_tokens, strict=strict,
                         timings=timings)  # fmt: skip
        timings.update(settings.timings)
        timings["total"] = time.perf_counter() - started
    template = prompt if prompt is not None else vm.family.find_prompt
    budget = max_new_tokens or vm.family.find_max_new_tokens
    record = settings.to_dict() | vm.settings() | {"prompt_template": template, "max_new_tokens": budget}
    results = [
        replace(
            r, settings=record | {"prompt": vm.family.render_find_prompt(q, prompt)}, timings=dict(timings)
        )
        for q, r in zip(queries, results, strict=True)
    ]
    return results[0] if single else results


def ground(
    vm: VideoModel,
    clips: Iterable[Clip],
    queries: Sequence[str],
    *,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
    timings: dict[str, float] | None = None,
) -> list[Grounding]:
    """The grounding loop: ask ``vm`` every query about every clip and keep each query's best answer.

    Every call that grounds (``find``, benchmark runs, search refinement) goes through here. A clip is
    one window of a video; several queries about a clip are answered from one decode of it.

    Args:
        vm: The loaded model.
        clips: The windows' clips, in order (a generator works: each is used once).
        queries: What to look for.
        prompt: A template replacing the family's find prompt (``{event}`` is filled with the query).
        max_new_tokens: Generation budget (default: the family's).
        strict: Raise :class:`vidspan.errors.ParseError` when an answer breaks the format.
        timings: Accumulates per-stage seconds (the backend's stages and ``parse``) when given.

    Returns:
        One :class:`Grounding` per query, in order: the best-ranked window's answer (found spans first,
        then well-formed answers, then by score; the earliest window on ties), with every window's
        answer in ``candidates`` when there were several.
    """
    prompts = [vm.family.render_find_prompt(q, prompt) for q in queries]
    budget = max_new_tokens or vm.family.find_max_new_tokens
    timings = {} if timings is None else timings
    found: list[list[Grounding]] = [[] for _ in queries]
    for clip in clips:
        generations = vm.generate_many(clip, prompts, max_new_tokens=budget)
        for generation in generations:
            for stage, seconds in generation.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        t0 = time.perf_counter()
        for i, (q, generation) in enumerate(zip(queries, generations, strict=True)):
            found[i].append(grounding_from_generation(generation, clip, q, vm, strict=strict))
        timings["parse"] = timings.get("parse", 0.0) + time.perf_counter() - t0
    if not all(found):
        raise ValueError("Invalid clips: none. ground() needs at least one clip.")
    return [_best(candidates) for candidates in found]


def grounding_from_generation(
    generation: Generation, clip: Clip, query: str, vm: VideoModel, *, strict: bool = False
) -> Grounding:
    """One window's answer as a :class:`Grounding` in source time (span clipped to the window)."""
    parsed = parse_span(
        generation.text, output_format=vm.family.output_format, duration_seconds=clip.window.duration,
        strict=strict,
    )  # fmt: skip
    offset = clip.window.start
    span = parsed.span.shift(offset) if parsed.span is not None else None
    written = parsed.as_written
    score = math.exp(generation.mean_logprob) if generation.mean_logprob is not None else None
    return Grounding(
        query=query,
        raw=generation.text,
        span=span,
        format_ok=parsed.format_ok,
        score=score,
        window=clip.window,
        model=vm.name,
        violations=parsed.violations,
        as_written=None if written is None else (written[0] + offset, written[1] + offset),
    )


def _rank(candidate: Grounding) -> tuple[int, int, float]:
    """Found spans first, then well-formed answers, then by score."""
    return (
        candidate.span is not None,
        candidate.format_ok,
        candidate.score if candidate.score is not None else -1.0,
    )


def _best(candidates: list[Grounding]) -> Grounding:
    """The winning window's answer, with every window's answer kept in ``candidates``."""
    best = max(candidates, key=_rank)  # max keeps the earliest window on ties
    return replace(best, candidates=tuple(candidates) if len(candidates) > 1 else ())
