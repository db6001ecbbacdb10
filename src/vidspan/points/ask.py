"""``point``, ``count`` and ``track``: where the query's object is, how many there are, and where each goes.

One loop serves the three questions. Every window of a long video is asked; each answer is read by the
family's parser (Molmo2's ``<points>``/``<tracks>`` grammar, or Qwen3-VL's JSON ``point_2d``), its times
(seconds since the window start, as the frames' timestamps were given) are put back in source time and
snapped to the true presentation time of the sampled frame they name, and its 0–1000 coordinates become
pixels of the source frame as displayed. Windows overlap; each owns the half of an overlap nearest to it,
so a point seen twice is kept once, and tracks are joined across a boundary where their positions agree
in the overlap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vidspan.models.base import Family
from vidspan.points.formats import ParsedPoints, RawPoint, parse_molmo2, parse_qwen_points
from vidspan.points.results import Counting, Point, Pointing, Track, Tracking, to_pixels
from vidspan.types import Clip, Span
from vidspan.video import SamplingConfig, VideoReader
from vidspan.video.plan import plan_windows
from vidspan.windows import ModelLike, Progress, RunSettings, VideoLike, iter_window_clips, opened

logger = logging.getLogger(__name__)

Task = Literal["point", "count", "track"]
DEFAULT_MODEL = "molmo2"
SNAP_SECONDS = 0.15  # a written time (one decimal) names the sampled frame within this distance
LINK_DISTANCE = 0.1  # tracks meet across windows when their normalised positions are this close


@dataclass(frozen=True, slots=True)
class PointPrompts:
    """A family's prompts for the three questions (``{label}``; ``{fps}`` for tracking) and its parser."""

    point: str
    count: str
    track: str
    parser: Literal["molmo2", "qwen"]
    max_new_tokens: int = 1024

    def render(self, task: Task, label: str, fps: float, template: str | None = None) -> str:
        text = template if template is not None else getattr(self, task)
        return text.replace("{label}", label.strip()).replace("{fps}", f"{fps:g}")


# Molmo2's own prompts: the first of each list in its data formatter (``GENERAL_PROMPTS_V1``), with
# "video" for "image" as its video styles do; counting is the video counting eval's question.
MOLMO2_PROMPTS = PointPrompts(
    point="Point to {label}\nPlease say 'There are none.' if it is not in the video.",
    count='How many "{label}" are there in the video?',
    track="Track {label} in {fps} FPS.",
    parser="molmo2",
)
_QWEN_SHAPE = (
    'Answer in JSON as [{{"time": seconds, {id}"point_2d": [x, y], "label": "{{label}}"}}, ...] with x and y '
    "from 0 to 1000 and the time of the frame in seconds. If there is none, say 'There are none.'"
)
QWEN_PROMPTS = PointPrompts(
    point="Point to every {label} in this video, at each time you see it. " + _QWEN_SHAPE.format(id=""),
    count="Point to each {label} in this video once, at a time it is clearly visible. "
    + _QWEN_SHAPE.format(id=""),
    track="Track every {label} in this video at {fps} FPS: at each sampled time, give the position of "
    "each one, with a number per object that stays the same over time. " + _QWEN_SHAPE.format(id='"id": n, '),
    parser="qwen",
)


def prompts_for(family: Family) -> PointPrompts:
    """Molmo2's prompts for Molmo2 checkpoints, Qwen3-VL's JSON points for every other family."""
    return MOLMO2_PROMPTS if family.name == "molmo2" else QWEN_PROMPTS


def point(video: VideoLike, query: str, model: ModelLike | None = None, **kwargs: Any) -> Pointing:
    """Point at every ``query`` object in a video: points with source time, pixels, id and label.

    Args and raises as :func:`ask_points` (``model`` defaults to Molmo2).
    """
    answer = ask_points("point", video, query, model, **kwargs)
    assert isinstance(answer, Pointing)
    return answer


def count(video: VideoLike, query: str, model: ModelLike | None = None, **kwargs: Any) -> Counting:
    """How many ``query`` objects a video shows, with the points counted. Args as :func:`ask_points`."""
    answer = ask_points("count", video, query, model, **kwargs)
    assert isinstance(answer, Counting)
    return answer


def track(video: VideoLike, query: str, model: ModelLike | None = None, **kwargs: Any) -> Tracking:
    """Track every ``query`` object through a video: id → timed positions. Args as :func:`ask_points`."""
    answer = ask_points("track", video, query, model, **kwargs)
    assert isinstance(answer, Tracking)
    return answer


