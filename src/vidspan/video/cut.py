"""Cut a clip out of a video with the ffmpeg CLI: fast stream copy, or a frame-exact re-encode.

Stream copy (the default) copies the compressed packets, so it is instant and lossless, but a clip can only
start on a keyframe: ffmpeg starts at the last keyframe at or before ``start_seconds`` (up to one GOP early,
several seconds on long-GOP files) and the clip is that much longer. ``precise=True`` decodes from that
keyframe, drops the frames before ``start_seconds`` and re-encodes (H.264 with libx264, AAC audio), so the
clip starts and ends on the requested frames, at the cost of encoding time and one generation of quality.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from vidspan.video.outputs import check_output, ffmpeg_exe, move_into_place, run_ffmpeg, temp_beside
from vidspan.video.probe import probe

logger = logging.getLogger(__name__)

X264_PRESET = "veryfast"
X264_CRF = 18
"""Visually lossless for most content; the clip is a copy of a moment, not a new master."""
AAC_BITRATE = "160k"
_FASTSTART = {".mp4", ".m4v", ".mov"}


def cut_clip(
    video: str | os.PathLike[str],
    start_seconds: float,
    end_seconds: float,
    out_path: str | os.PathLike[str],
    *,
    precise: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write the part ``[start_seconds, end_seconds)`` of ``video`` to ``out_path``.

    The range is clipped to the video's duration. The clip is written to a hidden temporary file beside
    ``out_path`` and renamed into place when ffmpeg succeeds, so a failed cut leaves nothing behind.

    Args:
        video: The source video.
        start_seconds: Start of the clip, seconds from the beginning of the video.
        end_seconds: End of the clip (exclusive); past the end of the video means "to the end".
        out_path: The clip to write; its extension picks the container (``.mp4``, ``.mkv``, ...).
        precise: Re-encode for a frame-exact start (libx264 + AAC) instead of copying from the keyframe
            at or before ``start_seconds``.
        overwrite: Replace ``out_path`` if it exists.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: The times are not finite, ``start_seconds < 0``, ``end_seconds <= start_seconds``, or
            ``start_seconds`` is at or past the end of the video.
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
        MissingDependencyError: The ffmpeg CLI is not installed.
        VideoError: The video cannot be read, or ffmpeg fails to cut it.
    """
    _check_times(start_seconds, end_seconds)
    exe = ffmpeg_exe("Cutting clips")
    info = probe(video)
    out = Path(out_path)
    check_output(out, overwrite)
    if start_seconds >= info.duration_seconds:
        raise ValueError(
            f"Invalid start_seconds: {start_seconds}. It must be before the end of the video "
            f"({info.duration_seconds:.3f} s)."
        )
    end = min(end_seconds, info.duration_seconds)
    tmp = temp_beside(out)
    command = _command(exe, Path(video), start_seconds, end - start_seconds, tmp, precise)
    logger.info("cutting %s [%.3f, %.3f) -> %s", video, start_seconds, end, out)
    try:
        run_ffmpeg(command, video, tmp, f"ffmpeg could not cut [{start_seconds}, {end}) into {out}")
        move_into_place(tmp, out, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _check_times(start_seconds: float, end_seconds: float) -> None:
    for name, value in (("start_seconds", start_seconds), ("end_seconds", end_seconds)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"Invalid {name}: {value!r}. It must be a finite number of seconds.")
    if start_seconds < 0:
        raise ValueError(f"Invalid start_seconds: {start_seconds}. It must be >= 0.")
    if end_seconds <= start_seconds:
        raise ValueError(
            f"Invalid end_seconds: {end_seconds}. It must be greater than start_seconds ({start_seconds})."
        )


def _command(exe: str, video: Path, start: float, duration: float, tmp: Path, precise: bool) -> list[str]:
    """The ffmpeg command line.

    ``-ss`` before ``-i`` seeks the input: with ``-c copy`` from the keyframe at or before ``start``; when
    re-encoding, ffmpeg's accurate seek (on by default) decodes from that keyframe and discards frames until
    ``start``, so the first frame is the one shown at ``start`` and gets pts 0.
    """
    head = [
        exe,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{start:.6f}",
        "-i",
        str(video),
    ]
    maps = ["-map", "0:v:0", "-map", "0:a?", "-t", f"{duration:.6f}"]
    if precise:
        codecs = [
            "-c:v",
            "libx264",
            "-preset",
            X264_PRESET,
            "-crf",
            str(X264_CRF),
            "-c:a",
            "aac",
            "-b:a",
            AAC_BITRATE,
        ]
    else:
        codecs = ["-c", "copy", "-avoid_negative_ts", "make_zero"]
    extra = ["-movflags", "+faststart"] if tmp.suffix.lower() in _FASTSTART else []
    return [*head, *maps, *codecs, *extra, str(tmp)]

