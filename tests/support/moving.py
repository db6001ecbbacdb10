"""Generated clips with a known moving object, and a "model" that finds it in the frames it is shown.

The object is a red square on black moving at constant speed, so its true centre at any time is known;
:func:`find_red` locates it in a frame the way a perfect pointing model would. Tests compare what
``vidspan.point`` / ``track`` report (after parsing, coordinate scaling, rotation and windowing) with the
truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from support.clips import run_ffmpeg


@dataclass(frozen=True)
class Motion:
    """A ``size``-pixel square from ``(x0, y0)`` (top-left) moving ``vx`` pixels per second on a
    ``width`` x ``height`` frame; ``rotation`` is the display rotation written in the file."""

    width: int = 160
    height: int = 96
    size: int = 16
    x0: float = 8.0
    y0: float = 40.0
    vx: float = 30.0
    duration: float = 4.0
    rate: int = 10
    rotation: int = 0

    def centre(self, t: float) -> tuple[float, float]:
        """The true centre at ``t`` seconds in stored pixels (pixel centres at +0.5)."""
        return self.x0 + self.vx * t + self.size / 2, self.y0 + self.size / 2

    def displayed(self, t: float) -> tuple[float, float]:
        """The true centre at ``t`` in displayed pixels: the display matrix's rotation (counter-clockwise
        degrees, as ffprobe reports it) applied, as FFmpeg's autorotate does."""
        x, y = self.centre(t)
        if self.rotation == 90:
            return y, self.width - x
        if self.rotation == 270:
            return self.height - y, x
        if self.rotation == 180:
            return self.width - x, self.height - y
        return x, y


def moving_clip(path: Path, motion: Motion = Motion()) -> Path:
    """Write the clip of ``motion`` as H.264 MP4 (with a rotation tag when ``motion.rotation``)."""
    m = motion
    plain = path if not m.rotation else path.with_name(path.stem + ".plain.mp4")
    run_ffmpeg("-f", "lavfi", "-i", f"color=c=black:s={m.width}x{m.height}:d={m.duration}:r={m.rate}",
               "-f", "lavfi", "-i", f"color=c=red:s={m.size}x{m.size}:d={m.duration}:r={m.rate}",
               "-filter_complex", f"[0][1]overlay=x='{m.x0}+{m.vx}*t':y={m.y0}",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(plain))  # fmt: skip
    if m.rotation:
        # FFmpeg 5's rotate tag becomes a display matrix that ffprobe reports as the same rotation
        run_ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={m.rotation}", str(path))
        plain.unlink()
    return path


def find_red(frame: np.ndarray) -> tuple[float, float] | None:
    """The centre of the red pixels of an RGB frame, normalised to 0–1 (None when there are none)."""
    red = (frame[..., 0] > 128) & (frame[..., 1] < 100) & (frame[..., 2] < 100)
    ys, xs = np.nonzero(red)
    if len(xs) == 0:
        return None
    height, width = red.shape
    return (float(xs.mean()) + 0.5) / width, (float(ys.mean()) + 0.5) / height


def red_frames(clip) -> list[tuple[float, list[tuple[float, float]]]]:
    """``(seconds since the window start, [(x_px, y_px)])`` of the red square in each frame of a clip,
    in the clip's own pixels."""
    height, width = clip.size
    out = []
    for frame, t in zip(clip.frames, clip.timestamps, strict=True):
        found = find_red(frame)
        out.append((t - clip.window.start, [] if found is None else [(found[0] * width, found[1] * height)]))
    return out


def molmo2_reply(clip, prompt: str) -> str:
    """What a perfect Molmo2 would answer about the red square: tracks, a count, or points."""
    from vidspan.points.formats import format_count, format_points, format_tracks

    height, width = clip.size
    frames = red_frames(clip)
    if prompt.startswith("Track"):
        positions = [(t, x, y) for t, pts in frames for x, y in pts]
        return format_tracks({"square": positions}, width, height, "red square")
    if prompt.startswith("How many"):
        seen = [(t, pts) for t, pts in frames if pts][:1]  # the one square, pointed at once
        return format_count(len(seen), format_points(seen, width, height, "red square"))
    return format_points(frames, width, height, "red square")


def qwen_reply(clip, prompt: str) -> str:
    """What a perfect Qwen3-VL would answer about the red square: JSON points with times."""
    import json

    height, width = clip.size
    items = [{"time": round(t, 1), "id": 1, "point_2d": [round(1000 * x / width), round(1000 * y / height)],
              "label": "red square"} for t, pts in red_frames(clip) for x, y in pts]  # fmt: skip
    return "```json\n" + json.dumps(items) + "\n```" if items else "There are none."
