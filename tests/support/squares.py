"""The recipe demo's synthetic grounding task: black clips in which a red square is visible for one span."""

from __future__ import annotations

from pathlib import Path

from support.clips import run_ffmpeg
from vidspan.video import SamplingConfig

QUERY = "a red square is visible"
SAMPLING = SamplingConfig(fps=2.0, max_frames=8, max_pixels=64 * 64, min_pixels=32 * 32)


def square_clip(path: Path, start: float, end: float, duration: float = 4.0, rate: int = 4) -> Path:
    """Write a ``duration`` s 64x64 H.264 clip with a red square visible in ``[start, end)``."""
    box = f"drawbox=x=16:y=16:w=32:h=32:color=red:t=fill:enable='between(t,{start},{end - 0.01})'"
    run_ffmpeg("-f", "lavfi", "-i", f"color=c=black:s=64x64:d={duration}:r={rate}", "-vf", box,
               "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path
