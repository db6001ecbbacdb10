"""Typed, frozen result objects. Time is always float seconds in source-video time."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Span:
    """A time interval ``[start, end]`` in seconds. ``start == end`` is a point in time."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(
                f"Invalid span: start={self.start}, end={self.end}. Both must be finite numbers."
            )
        if not 0 <= self.start <= self.end:
            raise ValueError(
                f"Invalid span: start={self.start}, end={self.end}. It must satisfy 0 <= start <= end."
            )

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start

    @property
    def middle(self) -> float:
        """Midpoint in seconds."""
        return (self.start + self.end) / 2

    def shift(self, offset_seconds: float) -> Span:
        """The same span moved by ``offset_seconds``."""
        return Span(self.start + offset_seconds, self.end + offset_seconds)

    def overlap(self, other: Span) -> float:
        """Seconds shared with ``other``."""
        return max(0.0, min(self.end, other.end) - max(self.start, other.start))

    def iou(self, other: Span) -> float:
        """Temporal intersection over union (0 when the hull is empty)."""
        hull = max(self.end, other.end) - min(self.start, other.start)
        return self.overlap(other) / hull if hull > 0 else float(self == other)

    def to_tuple(self) -> tuple[float, float]:
        """``(start, end)``."""
        return (self.start, self.end)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What probing a file found. ``width``/``height`` are as displayed (after rotation)."""

    path: str
    duration_seconds: float
    fps: float
    num_frames: int
    width: int
    height: int
    rotation: int
    codec: str
    container: str
    start_seconds: float = 0.0
    is_vfr: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Clip:
    """Frames sampled from one window of a video, ready for a model.

    ``frames`` is a uint8 array ``(T, H, W, 3)`` already sized for the model. ``timestamps`` holds each
    frame's presentation time in source seconds, so variable-frame-rate files keep correct times.
    ``window`` is the stretch of source time the clip covers.
    """

    frames: np.ndarray
    timestamps: tuple[float, ...]
    window: Span
    video: VideoInfo
    frame_indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.frames):
            raise ValueError(
                f"Invalid clip: {len(self.frames)} frames but {len(self.timestamps)} timestamps. "
                "They must match."
            )

    @property
    def num_frames(self) -> int:
        """Number of sampled frames."""
        return len(self.timestamps)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the sampled frames."""
        return (int(self.frames.shape[1]), int(self.frames.shape[2]))


@dataclass(frozen=True, slots=True)
class Event:
    """One timed event of a caption."""

    span: Span
    description: str

    @property
    def start(self) -> float:
        """Start in seconds."""
        return self.span.start

    @property
    def end(self) -> float:
        """End in seconds."""
        return self.span.end

    def to_dict(self) -> dict[str, Any]:
        """``{"start", "end", "description"}`` as Marlin's ``.caption()`` returns it."""
        return {"start": self.span.start, "end": self.span.end, "description": self.description}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Inverse of :meth:`to_dict`."""
        return cls(Span(float(data["start"]), float(data["end"])), str(data["description"]))


@dataclass(frozen=True, slots=True)
class Caption(Sequence[Event]):
    """A scene paragraph and a timeline of events, in source time, with the model's raw text.

    A caption is a sequence of its events: ``len(c)``, ``c[0]``, ``for e in c``; ``c.between(span)``
    filters by time.
    """

    scene: str
    events: tuple[Event, ...]
    raw: str
    model: str = ""
    violations: tuple[str, ...] = ()
    windows: tuple[Span, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.events)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Event, ...]: ...
    def __getitem__(self, index: int | slice) -> Event | tuple[Event, ...]:
        return self.events[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    @property
    def format_ok(self) -> bool:
        """True when the model's text followed the expected format exactly."""
        return not self.violations

    def between(self, span: Span) -> tuple[Event, ...]:
        """Events that overlap ``span``."""
        return tuple(e for e in self.events if e.span.overlap(span) > 0 or e.span == span)

    def to_dict(self) -> dict[str, Any]:
        """``{"caption": raw, "scene", "events"}``, the shape of Marlin's ``.caption()``."""
        return {"caption": self.raw, "scene": self.scene, "events": [e.to_dict() for e in self.events]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Caption:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        return cls(
            scene=str(data.get("scene", "")),
            events=tuple(Event.from_dict(e) for e in data.get("events", [])),
            raw=str(data.get("caption", "")),
        )


@dataclass(frozen=True, slots=True)
class Grounding:
    """Where one query happens in a video.

    ``span`` is ``None`` when no time range could be read from the model's answer. ``score`` ranks
    answers from different windows of a long video (the mean token probability of the answer when the
    backend reports it). ``window`` is the stretch of the video the winning answer came from.
    ``as_written`` is the first time range exactly as the model wrote it, in source seconds: not
    swapped, not clipped to the window (what the TimeLens protocol scores), or ``None``.
    """

    query: str
    raw: str
    span: Span | None
    format_ok: bool
    score: float | None = None
    window: Span | None = None
    model: str = ""
    violations: tuple[str, ...] = ()
    as_written: tuple[float, float] | None = field(default=None, repr=False)
    candidates: tuple[Grounding, ...] = field(default=(), repr=False)
    settings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"raw", "span", "format_ok"}``, the shape of Marlin's ``.find()`` (span is a list in JSON)."""
        return {
            "raw": self.raw,
            "span": None if self.span is None else self.span.to_tuple(),
            "format_ok": self.format_ok,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], query: str = "") -> Grounding:
        """Inverse of :meth:`to_dict`."""
        span = data.get("span")
        return cls(
            query=str(data.get("query", query)),
            raw=str(data.get("raw", "")),
            span=None if span is None else Span(float(span[0]), float(span[1])),
            format_ok=bool(data.get("format_ok", False)),
        )
