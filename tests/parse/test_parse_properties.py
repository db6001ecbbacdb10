"""Property tests: lenient parsing never raises, strict agrees with it, canonical text round-trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vidspan.errors import ParseError
from vidspan.parse import parse_caption, parse_span, parse_time, strip_think

FRAGMENTS = [
    "<think>",
    "</think>",
    "<think>\n\n</think>\n\n",
    "<answer>",
    "</answer>",
    "Scene:",
    "Events:",
    "**",
    "<",
    ">",
    "[",
    "]",
    "(",
    ")",
    "[[",
    "]]",
    ",",
    ":",
    ".",
    "-",
    "–",
    "—",
    "−",
    "~",
    " to ",
    "to",
    "tomato",
    "photo",
    "From ",
    "from",
    "between",
    " and ",
    "The event happens in ",
    " seconds",
    "s",
    " sec",
    "\n",
    " ",
    "\t",
    '"',
    "'",
    "“",
    "”",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "-5",
    "99:99",
    "1:05",
    "01:02:03.25",
    "12.5s",
    "0",
    "0.0",
    "9" * 400,
    "1.",
    ".5",
    "- ",
    "1. ",
    "* ",
    "\u2022 ",
    "ſ",
    "K",
    "١٢",
    "\x00",
]
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=1e6).map(lambda x: f"{x:.2f}"),
)
MODEL_LIKE_TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), NUMBERS, st.text(max_size=6)), max_size=30
).map("".join)
ANY_TEXT = st.one_of(st.text(), MODEL_LIKE_TEXT)
DURATIONS = st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e7))
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(text=ANY_TEXT, duration=DURATIONS)
def test_lenient_caption_never_raises_and_is_well_formed(text: str, duration: float | None) -> None:
    parsed = parse_caption(text, duration_seconds=duration)
    starts = [(e.start, e.end) for e in parsed.events]
    assert starts == sorted(starts)
    assert "\n" not in parsed.scene
    for event in parsed.events:
        assert 0 <= event.start <= event.end and math.isfinite(event.end)
        assert event.description == event.description.strip()
        if duration is not None:
            assert event.start < duration and event.end <= duration
    assert parsed.format_ok == (not parsed.violations)


@QUICK
@given(text=ANY_TEXT, duration=DURATIONS, output_format=st.sampled_from(["marlin", "timelens"]))
def test_lenient_span_never_raises_and_is_bounded(
    text: str, duration: float | None, output_format: str
) -> None:
    parsed = parse_span(text, output_format=output_format, duration_seconds=duration)
    if parsed.span is not None:
        assert 0 <= parsed.span.start <= parsed.span.end and math.isfinite(parsed.span.end)
        if duration is not None:
            assert parsed.span.start < duration and parsed.span.end <= duration
    if parsed.clipped:
        assert parsed.span is not None and parsed.span.end == duration
    if not parsed.format_ok:
        assert parsed.violations


@QUICK
@given(text=ANY_TEXT, duration=DURATIONS)
def test_strict_agrees_with_lenient(text: str, duration: float | None) -> None:
    for parse in (parse_caption, parse_span):
        lenient = parse(text, duration_seconds=duration)
        if lenient.violations:
            with pytest.raises(ParseError) as info:
                parse(text, duration_seconds=duration, strict=True)
            assert info.value.violations == lenient.violations
            assert info.value.raw == text
        else:
            assert parse(text, duration_seconds=duration, strict=True) == lenient


@QUICK
@given(text=ANY_TEXT)
def test_strip_think_never_raises_and_is_idempotent_without_tags(text: str) -> None:
    stripped = strip_think(text)
    assert stripped == stripped.strip()
    if "think>" not in stripped.lower():
        assert strip_think(stripped) == stripped


@QUICK
@given(token=ANY_TEXT)
def test_parse_time_returns_a_finite_time_or_raises_value_error(token: str) -> None:
    try:
        seconds = parse_time(token)
    except ValueError as error:
        assert str(error).startswith("Invalid time: ")
    else:
        assert math.isfinite(seconds) and seconds >= 0


TENTHS = st.integers(min_value=0, max_value=36_000).map(lambda n: n / 10)


@QUICK
@given(start=TENTHS, end=TENTHS)
def test_canonical_find_answers_round_trip(start: float, end: float) -> None:
    assume(start < end)
    marlin = parse_span(f"<think>\n\n</think>\n\nFrom {start:.1f} to {end:.1f}.")
    timelens = parse_span(f"The event happens in {start:.1f} - {end:.1f} seconds.", output_format="timelens")
    for parsed in (marlin, timelens):
        assert parsed.format_ok and parsed.violations == ()
        assert parsed.span is not None and parsed.span.to_tuple() == (start, end)


@QUICK
@given(
    spans=st.lists(st.tuples(TENTHS, TENTHS).map(sorted), min_size=1, max_size=8).map(sorted),
    words=st.lists(
        st.sampled_from(["tomato", "photo", "to", "stop", "a", "man", "walks", "into"]), min_size=1
    ),
)
def test_canonical_captions_round_trip(spans: list[list[float]], words: list[str]) -> None:
    description = " ".join(words) + "."
    lines = [f"<{a:.1f} - {b:.1f}> {description}" for a, b in spans]
    text = "<think>\n\n</think>\n\nScene: A kitchen with a photo on the wall.\nEvents:\n" + "\n".join(lines)
    parsed = parse_caption(text)
    assert parsed.violations == ()
    assert parsed.scene == "A kitchen with a photo on the wall."
    assert [(e.start, e.end, e.description) for e in parsed.events] == [(a, b, description) for a, b in spans]
