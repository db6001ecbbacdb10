"""Writing FFmpeg outputs (clips, chaptered copies, reels) and files atomically: the ffmpeg CLI, a
hidden temporary name beside the output, then a rename."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from vidspan.errors import MissingDependencyError, VideoError

logger = logging.getLogger(__name__)

QUIET = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
FASTSTART_SUFFIXES = {".mp4", ".m4v", ".mov"}


def ffmpeg_exe(what: str) -> str:
    """The ffmpeg executable, or :class:`MissingDependencyError` naming ``what`` needs it."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise MissingDependencyError(
            f"{what} needs the ffmpeg CLI on PATH: apt-get install ffmpeg (or brew install ffmpeg)."
        )
    return exe


def temp_beside(out: Path) -> Path:
    """A hidden, unique name in ``out``'s folder with ``out``'s suffix (so tools pick the same format)."""
    return out.parent / f".{out.stem}.{uuid.uuid4().hex[:8]}.part{out.suffix}"


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse a directory, or an existing file unless ``overwrite``."""
    if out.is_dir():
        raise IsADirectoryError(f"Output {out} is a directory. It must be a file path.")
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"Output {out} already exists. Pass overwrite=True (--overwrite) to replace it."
        )


def run_ffmpeg(command: list[str], video: str | os.PathLike[str], tmp: Path, failure: str) -> None:
    """Run ``command``, which writes ``tmp``; on failure raise :class:`VideoError` with ffmpeg's last line."""
    logger.info("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"ffmpeg exited with status {result.returncode}"
        raise VideoError(Path(video), f"{failure}: {reason}")


def move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out``; without ``overwrite``, never replace a file that appeared meanwhile."""
    if overwrite:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)  # atomic, fails if out exists
    except FileExistsError:
        raise FileExistsError(
            f"Output {out} already exists. Pass overwrite=True (--overwrite) to replace it."
        ) from None
    except OSError:  # file systems without hard links
        if out.exists():
            raise FileExistsError(
                f"Output {out} already exists. Pass overwrite=True (--overwrite) to replace it."
            ) from None
        os.replace(tmp, out)
    else:
        tmp.unlink()


def write_text_atomically(text: str, out_path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``out_path`` through a temporary file beside it; returns the path."""
    out = Path(out_path)
    check_output(out, overwrite)
    tmp = temp_beside(out)
    try:
        tmp.write_text(text, encoding="utf-8")
        move_into_place(tmp, out, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    return out
