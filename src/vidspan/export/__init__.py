"""Exports of captions and indexed videos: subtitles, chapters, editor timelines and highlight reels.

- :func:`to_webvtt` / :func:`to_srt`: subtitles, one cue per event.
- :func:`chapters_from_events`, :func:`to_youtube_chapters`, :func:`to_ffmetadata`, :func:`mux_chapters`:
  YouTube chapter lists, FFmpeg metadata chapters, and a chaptered copy of the video.
- :func:`to_otio` / :func:`write_otio`: OpenTimelineIO timelines (``pip install 'vidspan[export]'``).
- :func:`make_reel`: one MP4 of several search hits.
- :class:`ExportSource`: events read from ``vidspan caption --json`` output or from a library.
"""

from vidspan.export.chapters import (
    Chapter,
    chapter_clock,
    chapters_from_events,
    mux_chapters,
    to_ffmetadata,
    to_youtube_chapters,
)
from vidspan.export.otio import otio_to_string, to_otio, write_otio
from vidspan.export.reel import Reel, ReelSegment, make_reel
from vidspan.export.sources import ExportSource, ExportSourceError
from vidspan.export.subtitles import to_srt, to_webvtt

__all__ = [
    "Chapter",
    "ExportSource",
    "ExportSourceError",
    "Reel",
    "ReelSegment",
    "chapter_clock",
    "chapters_from_events",
    "make_reel",
    "mux_chapters",
    "otio_to_string",
    "to_ffmetadata",
    "to_otio",
    "to_srt",
    "to_webvtt",
    "to_youtube_chapters",
    "write_otio",
]
