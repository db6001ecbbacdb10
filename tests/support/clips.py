"""Generating test clips with the ffmpeg CLI (tests and benchmarks)."""

from __future__ import annotations

import shutil
import subprocess


def run_ffmpeg(*args: str, timeout_seconds: float = 120.0) -> None:
    """Run ``ffmpeg -y`` quietly with ``args``.

    Raises:
        RuntimeError: the ffmpeg CLI is not installed (``apt-get install ffmpeg``).
        subprocess.CalledProcessError: ffmpeg failed.
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("The ffmpeg CLI is needed to generate test clips: apt-get install ffmpeg.")
    command = [exe, "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(command, check=True, timeout=timeout_seconds, capture_output=True)
