"""Merging events of overlapping windows into one timeline."""

from __future__ import annotations

import pytest

from vidspan.timeline import WindowEvents, merge_windows, ownership, text_similarity
from vidspan.types import Event, Span


def ev(start: float, end: float, text: str) -> Event:
    return Event(Span(start, end), text)


def test_ownership_splits_overlaps_in_the_middle():
    owned = ownership([Span(0, 120), Span(110, 230), Span(220, 300)])
    assert owned == [Span(0, 115), Span(115, 225), Span(225, 300)]


def test_duplicate_event_in_overlap_is_kept_once():
    w1 = WindowEvents(Span(0, 120), (ev(10, 20, "a man sits down"), ev(112, 118, "a dog barks at the door")))
    w2 = WindowEvents(
        Span(110, 230), (ev(112.5, 118, "a dog barks at the door"), ev(150, 160, "rain starts"))
    )
    merged = merge_windows([w1, w2])
    assert [e.description for e in merged] == ["a man sits down", "a dog barks at the door", "rain starts"]


def test_event_crossing_a_boundary_is_stitched():
    w1 = WindowEvents(Span(0, 120), (ev(100, 120, "a person walks across the parking lot"),))
    w2 = WindowEvents(Span(110, 230), (ev(110, 135, "the person walks across the lot"),))
    merged = merge_windows([w1, w2])
    assert len(merged) == 1
    assert merged[0].span == Span(100, 135)


def test_different_events_at_the_overlap_both_survive():
    w1 = WindowEvents(Span(0, 120), (ev(105, 114, "a car parks"),))
    w2 = WindowEvents(Span(110, 230), (ev(116, 125, "a bird lands on the roof"),))
    merged = merge_windows([w1, w2])
    assert [e.description for e in merged] == ["a car parks", "a bird lands on the roof"]


def test_merge_is_sorted_and_single_window_untouched():
    w = WindowEvents(Span(0, 30), (ev(5, 9, "b"), ev(1, 3, "a")))
    assert [e.description for e in merge_windows([w])] == ["a", "b"]
    assert merge_windows([]) == ()


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("a dog barks", "the dog barks", 1.0, 1.0),
        ("a dog barks", "rain starts", 0.0, 0.0),
        ("a man opens the door", "a man closes the door", 0.3, 0.6),
    ],
)
def test_text_similarity(a, b, low, high):
    assert low <= text_similarity(a, b) <= high
