"""WebVTT and SRT subtitles from timed events: one cue per event, text as the event's description.

Times are rounded to whole milliseconds with one monotonic rounding (half up) for starts and ends, so a cue
never ends before it starts. A point event (``start == end``, or under a millisecond once rounded) is shown
for :data:`POINT_CUE_SECONDS`, because both formats need a cue to end after it starts. Blank lines end a cue
in both formats, so they are dropped from the text; an event without text gives no cue.

WebVTT allows overlapping cues and players stack them, so :func:`to_webvtt` writes one cue per event.
SRT players show overlapping cues badly (one hides the other, or they flicker), so :func:`to_srt` flattens
them: the timeline is cut at every cue start and end, and each piece is one cue showing the text of every
event active in it, one line per event, earliest event first. Without overlaps that is one cue per event.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import NamedTuple

from vidspan.types import Event

logger = logging.getLogger(__name__)

POINT_CUE_SECONDS = 1.0
"""How long a cue for a point event is shown."""


class _Cue(NamedTuple):
    start_ms: int
    end_ms: int
    text: str


def to_webvtt(events: Iterable[Event]) -> str:
    """A WebVTT file (``WEBVTT`` header, cues ``00:00:12.000 --> 00:00:18.500``), cues in start order.

    Cue text is escaped as the WebVTT spec requires: ``&`` → ``&amp;``, ``<`` → ``&lt;``, ``>`` → ``&gt;``
    (which also keeps ``-->`` out of the text).

    Args:
        events: Timed events (a :class:`~vidspan.types.Caption` is a sequence of them).

    Returns:
        The file's text, ending with a newline.
    """
    blocks = ["WEBVTT"]
    for cue in _cues(events):
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_clock(cue.start_ms, '.')} --> {_clock(cue.end_ms, '.')}\n{text}")
    return "\n\n".join(blocks) + "\n"


def to_srt(events: Iterable[Event]) -> str:
    """An SRT file: numbered cues ``00:00:12,000 --> 00:00:18,500``, overlaps flattened (module docstring).

    SRT has no escaping rules, so the text is written as it is.

    Args:
        events: Timed events (a :class:`~vidspan.types.Caption` is a sequence of them).

    Returns:
        The file's text, ending with a newline (empty when there are no cues).
    """
    blocks = []
    for number, cue in enumerate(_flatten(_cues(events)), start=1):
        blocks.append(f"{number}\n{_clock(cue.start_ms, ',')} --> {_clock(cue.end_ms, ',')}\n{cue.text}")
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000 + 0.5)


def _cues(events: Iterable[Event]) -> list[_Cue]:
    cues = []
    for event in events:
        lines = [line.strip() for line in event.description.splitlines()]
        text = "\n".join(line for line in lines if line)
        if not text:
            logger.debug("skipping an event without text at %.3f s", event.start)
            continue
        start, end = _ms(event.start), _ms(event.end)
        if end <= start:
            end = start + _ms(POINT_CUE_SECONDS)
        cues.append(_Cue(start, end, text))
    return sorted(cues, key=lambda cue: cue.start_ms)  # stable: ties keep the events' order


def _flatten(cues: list[_Cue]) -> list[_Cue]:
    """Non-overlapping cues: one per stretch between consecutive boundaries with any event active."""
    boundaries = sorted({t for cue in cues for t in (cue.start_ms, cue.end_ms)})
    pieces = []
    for start, end in zip(boundaries, boundaries[1:], strict=False):
        active = [cue.text for cue in cues if cue.start_ms <= start and cue.end_ms >= end]
        if active:
            pieces.append(_Cue(start, end, "\n".join(active)))
    return pieces


def _clock(ms: int, decimal: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal}{millis:03d}"