def ask_points(
    task: Task,
    video: VideoLike,
    query: str,
    model: ModelLike | None = None,
    *,
    sampling: SamplingConfig | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
    span: tuple[float, float] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Pointing | Counting | Tracking:
    """Ask a video where, how many, or where over time: the loop behind ``point``, ``count`` and ``track``.

    Args:
        task: ``"point"``, ``"count"`` or ``"track"``.
        video: Path of a video file.
        query: The object (``"person"``, ``"the red ball"``).
        model: Model name, alias, checkpoint directory, or a loaded :class:`VideoModel` (default Molmo2).
        sampling: Frame sampling settings; keyword overrides in ``options`` win over it.
        prompt: Replace the family's prompt; ``{label}`` is the query, ``{fps}`` the sampling rate.
        max_new_tokens: Generation budget (default 1024).
        strict: Raise :class:`vidspan.errors.ParseError` when an answer breaks the format.
        span: Only ``(start, end)`` seconds of the video (a benchmark's clip); default the whole video.
        progress: ``progress(done, total, message)`` callback.
        **options: Sampling overrides (``fps``, ``max_frames``, ``window_seconds``...) and model options.

    Raises:
        ValueError: an empty query or an unknown task.
        VideoError: the file cannot be read as a video.
        ParseError: ``strict`` and an answer breaks the format.
    """
    if task not in ("point", "count", "track"):
        raise ValueError(f"Invalid task: {task!r}. It must be one of point, count, track.")
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"Invalid query: {query!r}. It must be a non-empty string.")
    started = time.perf_counter()
    with opened(video, model or DEFAULT_MODEL, sampling, options) as (reader, vm, settings):
        prompts = prompts_for(vm.family)
        text = prompts.render(task, query, settings.sampling.fps, prompt)
        budget = max_new_tokens or prompts.max_new_tokens
        answers: list[WindowAnswer] = []
        timings: dict[str, float] = {}
        for clip in _clips(reader, settings, span, progress):
            generation = vm.generate(clip, text, max_new_tokens=budget)
            for stage, seconds in generation.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            answers.append(read_answer(generation.text, clip, prompts.parser, strict=strict))
        info = reader.info
        timings.update(settings.timings)
    timings["total"] = time.perf_counter() - started
    record = settings.to_dict() | vm.settings() | {"task": task, "prompt": text, "max_new_tokens": budget}
    header = {
        "query": query.strip(), "video": str(video), "width": info.width, "height": info.height,
        "duration": info.duration_seconds, "raw": tuple(a.raw for a in answers),
        "violations": _violations(answers), "model": vm.name,
        "windows": tuple(a.window.to_tuple() for a in answers), "settings": record, "timings": timings,
        "frame_times": tuple(sorted({t for a in answers for t in a.frame_times})),
    }  # fmt: skip
    owned = _owned(answers)
    if task == "track":
        return Tracking(**header, tracks=link_tracks(answers, info.width, info.height, query.strip()))
    points = _number([p for a, own in zip(answers, owned, strict=True) for p in a.points_in(own)],
                     info.width, info.height, query.strip())  # fmt: skip
    if task == "point":
        return Pointing(**header, points=points)
    valid = any(a.parsed.count is not None or a.points or a.parsed.empty for a in answers)
    return Counting(**header, points=points, count=_total(answers, owned), valid=valid)


def _clips(reader: VideoReader, settings: RunSettings, span: tuple[float, float] | None,
           progress: Progress | None) -> Iterator[Clip]:  # fmt: skip
    """The windows' clips of the whole video, or of ``span`` only."""
    if span is None:
        yield from (item.clip for item in iter_window_clips(reader, settings, progress=progress))
        return
    info = reader.info
    last = info.start_seconds + info.duration_seconds
    start, end = max(float(span[0]), info.start_seconds), min(float(span[1]), last)
    if not end > start:
        raise ValueError(
            f"Invalid span: {span}. It must overlap the video ({info.start_seconds:g} - {last:.3f} s)."
        )
    windows = plan_windows(end - start, window_seconds=settings.window_seconds,
                           overlap_seconds=settings.overlap_seconds, start_seconds=start)  # fmt: skip
    for i, window in enumerate(windows):
        yield reader.sample(settings.sampling, window=window)
        if progress:
            progress(i + 1, len(windows), f"window {i + 1}/{len(windows)} done")


@dataclass(frozen=True, slots=True)
class WindowAnswer:
    """One window's answer: its points in source seconds (0–1000 coordinates) and what went wrong."""

    window: Span
    points: tuple[RawPoint, ...]
    parsed: ParsedPoints
    frame_times: tuple[float, ...]
    violations: tuple[str, ...]
    raw: str

    def points_in(self, own: tuple[float, float]) -> list[RawPoint]:
        return [p for p in self.points if own[0] <= p.t < own[1]]


def read_answer(text: str, clip: Clip, parser: str, *, strict: bool = False) -> WindowAnswer:
    """Parse one window's answer and put its times in source seconds on the clip's true frame times."""
    read = parse_molmo2 if parser == "molmo2" else parse_qwen_points
    parsed = read(text, strict=strict)
    violations = list(parsed.violations)
    start, duration = clip.window.start, clip.window.duration
    points = []
    for p in parsed.points:
        t = _snap(start + p.t, clip.timestamps)
        if p.t > duration + SNAP_SECONDS:
            violations.append(f"Point at {p.t:g} s is past the window's {duration:g} s; dropped.")
            continue
        points.append(RawPoint(t, p.id, p.x, p.y, p.kind, p.label, p.box))
    return WindowAnswer(clip.window, tuple(points), parsed, clip.timestamps, tuple(violations), text)


