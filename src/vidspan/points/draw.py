"""Pictures of an answer: an annotated MP4 and a PNG contact sheet with the points and tracks drawn.

Frames come from the source video as displayed (rotation applied), so a point's pixels land where it was
reported. In the MP4 a pointing point shows for ``hold`` seconds around its time; a track's position is
interpolated between its reported times (never across a gap longer than ``max_gap``) with a short trail.
Both files are written next to their destination and renamed into place, so a failure leaves nothing
that looks whole.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidspan.errors import MissingDependencyError, VideoError
from vidspan.points.results import Point, Pointing, Tracking
from vidspan.video import open_video

PALETTE = ((255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120), (220, 90, 255), (255, 140, 40),
           (0, 220, 220), (255, 105, 180))  # fmt: skip
BATCH = 32


def color(object_id: int) -> tuple[int, int, int]:
    """The drawing colour of an object id (the same in the MP4, the sheet and the timeline page)."""
    return PALETTE[(object_id - 1) % len(PALETTE)]


def positions_at(answer: Pointing | Tracking, t: float, *, hold: float = 0.5, max_gap: float = 1.5,
                 trail: float = 1.0) -> list[tuple[Point, list[tuple[float, float]]]]:  # fmt: skip
    """What is drawn at time ``t``: each visible point (tracks interpolated) with its trail in pixels."""
    if isinstance(answer, Tracking):
        out = []
        for track in answer.tracks:
            ps = track.positions
            here = _interpolate(ps, t, max_gap) if ps else None
            if here is None:
                continue
            tail = [(p.x, p.y) for p in ps if t - trail <= p.t <= t]
            out.append((here, [*tail, (here.x, here.y)]))
        return out
    return [(p, []) for p in answer.points if abs(p.t - t) <= hold / 2]


def _interpolate(ps: Sequence[Point], t: float, max_gap: float) -> Point | None:
    if t < ps[0].t - 1e-6 or t > ps[-1].t + 1e-6:
        return None
    for a, b in zip(ps, ps[1:], strict=False):
        if a.t - 1e-6 <= t <= b.t + 1e-6:
            if b.t - a.t > max_gap:
                return a if t - a.t < 0.25 else (b if b.t - t < 0.25 else None)
            w = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
            pairs = ((a.x, b.x), (a.y, b.y), (a.x_norm, b.x_norm), (a.y_norm, b.y_norm))
            mix = [u + w * (v - u) for u, v in pairs]
            return Point(t, *mix, a.object_id, a.label)
    return ps[-1] if abs(ps[-1].t - t) < 0.25 else None


def draw_on(frame: np.ndarray, marks: Iterable[tuple[Point, list[tuple[float, float]]]], scale: float,
            caption: str = "") -> Image.Image:  # fmt: skip
    """Draw marks (points in source pixels, multiplied by ``scale``) on one RGB frame."""
    image = Image.fromarray(frame)
    pen = ImageDraw.Draw(image)
    radius = max(3.0, min(image.size) / 40)
    for point, tail in marks:
        rgb = color(point.object_id)
        if len(tail) > 1:
            pen.line([(x * scale, y * scale) for x, y in tail], fill=rgb, width=max(1, int(radius / 2)))
        x, y = point.x * scale, point.y * scale
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), outline=(255, 255, 255), fill=rgb,
                    width=max(1, int(radius / 3)))  # fmt: skip
        pen.text((x + radius + 2, y - radius), f"{point.object_id}", fill=rgb)
    if caption:
        pen.rectangle((0, 0, 8 + 7 * len(caption), 16), fill=(0, 0, 0))
        pen.text((4, 2), caption, fill=(255, 255, 255))
    return image


def draw_video(answer: Pointing | Tracking, out_path: str | os.PathLike[str], *, fps: float | None = None,
               max_width: int = 1280, hold: float = 0.5) -> Path:  # fmt: skip
    """Write the answer's video with its points or tracks drawn on every frame, as H.264 MP4.

    Args:
        answer: A :class:`Pointing`, :class:`~vidspan.points.results.Counting` or :class:`Tracking`.
        out_path: The MP4 to write.
        fps: Output frame rate (default: the source's, at most 10 fps).
        max_width: Frames wider than this are scaled down.
        hold: Seconds a pointing point stays drawn around its time.

    Raises:
        MissingDependencyError: The ffmpeg CLI is not installed.
        VideoError: The source cannot be read or ffmpeg fails.
    """
    exe = _ffmpeg()
    out = Path(out_path)
    with open_video(answer.video) as reader:
        info = reader.info
        times = reader.frame_times
        rate = min(fps or 10.0, info.fps or 10.0)
        wanted = _every(times, rate)
        scale = min(1.0, max_width / info.width)
        size = (_even(info.height * scale), _even(info.width * scale))
        sx = size[1] / info.width
        tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.part{out.suffix or '.mp4'}")
        command = [exe, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", f"{size[1]}x{size[0]}", "-r", f"{rate:g}", "-i", "-", "-c:v", "libx264",
                   "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)]  # fmt: skip
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdin is not None
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start : start + BATCH]
                for index, frame in zip(chunk, reader.decode(chunk, size=size), strict=True):
                    t = float(times[index])
                    image = draw_on(frame, positions_at(answer, t, hold=hold), sx, f"{t:.1f} s")
                    proc.stdin.write(image.tobytes())
            proc.stdin.close()
            error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.wait() != 0 or not tmp.exists():
                raise VideoError(Path(answer.video), f"ffmpeg could not write {out}: {error.strip()[-200:]}")
            os.replace(tmp, out)
        except BrokenPipeError as exc:
            proc.wait()
            raise VideoError(Path(answer.video), f"ffmpeg stopped while writing {out}.") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            tmp.unlink(missing_ok=True)
    return out


def contact_sheet(answer: Pointing | Tracking, out_path: str | os.PathLike[str], *, columns: int = 4,
                  max_frames: int = 16, thumb_width: int = 320) -> Path:  # fmt: skip
    """Write a PNG grid of the frames at the answer's times (at most ``max_frames``, evenly chosen), each
    with the points of its time drawn and the time written; an answer without points shows the video's
    frames at even times."""
    if columns < 1 or max_frames < 1 or thumb_width < 16:
        raise ValueError(
            f"Invalid sheet: columns={columns}, max_frames={max_frames}, thumb_width={thumb_width}. "
            "They must be >= 1, >= 1 and >= 16."
        )
    out = Path(out_path)
    with open_video(answer.video) as reader:
        info = reader.info
        frame_times = np.asarray(reader.frame_times)
        marked = sorted({p.t for p in answer.points})
        times = marked or list(np.linspace(0, max(info.duration_seconds - 1e-3, 0), min(max_frames, 8)))
        if len(times) > max_frames:
            times = [times[round(i)] for i in np.linspace(0, len(times) - 1, max_frames)]
        indices = [int(np.abs(frame_times - t).argmin()) for t in times]
        scale = thumb_width / info.width
        size = (max(1, round(info.height * scale)), thumb_width)
        frames = reader.decode(indices, size=size)
    rows = -(-len(times) // columns)
    sheet = Image.new("RGB", (columns * size[1], rows * size[0]), (20, 20, 20))
    for n, (t, frame) in enumerate(zip(times, frames, strict=True)):
        marks = [(p, []) for p in answer.points if abs(p.t - t) < 1e-6]
        where = ((n % columns) * size[1], (n // columns) * size[0])
        sheet.paste(draw_on(frame, marks, scale, f"{t:.1f} s"), where)
    tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.part.png")
    try:
        sheet.save(tmp, format="PNG")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _every(times: Sequence[float], rate: float) -> list[int]:
    """Frame indices at about ``rate`` per second (every frame when the source is slower)."""
    picked, next_t = [], float("-inf")
    for i, t in enumerate(times):
        if t >= next_t - 1e-6:
            picked.append(i)
            next_t = t + 1.0 / rate
    return picked


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise MissingDependencyError(
            "Drawing videos needs the ffmpeg CLI on PATH: apt-get install ffmpeg (or brew install ffmpeg)."
        )
    return exe
