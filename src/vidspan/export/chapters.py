"""Chapters from timed events: YouTube chapter lists, FFmpeg metadata files, and a chaptered copy of a video.

YouTube reads chapters from a video description when the list follows its rules: the first chapter starts
at ``0:00``, there are at least three, in ascending order, and each lasts at least ten seconds. Times are
whole seconds. :func:`chapters_from_events` turns events into such a list; :func:`to_youtube_chapters`
checks the rules and renders it. The same chapters can be muxed into a copy of the video
(:func:`mux_chapters`), so players show them too.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.types import Event
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

MIN_CHAPTER_SECONDS = 10.0
"""YouTube's shortest chapter."""
MIN_CHAPTERS = 3
"""YouTube's fewest chapters."""
_FFMETADATA_SPECIAL = "=;#\\\n"


@dataclass(frozen=True, slots=True)
class Chapter:
    """A chapter that starts at ``start`` seconds and lasts until the next one (or the end of the video)."""

    start: float
    title: str

    def __post_init__(self) -> None:
        if isinstance(self.start, bool) or not isinstance(self.start, (int, float)):
            raise TypeError(f"Invalid chapter start: {self.start!r}. It must be a number of seconds.")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ValueError(f"Invalid chapter start: {self.start}. It must be a finite number >= 0.")
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError(f"Invalid chapter title: {self.title!r}. It must be non-empty text.")

    def to_dict(self) -> dict[str, Any]:
        """``{"start", "title"}``."""
        return {"start": self.start, "title": self.title}


def chapters_from_events(
    events: Iterable[Event],
    duration_seconds: float,
    *,
    min_seconds: float = MIN_CHAPTER_SECONDS,
    intro_title: str = "Intro",
) -> list[Chapter]:
    """Chapters that follow YouTube's rules, one per event where the events allow it.

    Each event starts a chapter titled with its description, at its start floored to a whole second.
    The first chapter is moved to ``0:00``, unless the first event starts ``min_seconds`` or more into the
    video: then an ``intro_title`` chapter covers the start. A chapter shorter than ``min_seconds`` is
    merged into the one before it (which keeps its title), and a last chapter that ends too soon is merged
    the same way.

    Args:
        events: Timed events, in any order.
        duration_seconds: Length of the video (the end of the last chapter).
        min_seconds: Shortest chapter.
        intro_title: Title of the chapter added before a late first event.

    Returns:
        At least three chapters, ascending, the first at 0.

    Raises:
        ValueError: The video is shorter than three ``min_seconds`` chapters, there are no events, or too
            few chapters remain after merging.
    """
    _check_duration(duration_seconds)
    if duration_seconds < MIN_CHAPTERS * min_seconds:
        raise ValueError(
            f"Invalid duration_seconds: {duration_seconds:g}. YouTube chapters need at least {MIN_CHAPTERS} "
            f"chapters of {min_seconds:g} s or more, so the video must be at least "
            f"{MIN_CHAPTERS * min_seconds:g} s long."
        )
    ordered = sorted(events, key=lambda e: e.start)
    if not ordered:
        raise ValueError("Invalid events: none. Chapters are made from at least one event.")
    candidates = [
        Chapter(float(math.floor(e.start)), _one_line(e.description) or "Untitled") for e in ordered
    ]
    first = candidates[0]
    if first.start >= min_seconds:
        candidates.insert(0, Chapter(0.0, intro_title))
    else:
        candidates[0] = Chapter(0.0, first.title)
    kept = [candidates[0]]
    for chapter in candidates[1:]:
        if chapter.start - kept[-1].start >= min_seconds:
            kept.append(chapter)
    while len(kept) > 1 and duration_seconds - kept[-1].start < min_seconds:
        kept.pop()
    if len(kept) < MIN_CHAPTERS:
        raise ValueError(
            f"Cannot make YouTube chapters from {len(ordered)} event(s) in {duration_seconds:g} s: after "
            f"merging chapters shorter than {min_seconds:g} s, {len(kept)} remain and YouTube needs at least "
            f"{MIN_CHAPTERS}."
        )
    return kept


def to_youtube_chapters(
    chapters: Sequence[Chapter],
    *,
    duration_seconds: float | None = None,
    min_seconds: float = MIN_CHAPTER_SECONDS,
) -> str:
    """The chapter list for a YouTube description: ``0:00 Title`` lines (``1:02:03 Title`` past an hour).

    Args:
        chapters: Chapters in ascending order (see :func:`chapters_from_events`).
        duration_seconds: Length of the video; when given, the last chapter is checked too.
        min_seconds: Shortest chapter.

    Returns:
        One line per chapter, ending with a newline; starts are floored to whole seconds.

    Raises:
        ValueError: The chapters break one of YouTube's rules (the message says which).
    """
    starts = [math.floor(c.start) for c in chapters]
    if len(chapters) < MIN_CHAPTERS:
        raise ValueError(f"Invalid chapters: {len(chapters)}. YouTube needs at least {MIN_CHAPTERS}.")
    if starts[0] != 0:
        raise ValueError(f"Invalid first chapter start: {chapters[0].start:g}. It must be 0 (0:00).")
    for i in range(1, len(chapters)):
        if starts[i] - starts[i - 1] < min_seconds:
            raise ValueError(
                f"Invalid chapter {i + 1} start: {chapter_clock(starts[i])} ({chapters[i].title!r}). It must "
                f"be at least {min_seconds:g} s after the chapter before it ({chapter_clock(starts[i - 1])})."
            )
    if duration_seconds is not None and duration_seconds - starts[-1] < min_seconds:
        raise ValueError(
            f"Invalid last chapter start: {chapter_clock(starts[-1])}. It must be at least {min_seconds:g} s "
            f"before the end of the video ({duration_seconds:g} s)."
        )
    lines = (f"{chapter_clock(s)} {_one_line(c.title)}\n" for s, c in zip(starts, chapters, strict=True))
    return "".join(lines)


