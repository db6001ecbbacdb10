"""``caption(video)``: a scene paragraph and a timeline of events with second-precise spans."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vidspan.models.base import VideoModel
from vidspan.parse import ParsedCaption, parse_caption
from vidspan.timeline import WindowEvents, merge_windows, text_similarity
from vidspan.types import Caption, Event, Span
from vidspan.video import SamplingConfig
from vidspan.windows import (
    ModelLike,
    Progress,
    RunSettings,
    VideoLike,
    WindowClip,
    iter_window_clips,
    opened,
)

logger = logging.getLogger(__name__)


def caption(
    video: VideoLike,
    model: ModelLike | None = None,
    *,
    sampling: SamplingConfig | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> Caption:
    """Describe a video: a scene paragraph plus timed events, in source seconds.

    Args:
        video: Path of a video file.
        model: Model name, alias, hub id, checkpoint directory, or a loaded :class:`VideoModel`
            (default ``marlin-2b``).
        sampling: Frame sampling settings; keyword overrides in ``options`` win over it.
        prompt: Replace the family's caption prompt (not advised for Marlin-2B).
        max_new_tokens: Generation budget per window (default: the family's).
        strict: Raise :class:`vidspan.errors.ParseError` when the model's text breaks the format.
        progress: ``progress(done, total, message)`` callback.
        **options: Sampling overrides (:class:`vidspan.windows.SamplingOptions`: ``fps``, ``min_frames``,
            ``max_frames``, ``max_pixels``, ``min_pixels``, ``window_seconds``, ``overlap_seconds``) and,
            when ``model`` is a name, options for :func:`vidspan.get_model` (``device``, ``base_url``...).

    Returns:
        A :class:`Caption`; ``caption.raw`` keeps the model text (one block per window).

    Raises:
        VideoError: the file cannot be read as a video.
        ParseError: ``strict`` and the answer breaks the format.
    """
    started = time.perf_counter()
    with opened(video, model, sampling, options) as (reader, vm, settings):
        load_seconds = time.perf_counter() - started - settings.timings["probe"]
        windows = iter_window_clips(reader, settings, progress=progress)
        result = caption_windows(vm, windows, settings, prompt=prompt, max_new_tokens=max_new_tokens,
                                 strict=strict, timings={"load": load_seconds})  # fmt: skip
    result.timings["total"] = time.perf_counter() - started
    return result


def caption_windows(
    vm: VideoModel,
    windows: Iterable[WindowClip],
    settings: RunSettings,
    *,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
    timings: dict[str, float] | None = None,
) -> Caption:
    """:func:`caption` over windows already decoded (:func:`vidspan.windows.decode_windows`) by a loaded
    model: what a Ray model actor runs on the clips a decode task sent it."""
    started = time.perf_counter()
    text = prompt if prompt is not None else vm.family.caption_prompt
    budget = max_new_tokens or vm.family.caption_max_new_tokens
    timings = dict(timings or {})
    answers: list[WindowAnswer] = []
    for item in windows:
        clip = item.clip
        generation = vm.generate(clip, text, max_new_tokens=budget)
        for stage, seconds in generation.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        t0 = time.perf_counter()
        parsed = parse_caption(generation.text, duration_seconds=clip.window.duration, strict=strict)
        timings["parse"] = timings.get("parse", 0.0) + time.perf_counter() - t0
        answers.append(WindowAnswer(item.index, item.total, clip.window, generation.text, parsed))
    timings.update(settings.timings)
    timings["total"] = time.perf_counter() - started
    record = settings.to_dict() | vm.settings() | {"prompt": text, "max_new_tokens": budget}
    return assemble_caption(answers, model=vm.name, settings=record, timings=timings)


@dataclass(frozen=True, slots=True)
class WindowAnswer:
    """One window's answer: the model text and its caption, with times in seconds from the window start."""

    index: int
    total: int
    window: Span
    text: str
    parsed: ParsedCaption


def assemble_caption(
    answers: Sequence[WindowAnswer], *, model: str, settings: dict[str, Any], timings: dict[str, float]
) -> Caption:
    """The video's :class:`Caption` from its windows' answers (in window order): events shifted to source
    seconds and merged across overlaps, distinct scenes joined, violations and raw text labelled by window."""
    per_window: list[WindowEvents] = []
    scenes: list[str] = []
    raws: list[str] = []
    violations: list[str] = []
    for answer in answers:
        window, parsed = answer.window, answer.parsed
        events = tuple(Event(e.span.shift(window.start), e.description) for e in parsed.events)
        per_window.append(WindowEvents(window, events))
        if parsed.scene and all(text_similarity(parsed.scene, s) < 0.6 for s in scenes):
            scenes.append(parsed.scene)
        prefix = f"[window {answer.index + 1}/{answer.total}: {window.start:.1f}-{window.end:.1f} s] "
        violations += [(prefix + v) if answer.total > 1 else v for v in parsed.violations]
        raws.append(answer.text if answer.total == 1 else prefix.strip() + "\n" + answer.text)
    return Caption(
        scene="\n\n".join(scenes),
        events=merge_windows(per_window),
        raw="\n\n".join(raws),
        model=model,
        violations=tuple(violations),
        windows=tuple(a.window for a in answers),
        settings=settings,
        timings=timings,
    )
