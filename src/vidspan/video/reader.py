"""Decode and sample frames with PyAV, touching only the packets the chosen frames need.

Decoding plan: the wanted frames are grouped into runs that start at a keyframe; between runs the
demuxer seeks (or, for short gaps, reads on without decoding). Inside a run every packet goes to the
decoder, but packets of unwanted frames are decoded with ``skip_frame="NONREF"``, so FFmpeg drops the
non-reference frames (most B-frames) that no wanted frame depends on; reference frames are still decoded,
so wanted frames come out bit-identical to a full decode. The runs are split into two stretches of the
file decoded by two decoders at once (runs start at keyframes, so they are independent). Frames are
matched by pts, converted to RGB and resized (Pillow bicubic, antialiased) as soon as they come out, so
memory stays bounded by the output array.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

import av
import numpy as np
from av.video.codeccontext import VideoCodecContext
from av.video.stream import VideoStream
from PIL import Image

from vidspan.errors import VideoError
from vidspan.types import Clip, Span, VideoInfo
from vidspan.video.failures import DecodeFailures
from vidspan.video.plan import SamplingConfig, frame_pixel_budget, select_frames, smart_resize
from vidspan.video.probe import scan

logger = logging.getLogger(__name__)

SEEK_GAP_PACKETS = 48
"""Gaps shorter than this many packets are read through (without decoding) instead of sought over."""

CPU_COUNT = max(1, os.cpu_count() or 1)
DECODE_WORKERS = min(2, CPU_COUNT)
"""Decoders working on separate stretches of the file at once (stretches between keyframes are independent,
so this scales without the stalls of FFmpeg frame threading on the reference chain)."""

_ROTATE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}

FrameSink = Callable[[int, av.VideoFrame], None]


@dataclass(slots=True)
class _Run:
    """Packets ``start..end`` (decode order) to feed, ``start`` being a keyframe."""

    start: int
    end: int


class VideoReader:
    """A video file opened for sampling: probed and indexed once, decoded on demand.

    Creating it demuxes the file once (no decoding beyond the first frame) to build the table of frame
    times. Each :meth:`decode` / :meth:`sample` call opens its own demuxer, so one reader may serve a
    background decoding thread. Use it as a context manager or call :meth:`close`.

    Example:
        >>> with VideoReader("clip.mp4") as reader:  # doctest: +SKIP
        ...     clip = reader.sample(SamplingConfig(fps=1.0))
    """

    def __init__(self, path: str | os.PathLike[str]):
        """Probe ``path`` and index its frames.

        Args:
            path: A local video file.

        Raises:
            VideoError: When the file cannot be used (see :func:`~vidspan.video.probe.probe`).
        """
        self._path = Path(path)
        self._info, self._index = scan(self._path)
        self._lock = threading.Lock()
        self._failures = DecodeFailures(self._path, None)
        self._closed = False
        self._workers = DECODE_WORKERS
        pts = self._index.packet_pts
        self._pts_order = np.argsort(pts, kind="stable")
        self._sorted_pts = pts[self._pts_order]
        self._seekable = self._index.exact and bool(np.all(np.diff(self._sorted_pts) > 0))
        keys = np.flatnonzero(self._index.packet_keyframe)
        self._keyframes = keys if keys.size and keys[0] == 0 else np.concatenate([[0], keys]).astype(np.int64)

    @property
    def path(self) -> Path:
        """The file being read."""
        return self._path

    @property
    def info(self) -> VideoInfo:
        """What probing the file found."""
        return self._info

    @property
    def frame_times(self) -> np.ndarray:
        """Presentation time in seconds of every frame, ascending (a read-only view)."""
        view = self._index.frame_times.view()
        view.flags.writeable = False
        return view

    def close(self) -> None:
        """Release the reader (no file stays open between calls; later calls raise)."""
        self._closed = True

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoReader({str(self._path)!r})"

    def select(self, window: Span, config: SamplingConfig) -> np.ndarray:
        """Frames :meth:`sample` takes from ``window``: counted from the average fps unless it varies."""
        average_fps = None if self._info.is_vfr else self._info.fps
        return select_frames(self._index.frame_times, window, config, average_fps=average_fps)

    def sample(self, config: SamplingConfig | None = None, window: Span | None = None) -> Clip:
        """Sample a window the way a Qwen-VL model expects it.

        Frames are chosen by time (:func:`~vidspan.video.plan.select_frames`), sized with the
        qwen-vl-utils per-frame budget (:func:`~vidspan.video.plan.frame_pixel_budget`,
        :func:`~vidspan.video.plan.smart_resize`) and decoded.

        Args:
            config: Sampling settings (default :class:`SamplingConfig`).
            window: Stretch of source time to sample; default the whole video.

        Returns:
            A :class:`Clip` whose ``timestamps`` are the true pts of the chosen frames.

        Raises:
            ValueError: When ``window`` lies outside the video.
            VideoError: When the frames cannot be decoded.
        """
        config = config or SamplingConfig()
        info = self._info
        video_span = Span(info.start_seconds, info.start_seconds + info.duration_seconds)
        if window is None:
            window = video_span
        elif window.start > video_span.end or window.end < video_span.start:
            raise ValueError(
                f"Invalid window: {window.start}-{window.end} s. It must overlap the video "
                f"({video_span.start:.3f}-{video_span.end:.3f} s)."
            )
        indices = self.select(window, config)
        min_pixels, max_pixels = frame_pixel_budget(len(indices), config)
        size = smart_resize(
            info.height, info.width, factor=config.patch_factor, min_pixels=min_pixels, max_pixels=max_pixels
        )
        frames = self.decode(indices, size=size)
        timestamps = tuple(float(self._index.frame_times[i]) for i in indices)
        return Clip(frames, timestamps, window, info, tuple(int(i) for i in indices))

    def decode(self, indices: Sequence[int] | np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Decode frames by index (presentation order), rotated for display and optionally resized.

        Args:
            indices: Frame indices into :attr:`frame_times`, in any order, repeats allowed.
            size: ``(height, width)`` to resize to with Pillow bicubic (antialiased); ``None`` keeps
                the displayed size.

        Returns:
            uint8 array ``(len(indices), H, W, 3)``, RGB.

        Raises:
            IndexError: When an index is out of range.
            ValueError: When ``size`` is not two positive integers.
            VideoError: When no wanted frame can be decoded.
        """
        if self._closed:
            raise ValueError(f"Invalid reader: {self!r} is closed. Open the video again.")
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        total = len(self._index.frame_times)
        bad = wanted[(wanted < 0) | (wanted >= total)]
        if bad.size:
            raise IndexError(f"Invalid frame index: {int(bad[0])}. It must be in [0, {total}).")
        if size is not None:
            if len(size) != 2 or any(int(v) != v or v <= 0 for v in size):
                raise ValueError(
                    f"Invalid size: {size!r}. It must be (height, width) with positive integers."
                )
            size = (int(size[0]), int(size[1]))
        height, width = size if size is not None else (self._info.height, self._info.width)
        out = np.empty((len(wanted), height, width, 3), dtype=np.uint8)
        if not len(wanted):
            return out
        slots: dict[int, list[int]] = {}
        for slot, i in enumerate(wanted.tolist()):
            slots.setdefault(i, []).append(slot)
        rotation = self._info.rotation

        def sink(frame_index: int, frame: av.VideoFrame) -> None:
            targets = slots[frame_index]
            out[targets[0]] = frame_to_rgb(frame, rotation, size)
            for slot in targets[1:]:
                out[slot] = out[targets[0]]

        with self._lock:
            self._failures = failures = DecodeFailures(self._path, float(self._index.time_base))
            done = self._decode_into(sorted(slots), sink)
        missing = sorted(set(slots) - done)
        failures.missing_frames, failures.wanted_frames = len(missing), len(slots)
        failures.report(logger)
        if missing:
            if not done:
                raise VideoError(
                    self._path, "its video stream cannot be decoded: none of the wanted frames came out"
                )
            have = np.asarray(sorted(done))
            for i in missing:
                nearest = int(have[np.argmin(np.abs(have - i))])
                for slot in slots[i]:
                    out[slot] = out[slots[nearest][0]]
        return out

    def _decode_into(self, wanted: list[int], sink: FrameSink) -> set[int]:
        """Decode the frames at presentation indices ``wanted`` (sorted, unique) into ``sink``."""
        if not self._seekable:
            return self._decode_sequential(wanted, sink)
        done = self._decode_runs(wanted, sink, skip_unwanted=True)
        if len(done) < len(wanted):
            logger.debug(
                "%s: %d frame(s) missing after sparse decoding; decoding from the start",
                self._path,
                len(wanted) - len(done),
            )
            rest = [i for i in wanted if i not in done]
            done |= self._decode_sequential(rest, sink)
        return done

    def _position(self, pts: np.ndarray) -> np.ndarray:
        """Decode-order packet positions of frames with the given pts."""
        return self._pts_order[np.searchsorted(self._sorted_pts, pts)]

    def _position_of(self, pts: int) -> int:
        """Decode-order position of the packet with this pts."""
        return int(self._pts_order[np.searchsorted(self._sorted_pts, pts)])

    def _plan_runs(self, positions: np.ndarray) -> list[_Run]:
        """Group wanted packet positions into keyframe-started runs of packets to feed."""
        index = self._index
        keys = self._keyframes
        ki = np.searchsorted(keys, positions, side="right") - 1
        starts = keys[ki]
        leading = (index.packet_pts[positions] < index.packet_pts[starts]) & (ki > 0)
        starts = np.where(leading, keys[np.maximum(ki - 1, 0)], starts)  # open-GOP leading pictures
        runs: list[_Run] = []
        for start, end in sorted(zip(starts.tolist(), positions.tolist(), strict=True)):
            if runs and start <= runs[-1].end + 1:
                runs[-1].end = max(runs[-1].end, end)
            else:
                runs.append(_Run(start, end))
        return runs

    def _decode_runs(self, wanted: list[int], sink: FrameSink, *, skip_unwanted: bool) -> set[int]:
        """Decode keyframe-started runs of packets, split over worker threads by stretches of the file."""
        wanted_pts = self._index.frame_pts[wanted]
        by_pts = dict(zip(wanted_pts.tolist(), wanted, strict=True))
        runs = self._plan_runs(self._position(wanted_pts))
        groups = _split_runs(runs, min(self._workers, len(runs)))
        threads = max(1, CPU_COUNT // max(1, len(groups)))
        done: set[int] = set()
        if len(groups) <= 1:
            self._decode_group(runs, by_pts, sink, done, skip_unwanted, threads)
            return done
        with ThreadPoolExecutor(len(groups), thread_name_prefix="vidspan-decode") as pool:
            futures = [
                pool.submit(self._decode_group, g, by_pts, sink, done, skip_unwanted, threads) for g in groups
            ]
            for future in futures:
                future.result()
        return done

    def _decode_group(
        self,
        runs: list[_Run],
        by_pts: dict[int, int],
        sink: FrameSink,
        done: set[int],
        skip_unwanted: bool,
        threads: int,
    ) -> None:
        """Decode ``runs`` with one demuxer and decoder (``threads`` FFmpeg threads) into ``sink``."""
        with self._open() as container:
            stream = cast(VideoStream, container.streams[self._index.stream_index])
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            ctx = stream.codec_context
            cursor = _PacketCursor(container, stream, self)

            def take(frames: list[av.VideoFrame]) -> None:
                for frame in frames:
                    i = by_pts.get(frame.pts) if frame.pts is not None else None
                    if i is not None and i not in done:
                        sink(i, frame)
                        done.add(i)

            for run in runs:
                cursor.move_to(run.start)
                for position, packet in cursor:
                    keep = not skip_unwanted or packet.pts in by_pts
                    ctx.skip_frame = "DEFAULT" if keep else "NONREF"
                    take(_decode(ctx, packet, self._failures))
                    if position >= run.end:
                        break
                ctx.skip_frame = "DEFAULT"
                take(_decode(ctx, None, self._failures))
                ctx.flush_buffers()

    def _decode_sequential(self, wanted: list[int], sink: FrameSink) -> set[int]:
        """Decode from the start, matching frames by pts (or by output order without timestamps)."""
        index = self._index
        done: set[int] = set()
        if index.exact:
            by_key = dict(zip(index.frame_pts[wanted].tolist(), wanted, strict=True))
        else:
            by_key = {i: i for i in wanted}
        last = max(wanted)
        with self._open() as container:
            stream = cast(VideoStream, container.streams[index.stream_index])
            stream.thread_type = "AUTO"
            count = 0
            try:
                for frame in container.decode(stream):
                    key = frame.pts if index.exact else count
                    count += 1
                    i = by_key.get(key)
                    if i is not None and i not in done:
                        sink(i, frame)
                        done.add(i)
                        if len(done) == len(wanted) or (not index.exact and i >= last):
                            break
            except av.error.FFmpegError as exc:
                self._failures.add(None, exc, stopped=True)
        return done

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(str(self._path), metadata_errors="ignore")
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(self._path, f"it can no longer be opened ({exc})") from exc


class _PacketCursor:
    """Reads video packets with their decode-order positions; moves to a position by seeking or skipping."""

    def __init__(self, container: av.container.InputContainer, stream: VideoStream, reader: VideoReader):
        self._container = container
        self._stream = stream
        self._reader = reader
        self._packets: Iterator[av.Packet] = container.demux(stream)
        self._next = 0  # position of the next packet the demuxer yields
        self._pending: tuple[int, av.Packet] | None = None

    def __iter__(self) -> Iterator[tuple[int, av.Packet]]:
        while True:
            item = self._read()
            if item is None:
                return
            yield item

    def _read(self) -> tuple[int, av.Packet] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        for packet in self._packets:
            if packet.size == 0 or packet.pts is None:
                continue
            position = self._reader._position_of(packet.pts)
            self._next = position + 1
            return position, packet
        return None

    def move_to(self, target: int) -> None:
        """Make the next packet read the one at decode position ``target`` (a keyframe)."""
        if self._pending is not None and self._pending[0] == target:
            return
        if self._pending is None and 0 <= target - self._next <= SEEK_GAP_PACKETS:
            if self._skip_to(target):
                return
        index = self._reader._index
        keys = self._reader._keyframes
        k = int(np.searchsorted(keys, target, side="right")) - 1
        for attempt in range(3):
            seek_key = int(keys[max(0, k - attempt)]) if attempt < 2 else 0
            timestamp = int(min(index.packet_pts[seek_key], index.packet_dts[seek_key]))
            try:
                self._container.seek(timestamp, stream=self._stream, backward=True, any_frame=False)
            except av.error.FFmpegError as exc:
                logger.debug("seek to %d failed (%s); reading from the start", timestamp, exc)
                break
            self._packets = self._container.demux(self._stream)
            self._pending = None
            self._next = -1
            if self._skip_to(target):
                return
        raise VideoError(self._reader.path, f"seeking failed: packet {target} could not be reached")

    def _skip_to(self, target: int) -> bool:
        """Read packets without decoding until ``target``; False when the demuxer is already past it."""
        while True:
            item = self._read()
            if item is None:
                return False
            if item[0] == target:
                self._pending = item
                return True
            if item[0] > target:
                return False


def _split_runs(runs: list[_Run], parts: int) -> list[list[_Run]]:
    """Split runs into ``parts`` consecutive groups with about the same number of packets each."""
    if parts <= 1:
        return [runs] if runs else []
    sizes = np.cumsum([r.end - r.start + 1 for r in runs])
    bounds = np.searchsorted(sizes, sizes[-1] * np.arange(1, parts) / parts, side="left") + 1
    groups = [runs[a:b] for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(runs)], strict=True)]
    return [g for g in groups if g]


