"""Typed answers to *where*: points, counts and tracks in source time and source pixels.

A :class:`Point` is at a time in seconds of the source video and at pixels of the source frame as it is
displayed (rotation applied), with the same position normalised to 0–1. :class:`Pointing` (from
``vidspan.point``) and :class:`Counting` (``vidspan.count``) are sequences of points; :class:`Tracking`
(``vidspan.track``) maps object ids to :class:`Track` s. Every answer keeps the model's raw text per window
and the parser's violations. Exports: COCO-style keypoints (:func:`to_coco`) and MOT-style CSV
(:func:`to_mot_csv`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidspan.points.formats import SCALE, RawPoint

__all__ = ["Counting", "Point", "Pointing", "Track", "Tracking", "to_coco", "to_mot_csv", "to_pixels"]


@dataclass(frozen=True, slots=True)
class Point:
    """One point on one frame.

    Attributes:
        t: Seconds in the source video.
        x: Pixels from the frame's left edge (the displayed frame: rotation applied).
        y: Pixels from the frame's top edge.
        x_norm: ``x / width``, 0–1.
        y_norm: ``y / height``, 0–1.
        object_id: The point's id (pointing: its number in the answer; tracking: the object).
        label: What the point is on (the query's object, or the model's label).
    """

    t: float
    x: float
    y: float
    x_norm: float
    y_norm: float
    object_id: int
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "x": round(self.x, 2), "y": round(self.y, 2),
                "x_norm": round(self.x_norm, 4), "y_norm": round(self.y_norm, 4),
                "object_id": self.object_id, "label": self.label}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Point:
        return cls(float(data["t"]), float(data["x"]), float(data["y"]), float(data["x_norm"]),
                   float(data["y_norm"]), int(data["object_id"]), str(data.get("label", "")))  # fmt: skip


def to_pixels(raw: RawPoint, width: float, height: float, *, t: float | None = None,
              object_id: int | None = None, label: str | None = None) -> Point:  # fmt: skip
    """A 0–1000 point as written → a :class:`Point` on a ``width`` × ``height`` frame."""
    x_norm, y_norm = raw.x / SCALE, raw.y / SCALE
    ident = raw.id if object_id is None else object_id
    return Point(raw.t if t is None else t, x_norm * width, y_norm * height, x_norm, y_norm, ident,
                 raw.label if label is None else label)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Answer:
    query: str
    video: str
    width: int
    height: int
    duration: float
    raw: tuple[str, ...] = ()
    violations: tuple[str, ...] = ()
    model: str = ""
    windows: tuple[tuple[float, float], ...] = ()
    frame_times: tuple[float, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False)
    timings: Mapping[str, float] = field(default_factory=dict, compare=False)

    def _header(self) -> dict[str, Any]:
        return {"query": self.query, "video": self.video, "width": self.width, "height": self.height,
                "duration": round(self.duration, 3), "model": self.model, "raw": list(self.raw),
                "violations": list(self.violations), "windows": [list(w) for w in self.windows],
                "frame_times": [round(t, 3) for t in self.frame_times]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pointing(_Answer, Sequence[Point]):
    """The points where the query's object is, in time order (``vidspan.point``)."""

    points: tuple[Point, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index):  # type: ignore[override]
        return self.points[index]

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def to_dict(self) -> dict[str, Any]:
        return {**self._header(), "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pointing:
        return cls(**_header_args(data), points=tuple(Point.from_dict(p) for p in data.get("points", [])))


@dataclass(frozen=True, slots=True)
class Counting(Pointing):
    """How many of the query's objects there are, with the points counted (``vidspan.count``).

    ``count`` is the number the model stated (summed over windows, counting each object once where the
    model's ids allow); when the model stated none, it is the number of distinct objects pointed at.
    ``valid`` is False when no window's answer held a number, a point or a "none" answer (the count is
    then 0 but was not said; Molmo2's evaluator scores it invalid).
    """

    count: int = 0
    valid: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {**Pointing.to_dict(self), "count": self.count, "valid": self.valid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counting:
        points = tuple(Point.from_dict(p) for p in data.get("points", []))
        return cls(**_header_args(data), points=points, count=int(data["count"]),
                   valid=bool(data.get("valid", True)))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Track:
    """One object through time: its visible positions in time order (occluded times are absent)."""

    object_id: int
    label: str
    positions: tuple[Point, ...]

    @property
    def start(self) -> float:
        return self.positions[0].t if self.positions else 0.0

    @property
    def end(self) -> float:
        return self.positions[-1].t if self.positions else 0.0

    def at(self, t: float, tolerance: float = 0.5) -> Point | None:
        """The position nearest to ``t`` within ``tolerance`` seconds, else None."""
        best = min(self.positions, key=lambda p: abs(p.t - t), default=None)
        return best if best is not None and abs(best.t - t) <= tolerance else None

    def to_dict(self) -> dict[str, Any]:
        return {"object_id": self.object_id, "label": self.label,
                "positions": [p.to_dict() for p in self.positions]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tracking(_Answer, Mapping[int, Track]):
    """Object id → its :class:`Track` (``vidspan.track``)."""

    tracks: tuple[Track, ...] = field(default=())

    def __getitem__(self, object_id: int) -> Track:
        for track in self.tracks:
            if track.object_id == object_id:
                return track
        raise KeyError(object_id)

    def __iter__(self) -> Iterator[int]:
        return (track.object_id for track in self.tracks)

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def points(self) -> tuple[Point, ...]:
        """Every position of every track, in time order."""
        return tuple(sorted((p for t in self.tracks for p in t.positions), key=lambda p: (p.t, p.object_id)))

    def to_dict(self) -> dict[str, Any]:
        return {**self._header(), "tracks": [t.to_dict() for t in self.tracks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tracking:
        tracks = tuple(Track(int(t["object_id"]), str(t.get("label", "")),
                             tuple(Point.from_dict(p) for p in t["positions"]))
                       for t in data.get("tracks", []))  # fmt: skip
        return cls(**_header_args(data), tracks=tracks)


def _header_args(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"query": str(data.get("query", "")), "video": str(data.get("video", "")),
            "width": int(data.get("width", 0)), "height": int(data.get("height", 0)),
            "duration": float(data.get("duration", 0.0)), "raw": tuple(data.get("raw", ())),
            "violations": tuple(data.get("violations", ())), "model": str(data.get("model", "")),
            "windows": tuple((float(a), float(b)) for a, b in data.get("windows", ())),
            "frame_times": tuple(float(t) for t in data.get("frame_times", ()))}  # fmt: skip


def _points_of(answer: Pointing | Tracking | Iterable[Point]) -> list[Point]:
    return list(answer.points if isinstance(answer, (Pointing, Tracking)) else answer)


def to_coco(answer: Pointing | Tracking, fps: float, *, file_name: str = "") -> dict[str, Any]:
    """COCO-style keypoints: one image per frame that has points, one one-keypoint annotation per point.

    Frames are numbered ``round(t * fps)`` (0-based, as the frame index of the source); each annotation
    has ``keypoints = [x, y, 2]`` (visible), ``track_id`` (the object id) and ``t`` in seconds.
    """
    if fps <= 0:
        raise ValueError(f"Invalid fps: {fps}. It must be > 0.")
    images: dict[int, dict[str, Any]] = {}
    annotations = []
    labels = sorted({p.label for p in _points_of(answer)}) or [answer.query]
    categories = [{"id": i, "name": name, "keypoints": ["point"], "skeleton": []}
                  for i, name in enumerate(labels, 1)]  # fmt: skip
    category = {c["name"]: c["id"] for c in categories}
    for p in _points_of(answer):
        frame = round(p.t * fps)
        images.setdefault(frame, {"id": frame, "file_name": f"{file_name or answer.video}#frame={frame}",
                                  "width": answer.width, "height": answer.height,
                                  "frame_index": frame, "t": round(frame / fps, 3)})  # fmt: skip
        annotations.append({"id": len(annotations) + 1, "image_id": frame,
                            "category_id": category.get(p.label, 1), "track_id": p.object_id,
                            "keypoints": [round(p.x, 2), round(p.y, 2), 2], "num_keypoints": 1,
                            "t": round(p.t, 3)})  # fmt: skip
    return {
        "images": [images[k] for k in sorted(images)],
        "annotations": annotations,
        "categories": categories,
    }


MOT_HEADER = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "conf", "x", "y", "z")


def to_mot_csv(answer: Pointing | Tracking, fps: float, *, box: float = 0.0, header: bool = False) -> str:
    """MOTChallenge-style CSV, one row per point: ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z``.

    Frames are 1-based (``round(t * fps) + 1``, as MOT files number them). A point becomes a ``box``-pixel
    square centred on it (0: the point itself); ``x, y, z`` are ``-1`` (no world coordinates).
    """
    if fps <= 0:
        raise ValueError(f"Invalid fps: {fps}. It must be > 0.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(MOT_HEADER)
    rows = sorted(_points_of(answer), key=lambda p: (round(p.t * fps), p.object_id))
    for p in rows:
        writer.writerow([round(p.t * fps) + 1, p.object_id, f"{p.x - box / 2:.2f}", f"{p.y - box / 2:.2f}",
                         f"{box:.2f}", f"{box:.2f}", 1, -1, -1, -1])  # fmt: skip
    return out.getvalue()


def tracks_from_points(points: Sequence[Point]) -> tuple[Track, ...]:
    """Group points by object id into tracks (positions in time order)."""
    by_id: dict[int, list[Point]] = {}
    for p in points:
        by_id.setdefault(p.object_id, []).append(p)
    return tuple(
        Track(oid, ps[0].label, tuple(sorted(ps, key=lambda p: p.t))) for oid, ps in sorted(by_id.items())
    )
