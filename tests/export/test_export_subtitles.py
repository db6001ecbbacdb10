"""WebVTT and SRT text: exact cues, escaping, overlaps, millisecond rounding."""

from __future__ import annotations

import random
import re

import pytest

from vidspan.export import to_srt, to_webvtt
from vidspan.types import Caption, Event, Span


def ev(start: float, end: float, text: str) -> Event:
    return Event(Span(start, end), text)


EVENTS = [
    ev(12.0, 18.5, "Tom & Jerry <run> --> away"),
    ev(2.25, 6.0, "A hand lifts a bottle.\n\n  It is green.  "),
    ev(15.0, 20.0, "The door opens."),
]


def test_webvtt_is_exact_escaped_sorted_and_keeps_overlaps():
    assert to_webvtt(EVENTS) == (
        "WEBVTT\n"
        "\n"
        "00:00:02.250 --> 00:00:06.000\n"
        "A hand lifts a bottle.\n"
        "It is green.\n"
        "\n"
        "00:00:12.000 --> 00:00:18.500\n"
        "Tom &amp; Jerry &lt;run&gt; --&gt; away\n"
        "\n"
        "00:00:15.000 --> 00:00:20.000\n"
        "The door opens.\n"
    )


def test_srt_is_numbered_and_flattens_overlaps_into_stacked_cues():
    assert to_srt(EVENTS) == (
        "1\n"
        "00:00:02,250 --> 00:00:06,000\n"
        "A hand lifts a bottle.\n"
        "It is green.\n"
        "\n"
        "2\n"
        "00:00:12,000 --> 00:00:15,000\n"
        "Tom & Jerry <run> --> away\n"
        "\n"
        "3\n"
        "00:00:15,000 --> 00:00:18,500\n"
        "Tom & Jerry <run> --> away\n"
        "The door opens.\n"
        "\n"
        "4\n"
        "00:00:18,500 --> 00:00:20,000\n"
        "The door opens.\n"
    )


def test_hours_point_events_empty_text_and_no_events():
    events = [ev(3723.4567, 3725.0, "late"), ev(30.0, 30.0, "a door slams"), ev(1.0, 2.0, "  \n ")]
    assert to_webvtt(events) == (
        "WEBVTT\n\n00:00:30.000 --> 00:00:31.000\na door slams\n\n01:02:03.457 --> 01:02:05.000\nlate\n"
    )
    assert to_srt(events).splitlines()[:3] == ["1", "00:00:30,000 --> 00:00:31,000", "a door slams"]
    assert to_webvtt([]) == "WEBVTT\n"
    assert to_srt([]) == ""


def test_a_caption_is_accepted_as_it_is():
    caption = Caption(scene="s", events=(ev(0.0, 1.5, "one"),), raw="")
    assert to_webvtt(caption) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\none\n"


def _times(text: str, separator: str) -> list[tuple[int, int]]:
    pattern = rf"(\d\d):(\d\d):(\d\d){separator}(\d\d\d) --> (\d\d):(\d\d):(\d\d){separator}(\d\d\d)"
    out = []
    for m in re.finditer(pattern, text):
        h1, m1, s1, f1, h2, m2, s2, f2 = map(int, m.groups())
        out.append(((h1 * 3600 + m1 * 60 + s1) * 1000 + f1, (h2 * 3600 + m2 * 60 + s2) * 1000 + f2))
    return out


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0.0004, 0.0006, "00:00:00.000 --> 00:00:00.001"),
        (1.0005, 1.0015, "00:00:01.001 --> 00:00:01.002"),
        (59.9996, 60.0004, "00:01:00.000 --> 00:01:01.000"),  # rounds to a point: shown for 1 s
        (7.12345, 9.87654, "00:00:07.123 --> 00:00:09.877"),
    ],
)
def test_millisecond_rounding(start, end, expected):
    assert to_webvtt([ev(start, end, "x")]).splitlines()[2] == expected


def test_rounding_never_makes_a_cue_end_before_it_starts():
    rng = random.Random(7)
    events = []
    for _ in range(300):
        start = rng.uniform(0, 5000)
        events.append(ev(start, start + rng.choice([0.0, 1e-4, 4.9e-4, 5e-4, rng.uniform(0, 3)]), "x"))
    vtt, srt = _times(to_webvtt(events), r"\."), _times(to_srt(events), ",")
    assert len(vtt) == len(events) and srt
    for start_ms, end_ms in vtt + srt:
        assert end_ms > start_ms
    for event, (start_ms, _) in zip(sorted(events, key=lambda e: e.start), vtt, strict=True):
        assert abs(start_ms - event.start * 1000) <= 0.5 + 1e-6
    assert all(a[1] <= b[0] for a, b in zip(srt, srt[1:], strict=False)), "SRT cues must not overlap"
