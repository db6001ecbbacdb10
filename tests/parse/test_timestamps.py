"""Time tokens, think blocks and time ranges in free text (vidspan.parse.timestamps)."""

from __future__ import annotations

import re

import pytest

from vidspan.parse import TIME_PATTERN, parse_time, strip_think
from vidspan.parse.timestamps import TIME_TOKEN_PATTERN, check_duration, find_time_pair, fit_span
from vidspan.types import Span

# --- strip_think ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Marlin-2B's non-thinking prefix, before every answer
        ("<think>\n\n</think>\n\nFrom 14.3 to 18.2.", "From 14.3 to 18.2."),
        (
            "<think>\n\n</think>\n\nScene: A room.\nEvents:\n<0.0 - 1.0> x",
            "Scene: A room.\nEvents:\n<0.0 - 1.0> x",
        ),
        # a real think block with reasoning across lines (and numbers) is removed whole
        ("<think>\nThe door opens at 3 - 4 s.\nSo...\n</think>\nFrom 3.0 to 4.0.", "From 3.0 to 4.0."),
        # non-greedy: only the first block goes
        ("<think>a</think> keep <think>b</think> this", "keep <think>b</think> this"),
        # bare leading <think> with no closing tag: the rest of its line goes
        ("<think>\nFrom 1.0 to 2.0.", "From 1.0 to 2.0."),
        ("<think> reasoning on one line\nFrom 1.0 to 2.0.", "From 1.0 to 2.0."),
        ("<think>", ""),
        ("<think> only this line", ""),
        # stray closing tag at the start
        ("</think>\n\nFrom 1.0 to 2.0.", "From 1.0 to 2.0."),
        # case-insensitive tag and surrounding whitespace
        ("  <THINK></THINK>From 1 to 2.  ", "From 1 to 2."),
        # no leading think block: unchanged except outer whitespace
        ("  From 14.3 to 18.2.\n", "From 14.3 to 18.2."),
        ("The answer <think>x</think> is here", "The answer <think>x</think> is here"),
        ("", ""),
    ],
)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


# --- parse_time -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "seconds"),
    [
        ("12", 12.0),
        ("12.5", 12.5),
        ("0", 0.0),
        ("12.5s", 12.5),
        ("12.5 s", 12.5),
        ("12.5 sec", 12.5),
        ("12.5 secs", 12.5),
        ("12.5 seconds", 12.5),
        ("1 second", 1.0),
        ("12.5S", 12.5),
        (" 7 ", 7.0),
        ("1:05", 65.0),
        ("01:05.5", 65.5),
        ("00:12", 12.0),
        ("75:30", 4530.0),
        ("1:02:03", 3723.0),
        ("01:02:03.25", 3723.25),
        ("0:00:00", 0.0),
        ("1e3", 1000.0),
        ("1.25E1 s", 12.5),
        ("5e-1", 0.5),
    ],
)
def test_parse_time_accepts(token: str, seconds: float) -> None:
    assert parse_time(token) == seconds


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "-5",
        "-1:05",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "99:99",
        "1:60",
        "1:2",
        "1:60:00",
        "1:00:60",
        "12.5 ms",
        "12.5 minutes",
        "1:05s",
        "12..5",
        ".5",
        "5.",
        "1_000",
        "١٢",
        "9" * 400,
    ],
)
def test_parse_time_rejects(token: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid time: .*\. It must be seconds or mm:ss / hh:mm:ss\.$"):
        parse_time(token)


def test_parse_time_error_quotes_the_token() -> None:
    with pytest.raises(ValueError, match=re.escape("Invalid time: '99:99'.")):
        parse_time("99:99")


def test_time_pattern_matches_every_accepted_form() -> None:
    time_re = re.compile(TIME_PATTERN, re.IGNORECASE)
    for token in ("12", "12.5", "12.5s", "12.5 s", "12.5 seconds", "1:05", "01:05.5", "1:02:03.25", "1.25e1"):
        assert time_re.fullmatch(token), token
    assert not time_re.fullmatch("-5")
    assert not time_re.fullmatch("nan")


def test_time_token_pattern_respects_word_and_number_boundaries() -> None:
    token_re = re.compile(TIME_TOKEN_PATTERN, re.IGNORECASE)
    found = [m[0] for m in token_re.finditer("Qwen2.5-VL 3D at 12s and 1:05, 1e400, 10,5 or 3e")]
    assert found == ["12s", "1:05", "1e400"]  # 10,5 is one number or none, never 10 and 5


# --- fit_span / check_duration ----------------------------------------------------------------------------


def test_fit_span_swaps_backwards_spans() -> None:
    notes: list[str] = []
    assert fit_span(20.0, 12.0, None, notes) == (Span(12.0, 20.0), False)
    assert notes == ["span written backwards (20.0 - 12.0); swapped"]


def test_fit_span_clips_to_the_duration() -> None:
    notes: list[str] = []
    assert fit_span(28.0, 35.0, 30.2, notes) == (Span(28.0, 30.2), True)
    assert notes == ["span ends after the video (35.0 > 30.2 s); clipped"]


@pytest.mark.parametrize("start", [30.2, 31.0])
def test_fit_span_drops_spans_starting_at_or_after_the_end(start: float) -> None:
    notes: list[str] = []
    assert fit_span(start, 40.0, 30.2, notes) == (None, False)
    assert notes == [f"span starts after the video ends ({start} >= 30.2 s); dropped"]


def test_fit_span_keeps_a_span_inside_the_video_untouched() -> None:
    notes: list[str] = []
    assert fit_span(0.0, 30.2, 30.2, notes) == (Span(0.0, 30.2), False)
    assert notes == []


@pytest.mark.parametrize("duration", [0, -1.0, float("nan"), float("inf")])
def test_check_duration_rejects_unusable_durations(duration: float) -> None:
    with pytest.raises(
        ValueError, match=r"^Invalid duration_seconds: .*It must be a finite number of seconds > 0\.$"
    ):
        check_duration(duration)


# --- find_time_pair ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("The event happens in 12.5 - 20.0 seconds.", ("12.5", "20.0 seconds")),
        ("The person opens the door from 00:12 to 00:20.", ("00:12", "00:20")),
        ("It happens at 0:05 and 0:12.", ("0:05", "0:12")),
        ("12.5s to 20s", ("12.5s", "20s")),
        ("10s-20s", ("10s", "20s")),
        ("10 s – 20 s", ("10 s", "20 s")),
        ("from 3 until 7", ("3", "7")),
        ("It happens between 3 and 7 seconds.", ("3", "7 seconds")),
        ("[[3.0, 7.5]]", ("3.0", "7.5")),
        ("(3.0, 7.5)", ("3.0", "7.5")),
        ("<answer>12.54 to 17.83</answer>", ("12.54", "17.83")),
        ("Qwen2.5-VL says: 4 to 9", ("4", "9")),
    ],
)
def test_find_time_pair_structured_forms(text: str, pair: tuple[str, str]) -> None:
    notes: list[str] = []
    assert find_time_pair(text, notes) == pair
    assert notes == []


