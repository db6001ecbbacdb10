"""``caption(video)``: a scene paragraph and a timeline of events with second-precise spans."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from vidspan.models.base import VideoModel
from vidspan.parse import parse_caption
from vidspan.timeline import WindowEvents, merge_windows, text_similarity
from vidspan.types import Caption, Event
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
    per_window: list[WindowEvents] = []
    scenes: list[str] = []
    raws: list[str] = []
    violations: list[str] = []
    spans = []
    for item in windows:
        clip = item.clip
        generation = vm.generate(clip, text, max_new_tokens=budget)
        for stage, seconds in generation.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        t0 = time.perf_counter()
        parsed = parse_caption(generation.text, duration_seconds=clip.window.duration, strict=strict)
        timings["parse"] = timings.get("parse", 0.0) + time.perf_counter() - t0
        offset = clip.window.start
        events = tuple(Event(e.span.shift(offset), e.description) for e in parsed.events)
        per_window.append(WindowEvents(clip.window, events))
        spans.append(clip.window)
        if parsed.scene and all(text_similarity(parsed.scene, s) < 0.6 for s in scenes):
            scenes.append(parsed.scene)
        prefix = f"[window {item.index + 1}/{item.total}: {clip.window.start:.1f}-{clip.window.end:.1f} s] "
        violations += [(prefix + v) if item.total > 1 else v for v in parsed.violations]
        raws.append(generation.text if item.total == 1 else prefix.strip() + "\n" + generation.text)
    timings.update(settings.timings)
    timings["total"] = time.perf_counter() - started
    record = settings.to_dict() | vm.settings() | {"prompt": text, "max_new_tokens": budget}
    return Caption(
        scene="\n\n".join(scenes),
        events=merge_windows(per_window),
        raw="\n\n".join(raws),
        model=vm.name,
        violations=tuple(violations),
        windows=tuple(spans),
        settings=record,
        timings=timings,
    )
