"""Merging per-window event lists into one timeline in source time, without duplicates at the overlaps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vidspan.types import Event, Span

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an the and or of to in on at with is are his her their its by from into for".split())


@dataclass(frozen=True, slots=True)
class WindowEvents:
    """Events of one window, already shifted to source time."""

    window: Span
    events: tuple[Event, ...]


def text_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the content words of two descriptions (0..1)."""
    wa = {w for w in _WORD.findall(a.lower()) if w not in _STOP}
    wb = {w for w in _WORD.findall(b.lower()) if w not in _STOP}
    if not wa and not wb:
        return 1.0
    return len(wa & wb) / len(wa | wb)


def ownership(windows: Sequence[Span]) -> list[Span]:
    """The part of each window that owns events: overlaps are split at their midpoint."""
    owned: list[Span] = []
    for i, w in enumerate(windows):
        start = w.start if i == 0 else max(w.start, (windows[i - 1].end + w.start) / 2)
        end = w.end if i == len(windows) - 1 else min(w.end, (w.end + windows[i + 1].start) / 2)
        owned.append(Span(start, max(start, end)))
    return owned


def merge_windows(
    per_window: Sequence[WindowEvents], *, min_text_similarity: float = 0.5, min_iou: float = 0.5
) -> tuple[Event, ...]:
    """One timeline from overlapping windows.

    Each event is kept by the window that owns its midpoint (the overlap between two windows is split in
    the middle), so the same event seen by two windows is kept once. Events from neighbouring windows that
    still overlap in time and describe the same thing (similar words, or IoU >= ``min_iou``) are joined into
    one event spanning both, which stitches events that cross a window boundary.
    """
    if not per_window:
        return ()
    owned = ownership([w.window for w in per_window])
    kept: list[tuple[int, Event]] = []
    for i, (w, region) in enumerate(zip(per_window, owned, strict=True)):
        last = i == len(per_window) - 1
        for event in w.events:
            mid = event.span.middle
            if region.start <= mid < region.end or (last and mid == region.end):
                kept.append((i, event))
    kept.sort(key=lambda item: (item[1].start, item[1].end))

    merged: list[tuple[int, Event]] = []
    for window_index, event in kept:
        joined = False
        for j in range(len(merged) - 1, -1, -1):
            other_index, other = merged[j]
            if other.end < event.start:
                break
            if other_index == window_index or abs(other_index - window_index) != 1:
                continue
            same_words = text_similarity(other.description, event.description) >= min_text_similarity
            if other.span.overlap(event.span) > 0 and (same_words or other.span.iou(event.span) >= min_iou):
                longer = max(other.description, event.description, key=len)
                span = Span(min(other.start, event.start), max(other.end, event.end))
                merged[j] = (window_index, Event(span, longer))
                joined = True
                break
        if not joined:
            merged.append((window_index, event))
    merged.sort(key=lambda item: (item[1].start, item[1].end))
    return tuple(e for _, e in merged)
