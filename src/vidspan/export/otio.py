"""OpenTimelineIO timelines of a video's events, for editors (DaVinci Resolve, Premiere via adapters, ...).

Two shapes: ``kind="markers"`` is one clip of the whole video with a marker per event; ``kind="clips"`` is
a selects reel, one clip per event (in start order) cut from the same media. Every clip references the
video by an absolute ``file://`` URL with its available range. Times are
:class:`opentimelineio.opentime.RationalTime` at the video's frame rate, rounded to whole frames; markers
and clips also keep the exact seconds in ``metadata["vidspan"]``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vidspan.errors import MissingDependencyError
from vidspan.types import Event
from vidspan.video.outputs import move_into_place, temp_beside

if TYPE_CHECKING:
    import opentimelineio

logger = logging.getLogger(__name__)

TimelineKind = Literal["markers", "clips"]
KINDS: tuple[str, ...] = ("markers", "clips")


def _import_otio() -> Any:
    try:
        import opentimelineio
    except ImportError as exc:
        raise MissingDependencyError(
            "OpenTimelineIO export needs opentimelineio. Install with: pip install 'vidspan[export]'"
        ) from exc
    return opentimelineio


def to_otio(
    video: str | os.PathLike[str],
    events: Iterable[Event],
    *,
    duration_seconds: float | None = None,
    fps: float | None = None,
    kind: TimelineKind = "markers",
) -> opentimelineio.schema.Timeline:
    """A timeline with one video track over ``video``: a marker per event, or a clip per event.

    Args:
        video: The video file the clips reference (made absolute).
        events: Timed events in source-video seconds.
        duration_seconds: Length of the video (default: probed); the media's available range.
        fps: Frame rate of the video (default: probed); the rate of every time in the timeline.
        kind: ``"markers"`` or ``"clips"`` (module docstring).

    Returns:
        An :class:`opentimelineio.schema.Timeline` named after the video.

    Raises:
        ValueError: Unknown ``kind``, a duration or rate that is not positive, or an event that starts at
            or after the end of the video (ends past it are clipped).
        MissingDependencyError: opentimelineio is not installed.
        VideoError: The video must be probed and cannot be read.
    """
    if kind not in KINDS:
        raise ValueError(f"Invalid kind: {kind!r}. It must be one of: {', '.join(KINDS)}.")
    otio = _import_otio()
    path = Path(video).expanduser().resolve()
    if duration_seconds is None or fps is None:
        from vidspan.video import probe

        info = probe(path)
        duration_seconds = info.duration_seconds if duration_seconds is None else duration_seconds
        fps = info.fps if fps is None else fps
    for name, value in (("duration_seconds", duration_seconds), ("fps", fps)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"Invalid {name}: {value!r}. It must be a finite number > 0.")
    rate = float(fps)
    available = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(round(duration_seconds * rate), rate)
    )
    url = path.as_uri()

    def reference() -> Any:
        return otio.schema.ExternalReference(target_url=url, available_range=available)

    def frames(start: float, end: float, min_frames: int) -> Any:
        first = round(start * rate)
        count = max(round(end * rate) - first, min_frames)
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(first, rate), otio.opentime.RationalTime(count, rate)
        )

    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    spans = [(event, *_clip_to_video(event, duration_seconds)) for event in events]
    if kind == "markers":
        clip = otio.schema.Clip(name=path.name, media_reference=reference(), source_range=available)
        for event, start, end in spans:
            clip.markers.append(
                otio.schema.Marker(
                    name=event.description,
                    marked_range=frames(start, end, 0),
                    metadata={"vidspan": {"start": event.start, "end": event.end}},
                )
            )
        track.append(clip)
    else:
        for event, start, end in sorted(spans, key=lambda item: item[1]):
            track.append(
                otio.schema.Clip(
                    name=event.description,
                    media_reference=reference(),
                    source_range=frames(start, end, 1),
                    metadata={"vidspan": {"start": event.start, "end": event.end}},
                )
            )
    timeline = otio.schema.Timeline(name=path.stem)
    timeline.tracks.append(track)
    timeline.metadata["vidspan"] = {"video": str(path), "kind": kind}
    return timeline


def write_otio(timeline: opentimelineio.schema.Timeline, path: str | os.PathLike[str]) -> Path:
    """Write ``timeline`` with the OpenTimelineIO adapter its extension names (``.otio``: OTIO JSON).

    The file is written under a temporary name beside ``path`` and renamed into place (replacing an
    existing file), so a failed write leaves nothing behind.

    Raises:
        ValueError: No OpenTimelineIO adapter handles the extension of ``path``.
        MissingDependencyError: opentimelineio is not installed.
    """
    otio = _import_otio()
    out = Path(path)
    try:
        adapter = otio.adapters.from_filepath(str(out))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        known = ", ".join(sorted(f".{s}" for s in otio.adapters.suffixes_with_defined_adapters()))
        raise ValueError(f"Invalid OTIO path: {out}. Its extension must be one of: {known}.") from None
    tmp = temp_beside(out)
    try:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name=adapter.name)
        move_into_place(tmp, out, overwrite=True)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def otio_to_string(timeline: opentimelineio.schema.Timeline) -> str:
    """``timeline`` as OTIO JSON text."""
    otio = _import_otio()
    return str(otio.adapters.write_to_string(timeline, "otio_json"))


def _clip_to_video(event: Event, duration_seconds: float) -> tuple[float, float]:
    if event.start >= duration_seconds:
        raise ValueError(
            f"Invalid event start: {event.start:g} ({event.description!r}). It must be before the end of "
            f"the video ({duration_seconds:g} s)."
        )
    return event.start, min(event.end, duration_seconds)
