"""Probe a video file with PyAV: what it holds, read from its content rather than trusted from its header.

:func:`probe` demuxes every packet once (no decoding except the first frame), so duration, frame count
and frame rate come from the packets' presentation timestamps. The same pass builds the
:class:`StreamIndex` that :class:`~vidspan.video.reader.VideoReader` uses to decode only what it needs.
Every failure becomes a :class:`~vidspan.errors.VideoError` that names the file and the reason.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.video.codeccontext import VideoCodecContext
from av.video.stream import VideoStream

from vidspan.errors import VideoError
from vidspan.types import VideoInfo

logger = logging.getLogger(__name__)

MAX_PACKETS = 20_000_000
"""Give up on files with more packets than this (about 77 hours at 72 fps, all streams)."""
MAX_FIRST_FRAME_PACKETS = 1_000
"""Packets fed to the decoder to get a first frame before the video counts as undecodable."""

_MAGIC_MP4 = b"ftyp"


@dataclass(frozen=True, slots=True)
class StreamIndex:
    """Where every frame of the video stream sits, from one demux pass.

    Packet arrays are in decode (file) order; ``frame_pts`` is the presentation order. When the stream
    carries no timestamps (raw elementary streams), ``exact`` is False, the packet arrays are empty and
    frames can only be decoded in order.

    Attributes:
        stream_index: Index of the video stream in the container.
        time_base: Seconds per pts tick.
        packet_pts: pts of each packet, decode order.
        packet_dts: dts of each packet (pts where the file has none), decode order.
        packet_keyframe: Whether each packet starts a keyframe.
        packet_discard: Whether the decoder drops the packet's frame (edit lists).
        frame_pts: pts of every displayed frame, ascending.
        frame_times: ``frame_pts`` in seconds.
        exact: Whether packets carry timestamps, so frames can be matched and sought by pts.
    """

    stream_index: int
    time_base: Fraction
    packet_pts: np.ndarray
    packet_dts: np.ndarray
    packet_keyframe: np.ndarray
    packet_discard: np.ndarray
    frame_pts: np.ndarray
    frame_times: np.ndarray
    exact: bool = True


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read what a video file holds.

    Args:
        path: A local video file.

    Returns:
        Duration, average frame rate, frame count, displayed size (after rotation), rotation, codec,
        container, start time and whether the frame rate varies.

    Raises:
        VideoError: When the file is missing, a directory, empty, not a video, has no video stream, is
            truncated or cannot be decoded.
    """
    return scan(path)[0]


