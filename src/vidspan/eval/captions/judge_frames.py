"""The frames every video-aware judging pass shows the judge (run plumbing: :mod:`.judge_runs`).

Every video-aware pass (ground-truth audit, pairwise comparison, event verification) shows the judge the
same kind of input, made here once: ``num_frames`` frames spread evenly over the whole video, scaled to at
most ``max_pixels`` pixels, JPEG quality 85, each labelled with its presentation time. The passes also
share the small checks applied to the judge's JSON (:func:`reply_text`, :func:`reply_label`) and the
run-directory rules (:func:`open_judge_run`: ``header.json`` with the settings, resumed only with the
same settings).
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np
from PIL import Image

from vidspan.errors import VidspanError
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.judge.base import Frame
from vidspan.video import SamplingConfig, sample_clip

logger = logging.getLogger(__name__)

JPEG_QUALITY = 85
DEFAULT_NUM_FRAMES = 16
DEFAULT_MAX_PIXELS = 448 * 448


def video_frames(
    path: str | os.PathLike[str],
    *,
    num_frames: int = DEFAULT_NUM_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[Frame, ...]:
    """Sample ``num_frames`` evenly spaced frames of a video for a judge.

    The count is rounded to even and capped at the frames the file holds; a frame chosen twice (a very
    short video) is sent once. Sizes keep the aspect ratio with sides a multiple of 32.

    Args:
        path: A local video file.
        num_frames: Frames to sample (>= 2).
        max_pixels: Per-frame pixel ceiling (>= 1024).

    Returns:
        Frames in time order, each with its presentation time in source seconds.

    Raises:
        ValueError: On a bad ``num_frames`` or ``max_pixels``.
        VideoError: When the file cannot be used.
    """
    check_frame_settings(num_frames, max_pixels)
    config = SamplingConfig(num_frames=num_frames, min_frames=2, max_frames=max(num_frames, 2),
                            max_pixels=max_pixels, min_pixels=min(max_pixels, 128 * 32 * 32))  # fmt: skip
    clip = sample_clip(path, config)
    frames: list[Frame] = []
    seen: set[int] = set()
    indices = clip.frame_indices or tuple(range(clip.num_frames))
    for position, (index, seconds) in enumerate(zip(indices, clip.timestamps, strict=True)):
        if index in seen:
            continue
        seen.add(index)
        frames.append(Frame(seconds=round(float(seconds), 3), jpeg=encode_jpeg(clip.frames[position])))
    logger.debug("%s: %d judge frames of %s", path, len(frames), clip.size)
    return tuple(frames)


def check_frame_settings(num_frames: int, max_pixels: int) -> None:
    """Raise ``ValueError`` on frame settings :func:`video_frames` cannot use (check before a long run)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 2:
        raise ValueError(f"Invalid num_frames: {num_frames!r}. It must be an integer >= 2.")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 32 * 32:
        raise ValueError(f"Invalid max_pixels: {max_pixels!r}. It must be an integer >= 1024 (32 x 32).")


def encode_jpeg(rgb: np.ndarray) -> bytes:
    """JPEG bytes (quality 85) of one ``(H, W, 3)`` uint8 RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def sample_frames(
    benchmark: CaptionBenchmark, sample: CaptionSample, num_frames: int, max_pixels: int
) -> tuple[Frame, ...] | str:
    """The judge frames of a sample's video, or why there are none (a missing or unreadable video)."""
    path = benchmark.video_paths.get(sample.video)
    if path is None:
        return f"video {sample.video} is missing from {benchmark.video_dir}"
    try:
        return video_frames(path, num_frames=num_frames, max_pixels=max_pixels)
    except (VidspanError, OSError, ValueError) as exc:
        logger.warning("cannot read video %s: %s", path, exc)
        return f"cannot read video {path}: {exc}"