def test_find_time_pair_pairs_loose_clock_times_as_a_last_resort() -> None:
    notes: list[str] = []
    assert find_time_pair("It starts at 0:05 and ends at 0:12.", notes) == ("0:05", "0:12")
    assert notes == ["no time range found; used the first two times (0:05 and 0:12)"]


def test_find_time_pair_prefers_clock_pairs_over_other_ranges() -> None:
    assert find_time_pair("Scene 2 - 3: from 00:12 to 00:20", []) == ("00:12", "00:20")


def test_find_time_pair_ignores_numbers_in_a_quoted_echo() -> None:
    notes: list[str] = []
    text = "The event 'a man turns 2 - 3 times' happens from 10.0 to 12.0."
    assert find_time_pair(text, notes) == ("10.0", "12.0")
    assert notes == []


def test_find_time_pair_prefers_loose_times_outside_quotes_over_a_quoted_range() -> None:
    notes: list[str] = []
    text = 'For "person turns 2 - 3 times": it starts at 10 and stops at 12.'
    assert find_time_pair(text, notes) == ("10", "12")
    assert notes == ["no time range found; used the first two times (10 and 12)"]


def test_find_time_pair_reads_a_quoted_answer_when_nothing_else_is_there() -> None:
    assert find_time_pair('The answer is "12.5 - 20.0 seconds".', []) == ("12.5", "20.0 seconds")


def test_find_time_pair_takes_the_first_of_several_spans() -> None:
    notes: list[str] = []
    assert find_time_pair("[[3.0, 7.5], [10.0, 12.0]]", notes) == ("3.0", "7.5")
    assert notes == ["several spans in the answer; used the first (3.0 - 7.5)"]


def test_find_time_pair_does_not_invent_a_span_from_one_number() -> None:
    notes: list[str] = []
    assert find_time_pair("It happens at 5 seconds.", notes) is None
    assert notes == ["only one time found (5 seconds); no span"]


def test_find_time_pair_reports_no_time() -> None:
    notes: list[str] = []
    assert find_time_pair("I cannot find it. nan inf", notes) is None
    assert notes == ["no time found in the answer"]


@pytest.mark.parametrize(
    ("text", "note", "pair"),
    [("From -2.0 to 5.0.", "-2.0", ("0", "5.0")), ("a \u22124 to 6", "-4", ("0", "6"))],
)
def test_find_time_pair_clamps_a_negative_time_to_zero(text: str, note: str, pair: tuple[str, str]) -> None:
    notes: list[str] = []
    assert find_time_pair(text, notes) == pair  # not sign-flipped to 2.0 / 4
    assert notes == [f"negative time {note} clamped to 0"]


@pytest.mark.parametrize("text", ["10s-20s", "3-4", "3 - 4", "from 1:05-1:10"])
def test_find_time_pair_does_not_mistake_a_range_dash_for_a_sign(text: str) -> None:
    notes: list[str] = []
    assert find_time_pair(text, notes) is not None
    assert notes == []


def test_find_time_pair_never_rewrites_to_inside_words() -> None:
    # "to" inside tomato/photo must not act as a separator (lmms-eval's str.replace bug)
    assert find_time_pair("A tomato 3 photo 4 then 5 to 6", []) == ("5", "6")