def _snap(t: float, timestamps: Sequence[float]) -> float:
    nearest = min(timestamps, key=lambda s: abs(s - t), default=t)
    return float(nearest) if abs(nearest - t) <= SNAP_SECONDS else t


def _owned(answers: Sequence[WindowAnswer]) -> list[tuple[float, float]]:
    """Each window's share of source time: overlaps are split at their middle."""
    owned = []
    for i, a in enumerate(answers):
        lo = (answers[i - 1].window.end + a.window.start) / 2 if i else float("-inf")
        hi = (a.window.end + answers[i + 1].window.start) / 2 if i + 1 < len(answers) else float("inf")
        owned.append((lo, hi))
    return owned


def _violations(answers: Sequence[WindowAnswer]) -> tuple[str, ...]:
    if len(answers) == 1:
        return answers[0].violations
    return tuple(f"window {i + 1} ({a.window.start:g}-{a.window.end:g} s): {v}"
                 for i, a in enumerate(answers) for v in a.violations)  # fmt: skip


def _number(points: list[RawPoint], width: int, height: int, query: str) -> tuple[Point, ...]:
    """Points in time order (then x, y), numbered 1.. over the whole video."""
    ordered = sorted(points, key=lambda p: (p.t, p.x, p.y))
    return tuple(to_pixels(p, width, height, object_id=i, label=p.label or query)
                 for i, p in enumerate(ordered, 1))  # fmt: skip


def _total(answers: Sequence[WindowAnswer], owned: Sequence[tuple[float, float]]) -> int:
    """The count: the model's number for one window; over several, each window's own points (or its
    stated number when it pointed at nothing), so an object seen in an overlap is counted once."""
    if len(answers) == 1:
        return answers[0].parsed.point_count
    total = 0
    for a, own in zip(answers, owned, strict=True):
        total += len(a.points_in(own)) if a.points else (a.parsed.count or 0)
    return total


def link_tracks(answers: Sequence[WindowAnswer], width: int, height: int, query: str) -> tuple[Track, ...]:
    """Tracks over the whole video: each window's objects, joined across a boundary where a track of the
    next window is within ``LINK_DISTANCE`` (normalised) of one of the previous window at the times both
    saw in the overlap; ids are then 1..K in order of first appearance."""
    owned = _owned(answers)
    global_of: list[dict[int, int]] = []
    next_id = 1
    for i, a in enumerate(answers):
        mapping: dict[int, int] = {}
        if i:
            mapping = _match_across(answers[i - 1], a, global_of[i - 1])
        for p in a.points:
            if p.id not in mapping:
                mapping[p.id] = next_id
                next_id += 1
        global_of.append(mapping)
    by_object: dict[int, list[RawPoint]] = {}
    for a, own, mapping in zip(answers, owned, global_of, strict=True):
        for p in a.points_in(own):
            by_object.setdefault(mapping[p.id], []).append(p)
    seen: dict[tuple[int, float], RawPoint] = {}
    for gid, ps in by_object.items():
        for p in ps:  # the first position of an object at a time is kept (as Molmo2's parser does)
            seen.setdefault((gid, p.t), p)
    first = sorted(by_object, key=lambda g: min((p.t, p.x, p.y) for p in by_object[g]))
    renumber = {g: n for n, g in enumerate(first, 1)}
    tracks = []
    for gid in first:
        positions = sorted((p for (g, _), p in seen.items() if g == gid), key=lambda p: p.t)
        label = next((p.label for p in positions if p.label), query)
        moved = tuple(to_pixels(p, width, height, object_id=renumber[gid], label=label) for p in positions)
        tracks.append(Track(renumber[gid], label, moved))
    return tuple(tracks)


def _match_across(prev: WindowAnswer, cur: WindowAnswer, prev_ids: dict[int, int]) -> dict[int, int]:
    """Local ids of ``cur`` → global ids of ``prev``'s tracks they continue (one to one, closest first)."""
    lo, hi = cur.window.start, prev.window.end
    pairs = []
    for a in {p.id for p in cur.points}:
        mine = {p.t: p for p in cur.points if p.id == a and lo <= p.t <= hi}
        for b in {p.id for p in prev.points}:
            theirs = {p.t: p for p in prev.points if p.id == b and lo <= p.t <= hi}
            common = [t for t in mine if t in theirs]
            if not common:
                continue
            d = sum(((mine[t].x - theirs[t].x) ** 2 + (mine[t].y - theirs[t].y) ** 2) ** 0.5
                    for t in common) / len(common) / 1000  # fmt: skip
            if d <= LINK_DISTANCE:
                pairs.append((d, a, b))
    mapping: dict[int, int] = {}
    taken: set[int] = set()
    for _, a, b in sorted(pairs):
        if a not in mapping and b not in taken:
            mapping[a] = prev_ids[b]
            taken.add(b)
    return mapping

