"""A highlight reel: the moments of several search hits, possibly from different videos, in one MP4.

One ffmpeg run seeks each hit in its video and joins them with the ``concat`` filter. Clips of different
sizes and frame rates are brought to one format first: scaled to fit the reel's frame and padded with
black (``setsar=1``), converted to its frame rate and to yuv420p, then encoded once with H.264 (libx264).
Audio is AAC stereo at 48 kHz when any hit's video has sound (silence for those without), else the reel
has no audio. Because the reel is re-encoded anyway, each segment is cut frame-exactly (ffmpeg decodes from
the keyframe before a hit and drops the frames before its start), unlike a stream-copy cut.

Every segment lasts a whole number of frames at the reel's rate, and its audio is padded or trimmed to the
same length, so the offsets in :class:`Reel` are exact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidspan.library.types import SearchHit
from vidspan.video.cut import AAC_BITRATE, X264_CRF, X264_PRESET
from vidspan.video.outputs import (
    FASTSTART_SUFFIXES,
    QUIET,
    check_output,
    ffmpeg_exe,
    move_into_place,
    run_ffmpeg,
    temp_beside,
)

logger = logging.getLogger(__name__)

MIN_HIT_SECONDS = 0.1
"""A hit shorter than this (or a point in time) is cut this long, as ``export_hits`` does."""
_SAMPLE_RATE = 48000


@dataclass(frozen=True, slots=True)
class ReelSegment:
    """One hit in the reel: ``[start, end)`` of ``video`` plays from ``offset_seconds`` into the reel."""

    video: str
    start: float
    end: float
    offset_seconds: float

    @property
    def duration_seconds(self) -> float:
        """Length in the reel."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "video": self.video, "start": self.start, "end": self.end, "offset_seconds": self.offset_seconds,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reel:
    """A written highlight reel: its file, segments in order, size, frame rate and whether it has audio."""

    path: Path
    segments: tuple[ReelSegment, ...]
    width: int
    height: int
    fps: Fraction
    has_audio: bool

    @property
    def duration_seconds(self) -> float:
        """Total length (the end of the last segment)."""
        last = self.segments[-1]
        return last.offset_seconds + last.duration_seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "path": str(self.path), "segments": [s.to_dict() for s in self.segments],
            "width": self.width, "height": self.height, "fps": float(self.fps), "has_audio": self.has_audio,
            "duration_seconds": self.duration_seconds,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Cut:
    video: Path
    start: float
    num_frames: int
    has_audio: bool