def scan(path: str | os.PathLike[str]) -> tuple[VideoInfo, StreamIndex]:
    """Probe ``path`` and index its video packets (used by :class:`VideoReader`).

    Raises:
        VideoError: As :func:`probe`.
    """
    file = _check_file(Path(path))
    try:
        container = av.open(str(file), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise _open_error(file, exc) from exc
    with container:
        stream = _video_stream(file, container)
        return _scan_open(file, container, stream)


def _check_file(path: Path) -> Path:
    if not path.exists():
        raise VideoError(path, "no such file")
    if path.is_dir():
        raise VideoError(path, "it is a directory, not a video file")
    if not path.is_file():
        raise VideoError(path, "it is not a regular file (a pipe or a device cannot be probed)")
    if path.stat().st_size == 0:
        raise VideoError(path, "the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "permission denied")
    return path


def _open_error(path: Path, exc: av.error.FFmpegError) -> VideoError:
    with path.open("rb") as f:
        head = f.read(12)
    message = _reason(exc)
    if head[4:8] == _MAGIC_MP4:
        return VideoError(
            path,
            "the file is truncated: it is an MP4/MOV file without its index (moov atom); "
            f"the recording or download did not finish ({message})",
        )
    return VideoError(path, f"not a video file or an unsupported format ({message})")


def _video_stream(path: Path, container: av.container.InputContainer) -> VideoStream:
    fmt = container.format.name
    streams = [
        s
        for s in container.streams.video
        if not (int(s.disposition) & int(av.stream.Disposition.attached_pic))
    ]
    if not streams:
        raise VideoError(path, "it has no video stream")
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise VideoError(path, f"not a video file or an unsupported format (a still image: {fmt})")
    if streams[0].codec_context is None:
        raise VideoError(path, f"its video codec is not supported ({streams[0].codec_context})")
    return streams[0]


def _scan_open(
    path: Path, container: av.container.InputContainer, stream: VideoStream
) -> tuple[VideoInfo, StreamIndex]:
    """One demux pass over all streams: index the video packets, decode the first frame, check the end."""
    file_size = path.stat().st_size
    time_base = stream.time_base or Fraction(1, 1000)
    codec = stream.codec_context
    pts: list[int] = []
    dts: list[int] = []
    keys: list[bool] = []
    discard: list[bool] = []
    durations: list[int] = []
    missing_pts = 0
    first_frame: av.VideoFrame | None = None
    decode_error = ""
    fed = 0
    content_end = 0.0  # latest packet end over all streams, seconds
    past_end = False
    count = 0
    try:
        for packet in container.demux():
            count += 1
            if count > MAX_PACKETS:
                raise VideoError(path, f"it has more than {MAX_PACKETS} packets; refusing to scan it")
            if packet.size == 0:
                continue
            if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > file_size:
                past_end = True
            if packet.pts is not None and packet.time_base is not None:
                end = (packet.pts + (packet.duration or 0)) * packet.time_base
                content_end = max(content_end, float(end))
            if packet.stream_index != stream.index:
                continue
            if packet.pts is None:
                missing_pts += 1
            else:
                pts.append(packet.pts)
                dts.append(packet.dts if packet.dts is not None else packet.pts)
                keys.append(packet.is_keyframe)
                discard.append(packet.is_discard)
                durations.append(packet.duration or 0)
            if first_frame is None and fed < MAX_FIRST_FRAME_PACKETS:
                fed += 1
                try:
                    frames = codec.decode(packet)
                except av.error.FFmpegError as exc:
                    decode_error = _reason(exc)
                    frames = []
                if frames:
                    first_frame = frames[0]
    except av.error.FFmpegError as exc:
        if not pts and missing_pts == 0:
            raise VideoError(path, f"its video stream cannot be read ({_reason(exc)})") from exc
        raise VideoError(
            path, f"the file is truncated: reading stopped with an error ({_reason(exc)})"
        ) from exc
    _check_complete(path, container, stream, len(pts) + missing_pts, past_end, file_size)
    _check_header_duration(path, container, content_end)
    if first_frame is None:
        first_frame = _drain_first_frame(codec)
    if first_frame is None:
        detail = f" ({decode_error})" if decode_error else ""
        raise VideoError(path, f"its video stream cannot be decoded: no frame came out{detail}")
    last_ticks = 0
    if missing_pts:
        logger.info("%s: packets carry no timestamps; indexing frames by decoding the whole stream", path)
        index = _index_by_decoding(path, stream.index, time_base, stream.guessed_rate)
    else:
        index = _index_from_packets(stream.index, time_base, pts, dts, keys, discard)
        last_ticks = durations[int(np.argmax(index.packet_pts))]
    return _info(path, container, stream, first_frame, index, last_ticks), index


def _check_complete(
    path: Path,
    container: av.container.InputContainer,
    stream: VideoStream,
    num_packets: int,
    past_end: bool,
    file_size: int,
) -> None:
    """Refuse a truncated file: no video packets, an index past the data, fewer frames than indexed."""
    if num_packets == 0:
        raise VideoError(path, "the file is truncated: its video stream holds no frames")
    if past_end:
        raise VideoError(
            path, f"the file is truncated: its index points past the end of the data ({file_size} bytes)"
        )
    header_frames = stream.frames or 0
    if header_frames > 0 and num_packets < header_frames and container.format.name.startswith("mov"):
        raise VideoError(
            path,
            f"the file is truncated: its index lists {header_frames} frames "
            f"but only {num_packets} are present",
        )


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without errno noise."""
    return str(getattr(exc, "strerror", None) or exc)


def _drain_first_frame(codec: VideoCodecContext) -> av.VideoFrame | None:
    try:
        frames = codec.decode(None)
    except av.error.FFmpegError:
        return None
    return frames[0] if frames else None


def _check_header_duration(path: Path, container: av.container.InputContainer, content_end: float) -> None:
    """A file whose packets all end well before the duration its header states was cut short.

    Only Matroska/WebM headers are trusted here: they store the duration, while FFmpeg estimates it (from
    the bitrate, say) for formats that do not; MP4 truncation is caught by its sample table instead.
    """
    if not container.format.name.startswith("matroska") or content_end <= 0:
        return
    if container.duration is None or container.duration <= 0:
        return
    header_seconds = container.duration / av.time_base + max(0.0, (container.start_time or 0) / av.time_base)
    if header_seconds - content_end > max(0.5, 0.05 * header_seconds):
        raise VideoError(
            path,
            f"the file is truncated: its header says {header_seconds:.2f} s "
            f"but the data ends at {content_end:.2f} s",
        )


def _index_from_packets(
    stream_index: int,
    time_base: Fraction,
    pts: list[int],
    dts: list[int],
    keys: list[bool],
    discard: list[bool],
) -> StreamIndex:
    packet_pts = np.asarray(pts, dtype=np.int64)
    packet_discard = np.asarray(discard, dtype=bool)
    shown = packet_pts[~packet_discard] if (~packet_discard).any() else packet_pts
    frame_pts = np.unique(shown)
    return StreamIndex(
        stream_index=stream_index,
        time_base=time_base,
        packet_pts=packet_pts,
        packet_dts=np.asarray(dts, dtype=np.int64),
        packet_keyframe=np.asarray(keys, dtype=bool),
        packet_discard=packet_discard,
        frame_pts=frame_pts,
        frame_times=frame_pts.astype(np.float64) * float(time_base),
    )


def _index_by_decoding(
    path: Path, stream_index: int, time_base: Fraction, rate: Fraction | None
) -> StreamIndex:
    """Frame times of a stream without packet timestamps, from decoding it in order."""
    step = 1.0 / float(rate) if rate else 1.0 / 25.0
    times: list[float] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = cast(VideoStream, container.streams[stream_index])
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                times.append(frame.time if frame.time is not None else len(times) * step)
    except av.error.FFmpegError as exc:
        if not times:
            raise VideoError(path, f"its video stream cannot be decoded ({_reason(exc)})") from exc
        logger.warning(
            "%s: decoding stopped early (%s); using the %d frames decoded", path, _reason(exc), len(times)
        )
    if not times:
        raise VideoError(path, "its video stream cannot be decoded: no frame came out")
    frame_times = np.maximum.accumulate(np.asarray(times, dtype=np.float64))
    empty = np.zeros(0, dtype=np.int64)
    return StreamIndex(
        stream_index=stream_index,
        time_base=time_base,
        packet_pts=empty,
        packet_dts=empty,
        packet_keyframe=np.zeros(0, dtype=bool),
        packet_discard=np.zeros(0, dtype=bool),
        frame_pts=np.arange(len(frame_times), dtype=np.int64),
        frame_times=frame_times,
        exact=False,
    )


def _info(
    path: Path,
    container: av.container.InputContainer,
    stream: VideoStream,
    first_frame: av.VideoFrame,
    index: StreamIndex,
    last_ticks: int,
) -> VideoInfo:
    """Assemble the :class:`VideoInfo`; the last frame lasts ``last_ticks`` (or a typical interval).

    The duration runs from the first frame's pts to the last frame's end, computed as torchcodec computes
    its content duration, so ``fps`` (frames / duration) is torchcodec's ``average_fps`` to the bit, the
    rate qwen-vl-utils plans with.
    """
    times = index.frame_times
    last_duration = float(last_ticks * index.time_base)
    num_frames = len(times)
    intervals = np.diff(times)
    typical = float(np.median(intervals)) if intervals.size else 0.0
    last = last_duration if 0 < last_duration and (typical <= 0 or last_duration <= 10 * typical) else typical
    if last <= 0:
        rate = stream.guessed_rate or stream.average_rate
        last = 1.0 / float(rate) if rate else 0.04
    if last == last_duration and index.exact:
        duration = _seconds(int(index.frame_pts[-1]) + last_ticks, index.time_base) - _seconds(
            int(index.frame_pts[0]), index.time_base
        )
    else:
        duration = float(times[-1] - times[0]) + last
    rotation = _rotation(first_frame)
    width, height = first_frame.width, first_frame.height
    if rotation in (90, 270):
        width, height = height, width
    tick = float(index.time_base) if index.exact else 1e-3
    is_vfr = bool(intervals.size and np.abs(intervals - typical).max() > max(2.5 * tick, 0.1 * typical))
    return VideoInfo(
        path=str(path),
        duration_seconds=duration,
        fps=num_frames / duration,
        num_frames=num_frames,
        width=width,
        height=height,
        rotation=rotation,
        codec=stream.codec_context.name,
        container=_container_name(path, container.format.name),
        start_seconds=max(0.0, float(times[0])),
        is_vfr=is_vfr,
    )


def _seconds(pts: int, time_base: Fraction) -> float:
    """``pts`` in seconds, multiplied before divided (torchcodec's ``ptsToSeconds``)."""
    return float(pts) * time_base.numerator / time_base.denominator


def _rotation(frame: av.VideoFrame) -> int:
    """Counterclockwise display rotation from the frame's display matrix, as 0, 90, 180 or 270."""
    try:
        degrees = float(frame.rotation or 0)
    except (AttributeError, ValueError, TypeError):
        return 0
    if not math.isfinite(degrees):
        return 0
    return int(round(degrees / 90.0)) % 4 * 90


def _container_name(path: Path, format_name: str) -> str:
    """The container's short name: the one matching the file extension when FFmpeg lists several."""
    names = format_name.split(",")
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in names else names[0]
