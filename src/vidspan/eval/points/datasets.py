"""Loaders for the Molmo2 evaluation sets of *where*: video pointing, counting, tracking, and BURST-VC.

Each reads the Hugging Face rows of its set exported as JSON or JSONL (``datasets``' ``to_json``), with
the field names of ``allenai/molmo2`` (``olmo/data/molmo2_datasets.py``, ``molmo2_video_track_datasets.py``,
``academic_video_datasets.py``):

- ``molmo2-video-points`` (``allenai/Molmo2-VideoPointEval``): ``video_id``, ``label``, ``width``,
  ``height``, ``video_duration``, ``two_fps_timestamps`` (one per point), ``points`` (``{x, y}`` pixels, one
  per object), ``masks`` (per object, ``[{frame_id, rle}]`` at 2 fps: time ``frame_id / 2``).
- ``molmo2-video-count`` (``allenai/Molmo2-VideoCountEval``): ``video_id``, ``label``, ``count``,
  ``category`` (subset), ``video_duration``, ``clip_start`` / ``clip_end``, ``question``.
- ``burst-vc`` (BURST video counting, ``burst_count_clip_63s``; rows of
  ``allenai/molmo2-academic-video-points`` with ``subset == "burst"``): ``video_name``, ``dataset``,
  ``category``, ``count``, ``timestamps``, ``video_duration``, ``clip_start_time`` / ``clip_end_time``.
  The video is ``<dataset>/<video_name>.mp4``.
- ``molmo2-video-track`` (``allenai/Molmo2-VideoTrackEval``): ``id``, ``exp`` (the expression), ``w``,
  ``h``, ``fps``, ``clip``, ``video_dataset``, ``masks`` (``[{object_id, masks: [rle or null per frame]}]``),
  optionally ``points`` (``{frame: {object_id: [x, y]}}``, the ground-truth points per frame).

Masks stay as COCO RLE in the samples and are decoded when scored. A row that breaks its format is a
:class:`BenchmarkFormatError` naming the file, the row and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vidspan.errors import BenchmarkFormatError, EvalFileNotFoundError

__all__ = [
    "LOADERS",
    "PointSample",
    "load_burst_vc",
    "load_video_count",
    "load_video_points",
    "load_video_track",
]

Task = Literal["point", "count", "track"]


@dataclass(frozen=True, slots=True)
class PointSample:
    """One question of a *where* benchmark.

    Attributes:
        id: Stable sample id.
        video: The video id (a file name or ``folder/name`` under the video folder).
        label: The object or expression asked about.
        task: ``point``, ``count`` or ``track``.
        subset: The set's category (``object``, ``animal``, ``action/event``; the source dataset).
        question: The set's own question, when it has one.
        duration: Seconds, from the annotation.
        width, height: The frame size the annotation's pixels are in.
        span: ``(start, end)`` seconds the question is about (a clip of the video), else None.
        points: Pointing: ``(t, x, y)`` per ground-truth object.
        masks: Pointing: per object, time → RLE.
        count: Counting: the true number.
        fps: Tracking: the frame rate the masks are indexed at.
        track_masks: Tracking: object id → RLE (or None) per frame.
        track_points: Tracking: frame → object id → ``(x, y)``, when the set gives them.
    """

    id: str
    video: str
    label: str
    task: Task
    subset: str = ""
    question: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    span: tuple[float, float] | None = None
    points: tuple[tuple[float, float, float], ...] = ()
    masks: tuple[Mapping[float, Mapping[str, Any]], ...] = field(default=(), repr=False)
    count: int | None = None
    fps: float | None = None
    track_masks: Mapping[str, tuple[Mapping[str, Any] | None, ...]] = field(default_factory=dict, repr=False)
    track_points: Mapping[int, Mapping[str, tuple[float, float]]] = field(default_factory=dict, repr=False)


def _rows(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for a JSON list or JSONL file of objects."""
    path = Path(path)
    if not path.is_file():
        raise EvalFileNotFoundError(f"Annotation file not found: {path}")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}).") from None
        rows = [(f"{path} row {i + 1}", item) for i, item in enumerate(items)]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path} line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{path} line {n}: not JSON ({exc.msg}).") from None
    for where, row in rows:
        if not isinstance(row, dict):
            raise BenchmarkFormatError(f"{where}: expected a JSON object, got {type(row).__name__}.")
    return rows