def make_reel(
    hits: Sequence[SearchHit],
    out_path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    fps: float | Fraction | None = None,
    overwrite: bool = False,
) -> Reel:
    """Cut every hit out of its video and join them, in order, into one H.264 MP4 (module docstring).

    Args:
        hits: Search hits (``video``, ``start``, ``end``), in reel order; ends past a video are clipped.
        out_path: The reel to write; written to a temporary file beside it and renamed on success.
        size: ``(width, height)`` of the reel (default: the first hit's video, rounded down to even).
        fps: Frame rate of the reel (default: the first hit's video).
        overwrite: Replace ``out_path`` if it exists.

    Returns:
        A :class:`Reel` with the segments and their offsets in the reel.

    Raises:
        ValueError: No hits, a hit that starts at or after the end of its video, a bad ``size`` or ``fps``,
            or ``out_path`` is one of the hits' videos.
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
        MissingDependencyError: The ffmpeg CLI is not installed.
        VideoError: A video cannot be read, or ffmpeg fails.
    """
    from vidspan.video import probe

    if not hits:
        raise ValueError("Invalid hits: none. A reel needs at least one hit.")
    out = Path(out_path)
    sources = {Path(hit.video).resolve() for hit in hits}
    if out.resolve() in sources:
        raise ValueError(f"Invalid out_path: {out}. It must not be one of the hits' videos.")
    exe = ffmpeg_exe("Making a reel")
    check_output(out, overwrite)
    infos = {path: probe(path) for path in sources}
    first = infos[Path(hits[0].video).resolve()]
    width, height = size if size is not None else (first.width // 2 * 2, first.height // 2 * 2)
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"Invalid size: {width}x{height}. It must be even numbers of pixels, at least 2x2.")
    rate = Fraction(fps if fps is not None else first.fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"Invalid fps: {fps}. It must be > 0.")
    audio = {path: _has_audio(path) for path in sources}
    cuts = []
    for hit in hits:
        path = Path(hit.video).resolve()
        cuts.append(_cut(hit, path, infos[path].duration_seconds, rate, audio[path]))
    has_audio = any(cut.has_audio for cut in cuts)
    graph = _filter_graph(cuts, width, height, rate, has_audio)
    command = [exe, *QUIET]
    for cut in cuts:
        seconds = float(cut.num_frames / rate) + 1.0  # a little extra: tpad/trim make the length exact
        command += ["-ss", f"{cut.start:.6f}", "-t", f"{seconds:.6f}", "-i", str(cut.video)]
    command += ["-filter_complex", graph, "-map", "[v]"]
    command += ["-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(X264_CRF), "-pix_fmt", "yuv420p"]
    if has_audio:
        command += ["-map", "[a]", "-c:a", "aac", "-b:a", AAC_BITRATE]
    if out.suffix.lower() in FASTSTART_SUFFIXES:
        command += ["-movflags", "+faststart"]
    tmp = temp_beside(out)
    try:
        run_ffmpeg([*command, str(tmp)], cuts[0].video, tmp, f"ffmpeg could not make the reel {out}")
        move_into_place(tmp, out, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    segments, offset = [], Fraction(0)
    for hit, cut in zip(hits, cuts, strict=True):
        length = cut.num_frames / rate
        segments.append(ReelSegment(hit.video, float(cut.start), float(cut.start + length), float(offset)))
        offset += length
    logger.info("wrote a reel of %d segments (%.3f s) to %s", len(segments), float(offset), out)
    return Reel(out, tuple(segments), width, height, rate, has_audio)


def _cut(hit: SearchHit, path: Path, duration_seconds: float, rate: Fraction, has_audio: bool) -> _Cut:
    if not 0 <= hit.start < duration_seconds:
        raise ValueError(
            f"Invalid hit start: {hit.start:g} in {hit.video}. It must be in [0, {duration_seconds:g}), "
            "inside the video."
        )
    end = min(max(hit.end, hit.start + MIN_HIT_SECONDS), duration_seconds)
    num_frames = max(1, round((end - hit.start) * rate))
    return _Cut(path, hit.start, num_frames, has_audio)


def _has_audio(video: Path) -> bool:
    import av

    with av.open(str(video), metadata_errors="ignore") as container:
        return bool(container.streams.audio)


def _filter_graph(cuts: list[_Cut], width: int, height: int, rate: Fraction, has_audio: bool) -> str:
    """One chain per cut (video ``[vI]``, audio ``[aI]``), then ``concat`` into ``[v]`` (and ``[a]``)."""
    chains, labels = [], []
    for i, cut in enumerate(cuts):
        seconds = f"{float(cut.num_frames / rate):.6f}"
        chains.append(
            f"[{i}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={rate.numerator}/{rate.denominator},"
            f"format=yuv420p,tpad=stop_mode=clone:stop_duration={seconds},trim=end_frame={cut.num_frames},"
            f"setpts=PTS-STARTPTS[v{i}]"
        )
        labels.append(f"[v{i}]")
        if not has_audio:
            continue
        if cut.has_audio:
            chains.append(
                f"[{i}:a:0]aresample={_SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                f"apad=whole_dur={seconds},atrim=duration={seconds},asetpts=PTS-STARTPTS[a{i}]"
            )
        else:
            chains.append(f"anullsrc=r={_SAMPLE_RATE}:cl=stereo,atrim=duration={seconds}[a{i}]")
        labels.append(f"[a{i}]")
    outputs = "[v][a]" if has_audio else "[v]"
    chains.append(f"{''.join(labels)}concat=n={len(cuts)}:v=1:a={int(has_audio)}{outputs}")
    return ";".join(chains)