def _decode(
    ctx: VideoCodecContext, packet: av.Packet | None, failures: DecodeFailures
) -> list[av.VideoFrame]:
    try:
        return ctx.decode(packet)
    except av.error.EOFError:
        return []
    except av.error.FFmpegError as exc:
        failures.add(packet.pts if packet is not None else None, exc)
        return []


def frame_to_rgb(frame: av.VideoFrame, rotation: int, size: tuple[int, int] | None) -> np.ndarray:
    """A decoded frame as a uint8 ``(H, W, 3)`` RGB array: rotated for display, then resized.

    Args:
        frame: The decoded frame.
        rotation: Counterclockwise display rotation in degrees (0, 90, 180, 270).
        size: ``(height, width)`` for a Pillow bicubic (antialiased) resize, or ``None``.

    Returns:
        The RGB pixels.
    """
    if rotation == 0 and size is None:
        return frame.to_ndarray(format="rgb24")
    image = frame.to_image()
    if rotation:
        image = image.transpose(_ROTATE[rotation])
    if size is not None and (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return np.asarray(image)


def open_video(path: str | os.PathLike[str]) -> VideoReader:
    """Open a video for sampling (probe it and index its frames).

    Args:
        path: A local video file.

    Returns:
        A :class:`VideoReader`; use it as a context manager.

    Raises:
        VideoError: When the file cannot be used.
    """
    return VideoReader(path)


def sample_clip(
    path: str | os.PathLike[str], config: SamplingConfig | None = None, window: Span | None = None
) -> Clip:
    """Sample one window of a video file (the whole video by default).

    Args:
        path: A local video file.
        config: Sampling settings (default :class:`SamplingConfig`, Marlin's training settings).
        window: Stretch of source time to sample.

    Returns:
        The sampled :class:`Clip`.

    Raises:
        VideoError: When the file cannot be used.
    """
    with VideoReader(path) as reader:
        return reader.sample(config, window)