def to_ffmetadata(chapters: Sequence[Chapter], duration_seconds: float) -> str:
    """FFmpeg's metadata file (``;FFMETADATA1``) with one ``[CHAPTER]`` per chapter, in milliseconds.

    Each chapter ends where the next starts, the last at ``duration_seconds``. Titles escape ``=``, ``;``,
    ``#``, ``\\`` and newlines with a backslash, as FFmpeg's format requires.

    Raises:
        ValueError: No chapters, chapters not in strictly ascending order (to the millisecond), or the last
            one starting at or after ``duration_seconds``.
    """
    _check_duration(duration_seconds)
    if not chapters:
        raise ValueError("Invalid chapters: none. It must be at least one chapter.")
    starts = [_ms(c.start) for c in chapters]
    ends = [*starts[1:], _ms(duration_seconds)]
    lines = [";FFMETADATA1"]
    for chapter, start, end in zip(chapters, starts, ends, strict=True):
        if end <= start:
            raise ValueError(
                f"Invalid chapter start: {chapter.start:g} ({chapter.title!r}). Chapters must be in "
                f"ascending order and start before the end of the video ({duration_seconds:g} s)."
            )
        title = "".join("\\" + ch if ch in _FFMETADATA_SPECIAL else ch for ch in chapter.title)
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}", f"title={title}"]
    return "\n".join(lines) + "\n"


def mux_chapters(
    video: str | os.PathLike[str],
    chapters: Sequence[Chapter],
    out_path: str | os.PathLike[str],
    *,
    duration_seconds: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a copy of ``video`` with ``chapters`` (streams copied, not re-encoded); the source is untouched.

    ffmpeg reads the chapters from an FFmpeg metadata file (``-map_chapters``; the video's own chapters
    are replaced, its other metadata kept) and writes a hidden temporary file beside ``out_path``, renamed
    into place only when ffmpeg succeeds.

    Args:
        video: The source video.
        chapters: Chapters in ascending order.
        out_path: The copy to write; its extension picks the container (``.mp4``, ``.mkv``, ``.mov``).
        duration_seconds: Length of the video (default: probed), the end of the last chapter.
        overwrite: Replace ``out_path`` if it exists.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``out_path`` is the source video, or the chapters are invalid (see :func:`to_ffmetadata`).
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
        MissingDependencyError: The ffmpeg CLI is not installed.
        VideoError: The video cannot be read, or ffmpeg fails to write the copy.
    """
    source, out = Path(video), Path(out_path)
    if out.resolve() == source.resolve() or (out.exists() and source.exists() and out.samefile(source)):
        raise ValueError(
            f"Invalid out_path: {out}. It must differ from the source video: chapters go into a copy."
        )
    exe = ffmpeg_exe("Writing chapters into a video")
    check_output(out, overwrite)
    if duration_seconds is None:
        from vidspan.video import probe

        duration_seconds = probe(source).duration_seconds
    text = to_ffmetadata(chapters, duration_seconds)
    handle, meta_name = tempfile.mkstemp(prefix="vidspan-chapters-", suffix=".txt")
    meta = Path(meta_name)
    tmp = temp_beside(out)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        command = [
            exe, *QUIET, "-i", str(source), "-f", "ffmetadata", "-i", str(meta),
            "-map_metadata", "0", "-map_chapters", "1", "-codec", "copy",
        ]  # fmt: skip
        if out.suffix.lower() in FASTSTART_SUFFIXES:
            command += ["-movflags", "+faststart"]
        run_ffmpeg([*command, str(tmp)], source, tmp, f"ffmpeg could not write chapters into {out}")
        move_into_place(tmp, out, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
    logger.info("wrote %d chapters into %s", len(chapters), out)
    return out


def _check_duration(duration_seconds: float) -> None:
    if not (isinstance(duration_seconds, (int, float)) and math.isfinite(duration_seconds)):
        raise ValueError(f"Invalid duration_seconds: {duration_seconds!r}. It must be a finite number.")
    if duration_seconds <= 0:
        raise ValueError(f"Invalid duration_seconds: {duration_seconds}. It must be > 0.")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000 + 0.5)


def chapter_clock(seconds: float) -> str:
    """``0:00``, ``1:05``, ``1:02:03``: a chapter start as YouTube shows it (floored to whole seconds)."""
    seconds = math.floor(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