def _get(row: Mapping[str, Any], where: str, *keys: str) -> Any:
    for key in keys:
        if key in row and row[key] is not None:
            return row[key]
    raise BenchmarkFormatError(f"{where}: missing {' or '.join(repr(k) for k in keys)}.")


def _number(value: Any, where: str, name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise BenchmarkFormatError(f"{where}: {name} must be a number >= {minimum:g}, got {value!r}.")
    return float(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BenchmarkFormatError(f"{where}: count must be an integer >= 0, got {value!r}.")
    return value


def _rle(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or "size" not in value or "counts" not in value:
        raise BenchmarkFormatError(f"{where}: a mask must be COCO RLE {{'size': [h, w], 'counts': ...}}.")
    return value


def _span(row: Mapping[str, Any], where: str, start_key: str, end_key: str) -> tuple[float, float] | None:
    if row.get(start_key) is None or row.get(end_key) is None:
        return None
    start = _number(row[start_key], where, start_key)
    end = _number(row[end_key], where, end_key)
    if not end > start:
        raise BenchmarkFormatError(f"{where}: {end_key} ({end:g}) must be after {start_key} ({start:g}).")
    return start, end


def load_video_points(path: str | Path) -> list[PointSample]:
    """Molmo2-VideoPointEval rows → pointing samples (ground truth at 2 fps, masks per object), asked
    Molmo2's video counting question as its loader does (the answer's points are scored)."""
    samples = []
    for where, row in _rows(path):
        video = str(_get(row, where, "video_id", "video"))
        label = str(_get(row, where, "label"))
        points, times = _get(row, where, "points"), _get(row, where, "two_fps_timestamps", "timestamps")
        raw_masks = row.get("masks") or []
        if not isinstance(points, list) or not isinstance(times, list) or len(times) != len(points):
            raise BenchmarkFormatError(
                f"{where}: 'points' and 'two_fps_timestamps' must be lists of one length."
            )
        if len(raw_masks) != len(points):
            raise BenchmarkFormatError(
                f"{where}: {len(points)} points but masks for {len(raw_masks)} objects."
            )
        truth = []
        for i, (pt, t) in enumerate(zip(points, times, strict=True)):
            if not isinstance(pt, dict) or "x" not in pt or "y" not in pt:
                raise BenchmarkFormatError(f"{where}: point {i + 1} must be {{'x': ..., 'y': ...}}.")
            truth.append(
                (_number(t, where, "timestamp"), _number(pt["x"], where, "x"), _number(pt["y"], where, "y"))
            )
        masks = []
        for i, frames in enumerate(raw_masks):
            if not isinstance(frames, list):
                raise BenchmarkFormatError(f"{where}: masks of object {i + 1} must be a list.")
            # frame_id / 2.0: the set is annotated at 2 fps (as upstream's loader assumes)
            frame_ids = [_number(_get(m, where, "frame_id"), where, "frame_id") for m in frames]
            pairs = zip(frame_ids, frames, strict=True)
            masks.append({f / 2.0: _rle(_get(m, where, "rle"), where) for f, m in pairs})
        samples.append(PointSample(
            id=str(row.get("id") or f"{video}#{label}"), video=video, label=label, task="point",
            subset=str(row.get("category") or row.get("video_source") or ""),
            question=row.get("question") or f'How many "{label}" are there in the video?',
            duration=_number(_get(row, where, "video_duration"), where, "video_duration", minimum=1e-9),
            width=int(_number(_get(row, where, "width"), where, "width", minimum=1)),
            height=int(_number(_get(row, where, "height"), where, "height", minimum=1)),
            points=tuple(truth), masks=tuple(masks)))  # fmt: skip
    return _unique(samples)


def load_video_count(path: str | Path) -> list[PointSample]:
    """Molmo2-VideoCountEval rows → counting samples (subset = category, clip = the question's span)."""
    samples = []
    for where, row in _rows(path):
        video = str(_get(row, where, "video_id", "video"))
        label = str(_get(row, where, "label"))
        span = _span(row, where, "clip_start", "clip_end")
        samples.append(PointSample(
            id=str(row.get("id") or f"{video}#{label}#{span[0] if span else 0:g}"), video=video, label=label,
            task="count", subset=str(row.get("category") or ""), question=row.get("question"),
            duration=_optional(row, where, "video_duration"), span=span,
            count=_count(_get(row, where, "count"), where)))  # fmt: skip
    return _unique(samples)


def load_burst_vc(path: str | Path) -> list[PointSample]:
    """BURST video-counting rows → counting samples, asked as Molmo2's eval asks (``How many "x" ...``)."""
    samples = []
    for where, row in _rows(path):
        if row.get("subset") not in (None, "burst"):
            continue
        name, dataset = str(_get(row, where, "video_name")), str(row.get("dataset") or "")
        label = str(_get(row, where, "category", "label")).lower()
        video = f"{dataset}/{name}" if dataset else name
        span = _span(row, where, "clip_start_time", "clip_end_time")
        samples.append(PointSample(
            id=str(row.get("id") or f"{video}#{label}"), video=video, label=label, task="count",
            subset=dataset, question=f'How many "{label}" are there in the video?',
            duration=_optional(row, where, "video_duration"), span=span,
            count=_count(_get(row, where, "count"), where)))  # fmt: skip
    return _unique(samples)


def load_video_track(path: str | Path) -> list[PointSample]:
    """Molmo2-VideoTrackEval rows → tracking samples (masks per object per frame at the clip's fps)."""
    samples = []
    for where, row in _rows(path):
        video = str(_get(row, where, "clip", "video"))
        objects = _get(row, where, "masks")
        if not isinstance(objects, list):
            raise BenchmarkFormatError(f"{where}: 'masks' must be a list of {{object_id, masks}}.")
        track_masks = {}
        for obj in objects:
            frames = _get(obj, where, "masks")
            if not isinstance(frames, list):
                raise BenchmarkFormatError(f"{where}: an object's 'masks' must be a list (one per frame).")
            track_masks[str(_get(obj, where, "object_id"))] = tuple(
                None if m is None else _rle(m, where) for m in frames
            )
        track_points = {int(f): {str(k): (float(v[0]), float(v[1])) for k, v in objs.items()}
                        for f, objs in (row.get("points") or {}).items()}  # fmt: skip
        samples.append(PointSample(
            id=str(_get(row, where, "id")), video=video if video.endswith(".mp4") else video + ".mp4",
            label=str(_get(row, where, "exp", "label")), task="track",
            subset=str(row.get("video_dataset") or ""),
            width=int(_number(_get(row, where, "w", "width"), where, "w", minimum=1)),
            height=int(_number(_get(row, where, "h", "height"), where, "h", minimum=1)),
            fps=_number(_get(row, where, "fps"), where, "fps", minimum=1e-9),
            track_masks=track_masks, track_points=track_points))  # fmt: skip
    return _unique(samples)


def _optional(row: Mapping[str, Any], where: str, key: str) -> float | None:
    return None if row.get(key) is None else _number(row[key], where, key)


def _unique(samples: list[PointSample]) -> list[PointSample]:
    seen: dict[str, int] = {}
    out = []
    for s in samples:
        n = seen.get(s.id, 0)
        seen[s.id] = n + 1
        out.append(s if n == 0 else PointSample(**{**{f: getattr(s, f) for f in s.__dataclass_fields__},
                                                   "id": f"{s.id}#{n + 1}"}))  # fmt: skip
    return out


LOADERS = {
    "molmo2-video-points": (
        "point",
        load_video_points,
        "Molmo2-VideoPointEval: video pointing F1 (masks at 2 fps)",
    ),
    "molmo2-video-count": (
        "count",
        load_video_count,
        "Molmo2-VideoCountEval: counting accuracy and close count",
    ),
    "burst-vc": ("count", load_burst_vc, "BURST video counting (burst_count_clip_63s)"),
    "molmo2-video-track": ("track", load_video_track, "Molmo2-VideoTrackEval: tracking point F1 and J&F"),
}
"""Benchmark name → (task, loader, description)."""
