"""Which frames to sample and at what size: qwen-vl-utils 0.0.14's rules, by time instead of by index.

Everything here is pure arithmetic (no I/O, no torch). The frame-count rule (:func:`smart_nframes`), the
per-frame pixel budget (:func:`frame_pixel_budget`) and :func:`smart_resize` follow qwen-vl-utils 0.0.14
``vision_process.py``, so a model sees the frames it was trained on. Frames are then chosen by
presentation time (:func:`select_frames`), which gives qwen-vl-utils' indices on constant-frame-rate files
and correct times on variable-frame-rate ones.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from vidspan.types import Span

logger = logging.getLogger(__name__)

FRAME_FACTOR = 2
"""Frame counts are multiples of this (Qwen-VL towers embed frames in pairs)."""
VIDEO_MIN_TOKEN_NUM = 128
"""Per-frame floor, in tokens of ``factor x factor`` pixels."""
VIDEO_MAX_TOKEN_NUM = 768
"""Per-frame ceiling, in tokens, before ``max_pixels`` and ``total_pixels`` lower it."""
MAX_RATIO = 200
"""Largest aspect ratio :func:`smart_resize` accepts."""

_TIE_SECONDS = 1e-9  # two frames closer than this to a target time count as equally near


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    """How to sample frames from a window of video (defaults: Marlin-2B's training settings).

    Attributes:
        fps: Target sampling rate in frames per second of source time.
        min_frames: Fewest frames per window (rounded up to even).
        max_frames: Most frames per window (rounded down to even); beyond ``max_frames / fps`` seconds the
            effective rate drops.
        max_pixels: Per-frame pixel ceiling (200,704 = 196 tokens of 32 x 32).
        min_pixels: Per-frame pixel floor; ``None`` means ``128 * patch_factor**2``.
        total_pixels: Whole-window pixel budget shared by all frames (qwen-vl-utils semantics: divided
            over the ``n / 2`` temporal patches); ``None`` means no cap beyond ``max_pixels``.
        patch_factor: Pixel size of one merged token: 32 for Qwen3-VL / Qwen3.5 / Marlin, 28 for Qwen2.5-VL.
        num_frames: A fixed frame count (rounded to even) that replaces the ``fps`` rule.
    """

    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 240
    max_pixels: int = 200704
    min_pixels: int | None = None
    total_pixels: int | None = None
    patch_factor: int = 32
    num_frames: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, int | float) and math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"Invalid fps: {self.fps}. It must be > 0.")
        _check_int("min_frames", self.min_frames, 1)
        _check_int("max_frames", self.max_frames, 2)
        if self.max_frames < self.min_frames:
            raise ValueError(
                f"Invalid max_frames: {self.max_frames}. It must be >= min_frames ({self.min_frames})."
            )
        _check_int("patch_factor", self.patch_factor, 1)
        _check_int("max_pixels", self.max_pixels, 1)
        if self.min_pixels is not None:
            _check_int("min_pixels", self.min_pixels, 1)
        if self.max_pixels < self.frame_min_pixels:
            raise ValueError(
                f"Invalid max_pixels: {self.max_pixels}. It must be >= min_pixels ({self.frame_min_pixels}); "
                "lower min_pixels too."
            )
        if self.total_pixels is not None:
            _check_int("total_pixels", self.total_pixels, 1)
        if self.num_frames is not None:
            _check_int("num_frames", self.num_frames, 2)

    @property
    def frame_min_pixels(self) -> int:
        """The per-frame pixel floor: ``min_pixels``, or 128 tokens of ``patch_factor**2`` pixels.

        Without an explicit ``min_pixels`` the floor never exceeds ``max_pixels``, so lowering only the
        budget works (qwen-vl-utils asserts instead, a common pitfall).
        """
        if self.min_pixels is not None:
            return self.min_pixels
        return min(VIDEO_MIN_TOKEN_NUM * self.patch_factor**2, self.max_pixels)

    @property
    def window_seconds(self) -> float:
        """Longest window sampled at the full ``fps``: ``max_frames / fps``."""
        return self.max_frames / self.fps


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Invalid {name}: {value!r}. It must be an integer >= {minimum}.")


def round_by_factor(number: float, factor: int) -> int:
    """The multiple of ``factor`` nearest to ``number`` (Python rounding: halves go to even)."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    """The smallest multiple of ``factor`` that is >= ``number``."""
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    """The largest multiple of ``factor`` that is <= ``number``."""
    return math.floor(number / factor) * factor


def smart_nframes(num_source_frames: int, duration_seconds: float, config: SamplingConfig) -> int:
    """How many frames to sample from a stretch of video (qwen-vl-utils 0.0.14 ``smart_nframes``).

    With ``config.num_frames`` the count is that number rounded to even. Otherwise ``duration * fps``
    (for qwen-vl-utils' exact count pass ``num_frames / average_fps`` as the duration), clamped to
    ``[min_frames rounded up to even, max_frames rounded down to even]``, capped at the number
    of source frames and rounded down to even. Unlike qwen-vl-utils this never raises: a source with fewer
    than 2 frames gives 2 (the frame is repeated), and a fixed count above the source count is capped.

    Args:
        num_source_frames: Frames available in the stretch.
        duration_seconds: Its length in seconds.
        config: Sampling settings.

    Returns:
        An even frame count >= 2.

    Raises:
        ValueError: On a negative frame count or a negative or non-finite duration.
    """
    if num_source_frames < 0:
        raise ValueError(f"Invalid num_source_frames: {num_source_frames}. It must be >= 0.")
    if not (math.isfinite(duration_seconds) and duration_seconds >= 0):
        raise ValueError(f"Invalid duration_seconds: {duration_seconds}. It must be a finite number >= 0.")
    if num_source_frames < FRAME_FACTOR:
        return FRAME_FACTOR
    if config.num_frames is not None:
        nframes = round_by_factor(config.num_frames, FRAME_FACTOR)
        return max(FRAME_FACTOR, min(nframes, floor_by_factor(num_source_frames, FRAME_FACTOR)))
    min_frames = ceil_by_factor(config.min_frames, FRAME_FACTOR)
    max_frames = floor_by_factor(config.max_frames, FRAME_FACTOR)
    wanted = duration_seconds * config.fps  # qwen-vl-utils' float arithmetic, floored below
    clamped = min(min(max(wanted, min_frames), max_frames), num_source_frames)
    return max(FRAME_FACTOR, floor_by_factor(clamped, FRAME_FACTOR))


def smart_resize(
    height: int, width: int, *, factor: int, min_pixels: float, max_pixels: float
) -> tuple[int, int]:
    """The frame size a Qwen-VL model expects (qwen-vl-utils ``smart_resize``).

    Both sides become multiples of ``factor``, the area lands in ``[min_pixels, max_pixels]`` and the
    aspect ratio is kept as closely as possible.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        factor: Pixel size of one merged token (32 or 28).
        min_pixels: Area floor.
        max_pixels: Area ceiling.

    Returns:
        ``(height, width)`` after resizing.

    Raises:
        ValueError: On non-positive sizes, ``max_pixels < min_pixels``, or an aspect ratio above 200.

    Example:
        >>> smart_resize(360, 640, factor=32, min_pixels=131072, max_pixels=200704)
        (320, 576)
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"Invalid frame size: {width}x{height}. Both sides must be > 0.")
    if factor <= 0:
        raise ValueError(f"Invalid factor: {factor}. It must be > 0.")
    if max_pixels < min_pixels:
        raise ValueError(f"Invalid max_pixels: {max_pixels}. It must be >= min_pixels ({min_pixels}).")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise ValueError(f"Invalid aspect ratio: {ratio:.1f} ({width}x{height}). It must be <= {MAX_RATIO}.")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def frame_pixel_budget(num_frames: int, config: SamplingConfig) -> tuple[int, float]:
    """Per-frame ``(min_pixels, max_pixels)`` for a clip of ``num_frames`` (qwen-vl-utils 0.0.14 rule).

    The ceiling is ``max(min(768 * factor**2, total_pixels / num_frames * 2), 1.05 * min_pixels)``,
    lowered to ``config.max_pixels`` (a larger request cannot raise it). Without ``total_pixels`` only the
    768-token and ``max_pixels`` caps apply. The ceiling may be fractional, exactly as in qwen-vl-utils.

    Args:
        num_frames: Frames in the clip (> 0).
        config: Sampling settings.

    Returns:
        ``(min_pixels, max_pixels)`` to pass to :func:`smart_resize`.

    Raises:
        ValueError: When ``num_frames`` is not positive.
    """
    if num_frames <= 0:
        raise ValueError(f"Invalid num_frames: {num_frames}. It must be > 0.")
    factor = config.patch_factor
    min_pixels = config.frame_min_pixels
    ceiling: float = VIDEO_MAX_TOKEN_NUM * factor * factor
    if config.total_pixels is not None:
        ceiling = min(ceiling, config.total_pixels / num_frames * FRAME_FACTOR)
    ceiling = max(ceiling, int(min_pixels * 1.05))
    if config.max_pixels > ceiling:
        logger.debug(
            "max_pixels %s exceeds the per-frame limit %s; using the limit", config.max_pixels, ceiling
        )
    return min_pixels, min(config.max_pixels, ceiling)


_BOUND_SLACK_SECONDS = 1e-6


def select_frames(
    frame_times: np.ndarray, window: Span, config: SamplingConfig, *, average_fps: float | None = None
) -> np.ndarray:
    """Indices of the frames to sample from ``window``, chosen by presentation time.

    The frames whose time lies in ``[window.start, window.end)`` are counted; :func:`smart_nframes` gets
    that count and a duration. With ``average_fps`` (a constant-rate file) the duration is
    ``count / average_fps``, qwen-vl-utils' own quantity, so the count equals its count in every
    container (rounded pts, such as 60 fps on Matroska's 1 ms ticks, cannot move it across an even
    boundary). Without it (a variable-rate file) the duration comes from the pts: first to last frame
    plus one mean frame interval, to the microsecond. Target times are
    spread evenly from the first to the last of those frames and each takes the frame nearest in time
    (ties go to the even index, like ``torch.round``). On a constant-frame-rate file this is exactly
    qwen-vl-utils' ``round(linspace(first, last, n))``; on a variable-frame-rate file the samples stay
    evenly spaced in time. A window holding no frame start takes the frame on screen at ``window.start``;
    a single frame is repeated to make 2.

    Args:
        frame_times: Presentation times in seconds of all frames, ascending.
        window: The stretch of source time to sample.
        config: Sampling settings.
        average_fps: The file's average frame rate (``VideoInfo.fps``) when its rate is constant.

    Returns:
        int64 indices into ``frame_times``, non-decreasing, of even length.

    Raises:
        ValueError: When ``frame_times`` is empty or not one-dimensional.
    """
    times = np.asarray(frame_times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"Invalid frame_times: shape {times.shape}. It must be a non-empty 1-D array.")
    # window bounds computed from durations carry float noise (180.00000000000006): a microsecond of slack
    lo = int(np.searchsorted(times, window.start - _BOUND_SLACK_SECONDS, side="left"))
    hi = int(np.searchsorted(times, window.end - _BOUND_SLACK_SECONDS, side="left"))  # exclusive
    count = hi - lo
    if count <= 1:
        index = lo if count == 1 else max(0, int(np.searchsorted(times, window.start, side="right")) - 1)
        return np.full(FRAME_FACTOR, index, dtype=np.int64)
    first, last = times[lo], times[hi - 1]
    if average_fps is not None and math.isfinite(average_fps) and average_fps > 0:
        duration = count / average_fps
    else:
        # pts carry float error (119.99999 s for 1200 frames at 10 fps): a microsecond keeps the count
        # from dropping by 2 at an even boundary
        duration = round((last - first) * count / (count - 1), 6)
    nframes = smart_nframes(count, duration, config)
    targets = np.linspace(first, last, nframes)
    return _nearest(times[lo:hi], targets) + lo


def _nearest(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target time, the index of the nearest time (ties to the even index)."""
    right = np.clip(np.searchsorted(times, targets, side="left"), 1, len(times) - 1)
    left = right - 1
    d_left = targets - times[left]
    d_right = times[right] - targets
    pick = np.where(d_left < d_right, left, right)
    tie = np.abs(d_left - d_right) <= _TIE_SECONDS
    pick = np.where(tie, np.where(left % 2 == 0, left, right), pick)
    return pick.astype(np.int64)


def plan_windows(
    duration_seconds: float,
    *,
    window_seconds: float,
    overlap_seconds: float,
    start_seconds: float = 0.0,
) -> list[Span]:
    """Split a video into overlapping windows of at most ``window_seconds``.

    A video that fits gives one window. Otherwise the video is covered by the fewest windows of at most
    ``window_seconds`` that overlap by exactly ``overlap_seconds``; all windows have the same length, so
    none is mostly a repeat of its neighbour (a 139 s video gives two 74.7 s windows, not 0-120 and
    19-139).

    Args:
        duration_seconds: Length of the video.
        window_seconds: Length of each window (> 0).
        overlap_seconds: Time shared by consecutive windows (>= 0 and < ``window_seconds``).
        start_seconds: Time of the first frame (the video's start time).

    Returns:
        Windows in order, covering ``[start_seconds, start_seconds + duration_seconds]``.

    Raises:
        ValueError: On a negative duration, a non-positive window or an overlap outside its range.

    Example:
        >>> [w.to_tuple() for w in plan_windows(320, window_seconds=120, overlap_seconds=10)]
        [(0.0, 113.333333), (103.333333, 216.666667), (206.666667, 320.0)]
    """
    if not (math.isfinite(duration_seconds) and duration_seconds >= 0):
        raise ValueError(f"Invalid duration_seconds: {duration_seconds}. It must be a finite number >= 0.")
    if not (math.isfinite(window_seconds) and window_seconds > 0):
        raise ValueError(f"Invalid window_seconds: {window_seconds}. It must be > 0.")
    if not (math.isfinite(overlap_seconds) and 0 <= overlap_seconds < window_seconds):
        raise ValueError(
            f"Invalid overlap_seconds: {overlap_seconds}. "
            f"It must be >= 0 and < window_seconds ({window_seconds})."
        )
    if not (math.isfinite(start_seconds) and start_seconds >= 0):
        raise ValueError(f"Invalid start_seconds: {start_seconds}. It must be a finite number >= 0.")
    start = round(float(start_seconds), 6)  # microseconds: keeps float noise out of window bounds
    end = round(start + float(duration_seconds), 6)
    if duration_seconds <= window_seconds:
        return [Span(start, end)]
    # the fewest windows of at most window_seconds that cover the video with the requested overlap, all
    # of one length: no window is mostly a repeat of its neighbour, and every window keeps the same
    # frame density
    count = math.ceil((duration_seconds - overlap_seconds) / (window_seconds - overlap_seconds) - 1e-9)
    length = (duration_seconds + (count - 1) * overlap_seconds) / count
    step = length - overlap_seconds
    windows = [
        Span(round(start + i * step, 6), round(start + i * step + length, 6)) for i in range(count - 1)
    ]
    windows.append(Span(round(end - length, 6), end))
    return windows
