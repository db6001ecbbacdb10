"""Marlin captions and grounding answers of each model family (vidspan.parse.formats)."""

from __future__ import annotations

import re

import pytest

from vidspan.errors import ParseError
from vidspan.parse import ParsedCaption, ParsedSpan, parse_caption, parse_span
from vidspan.types import Event, Span

THINK = "<think>\n\n</think>\n\n"  # Marlin-2B's prefix before every answer

MARLIN_CAPTION = (
    THINK + "Scene: A fixed camera looks down at a small round table by a white wall.\n"
    "Events:\n"
    "<5.0 - 19.0> A woman in a grey cardigan walks to the table and stands there.\n"
    "<19.0 - 21.0> She leaves the frame."
)
MARLIN_EVENTS = (
    Event(Span(5.0, 19.0), "A woman in a grey cardigan walks to the table and stands there."),
    Event(Span(19.0, 21.0), "She leaves the frame."),
)
MARLIN_SCENE = "A fixed camera looks down at a small round table by a white wall."

KITCHEN_CAPTION = (
    THINK
    + "Scene: A kitchen counter seen from above, with a cutting board, a knife and a bowl of tomatoes.\n"
    "Events:\n"
    "<0.0 - 4.5> A hand places a tomato on the cutting board.\n"
    "<4.5 - 11.0> The person slices the tomato into thin rounds.\n"
    "<11.0 - 14.2> They lift a phone and take a photo of the slices."
)


def _violations(text: str, **kwargs: object) -> tuple[str, ...]:
    return parse_caption(text, **kwargs).violations  # type: ignore[arg-type]


# --- captions: canonical ----------------------------------------------------------------------------------


def test_canonical_marlin_caption_parses_exactly() -> None:
    parsed = parse_caption(MARLIN_CAPTION)
    assert parsed == ParsedCaption(scene=MARLIN_SCENE, events=MARLIN_EVENTS, violations=())
    assert parsed.format_ok


def test_canonical_caption_without_think_block_is_also_ok() -> None:
    assert parse_caption(MARLIN_CAPTION.removeprefix(THINK)).format_ok


def test_descriptions_keep_words_containing_to() -> None:
    parsed = parse_caption(KITCHEN_CAPTION)
    assert parsed.format_ok
    assert [e.description for e in parsed.events] == [
        "A hand places a tomato on the cutting board.",
        "The person slices the tomato into thin rounds.",
        "They lift a phone and take a photo of the slices.",
    ]
    assert "tomatoes" in parsed.scene


def test_tomato_and_photo_survive_in_tolerated_forms() -> None:
    text = "Scene: A kitchen.\nEvents:\n- 0 to 3: He cuts a tomato.\n- [3 – 6] She takes a photo to keep."
    parsed = parse_caption(text)
    assert [e.description for e in parsed.events] == ["He cuts a tomato.", "She takes a photo to keep."]
    assert [e.span for e in parsed.events] == [Span(0.0, 3.0), Span(3.0, 6.0)]


def test_integer_seconds_are_canonical() -> None:
    parsed = parse_caption("Scene: A room.\nEvents:\n<0 - 5> A man waves.")
    assert parsed.format_ok
    assert parsed.events == (Event(Span(0.0, 5.0), "A man waves."),)


def test_numbers_are_not_rounded() -> None:
    parsed = parse_caption("Scene: A room.\nEvents:\n<0.04 - 5.125> A man waves.")
    assert parsed.events[0].span == Span(0.04, 5.125)


# --- captions: tolerated deviations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "violation"),
    [
        ("A kitchen.\nEvents:\n<0.0 - 5.0> x", "missing 'Scene:' label"),
        ("Scene: A kitchen.\n<0.0 - 5.0> x", "missing 'Events:' header"),
        ("Scene: A kitchen\nwith a window.\nEvents:\n<0.0 - 5.0> x", "scene spans several lines"),
        ("Scene: A.\nEvents:\n- <0.0 - 5.0> x", "events written as a bulleted or numbered list"),
        ("Scene: A.\nEvents:\n* <0.0 - 5.0> x", "events written as a bulleted or numbered list"),
        ("Scene: A.\nEvents:\n1. <0.0 - 5.0> x", "events written as a bulleted or numbered list"),
        ("Scene: A.\nEvents:\n[0.0 - 5.0] x", "time range written as [a - b] instead of <a - b>"),
        ("Scene: A.\nEvents:\n(0.0 - 5.0) x", "time range written as (a - b) instead of <a - b>"),
        ("Scene: A.\nEvents:\n0.0 - 5.0: x", "time range without angle brackets"),
        ("Scene: A.\nEvents:\n0.0-5.0 x", "time range without angle brackets"),
        ("Scene: A.\nEvents:\n<0.0 – 5.0> x", "time range uses '–' instead of '-'"),
        ("Scene: A.\nEvents:\n<0.0 — 5.0> x", "time range uses '—' instead of '-'"),
        ("Scene: A.\nEvents:\n<0.0 to 5.0> x", "time range uses 'to' instead of '-'"),
        ("Scene: A.\nEvents:\n**<0.0 - 5.0>** x", "markdown bold in the events"),
        ("Scene: A.\nEvents:\n<0:00 - 0:05> x", "clock times (mm:ss) instead of seconds"),
        ("Scene: A.\nEvents:\n<0s - 5s> x", "times written with a unit"),
        ("Scene: A.\nEvents:\n<0.0-5.0> x", "extra or missing spaces in a time range"),
        ("Scene: A.\nEvents:\n< 0.0 - 5.0 > x", "extra or missing spaces in a time range"),
        ("Scene: A. <0.0 - 5.0> x", "events do not start on their own lines"),
        ("Scene: A.\nEvents: <0.0 - 5.0> x", "events do not start on their own lines"),
        ("Scene: A.\nEvents:\n<0.0 - 5.0> x <5.0 - 6.0> y", "events do not start on their own lines"),
        (
            "Scene: A.\nEvents:\n<0.0 - 5.0> x\n\nI hope this helps!",
            "text outside the events ignored: 'I hope this helps!'",
        ),
        ("Scene: A.\nEvents:\n<0.0 - 5.0>: x", "separator after the time range"),
        ("Scene: A.\nEvents\n<0.0 - 5.0> x", "'Events' header without a colon"),
        (
            "Sure! Here it is.\nScene: A.\nEvents:\n<0.0 - 5.0> x",
            "text before 'Scene:' ignored: 'Sure! Here it is.'",
        ),
        ("Scene: A.\nEvents:\n<5.0 - 6.0> y\n<0.0 - 5.0> x", "events out of order; sorted"),
        ("Scene: A.\nEvents:\n<0.0 - 5.0>", "event at 0.0 - 5.0 has no description"),
        ("Scene: A.\nEvents:\n<20.0 - 12.0> x", "span written backwards (20.0 - 12.0); swapped"),
        ("Scene:\nEvents:\n<0.0 - 5.0> x", "no scene description"),
        ("Scene: A room. A man waves at the camera.", "no events found"),
        (
            "scene: A.\nevents:\n<0.0 - 5.0> x",
            "caption layout differs from 'Scene: ...' / 'Events:' / '<start - end> description' lines",
        ),
    ],
)
def test_tolerated_caption_deviation_is_flagged(text: str, violation: str) -> None:
    parsed = parse_caption(text)
    assert violation in parsed.violations
    assert not parsed.format_ok


@pytest.mark.parametrize(
    "text",
    [
        "Scene: A.\nEvents:\n- [0:00 – 0:05] x",
        "A.\n1. 0.0 - 5.0: x",
        "A.\n**0s to 5s** x",
        "Scene: A. Events: <0.0 - 5.0> x",
        "Scene: A.\nEvents:\n(0.0-5.0) **x**",
        "**Scene:** A.\n**Events:**\n* **<0 - 5>** x",
    ],
)
def test_tolerated_caption_forms_give_the_same_event(text: str) -> None:
    parsed = parse_caption(text)
    assert parsed.scene == "A."
    assert parsed.events == (Event(Span(0.0, 5.0), "x"),)
    assert not parsed.format_ok


def test_messy_caption_is_read_whole() -> None:
    text = (
        THINK + "Here is the description.\n"
        "Scene: A living room with a sofa\n"
        "and a television on the left.\n"
        "**Events:**\n"
        "1. **[0:02 - 0:07.5]** A cat jumps onto the sofa.\n"
        "2. 12s to 9s: A man walks past holding a tomato.\n"
        "3. <00:01:05 — 00:01:10> He sits down\n"
        "\n"
        "Let me know if you need more detail."
    )
    parsed = parse_caption(text)
    assert parsed.scene == "A living room with a sofa and a television on the left."
    assert parsed.events == (
        Event(Span(2.0, 7.5), "A cat jumps onto the sofa."),
        Event(Span(9.0, 12.0), "A man walks past holding a tomato."),
        Event(Span(65.0, 70.0), "He sits down"),
    )
    for expected in (
        "text before 'Scene:' ignored: 'Here is the description.'",
        "scene spans several lines",
        "events written as a bulleted or numbered list",
        "markdown bold in the events",
        "span written backwards (12.0 - 9.0); swapped",
        "text outside the events ignored: 'Let me know if you need more detail.'",
    ):
        assert expected in parsed.violations


def test_events_on_the_scene_line() -> None:
    parsed = parse_caption("Scene: A park. <0.0 - 3.0> A dog runs. <3.0 - 6.0> It stops.")
    assert parsed.scene == "A park."
    assert [e.description for e in parsed.events] == ["A dog runs.", "It stops."]


def test_events_are_sorted_by_start_then_end() -> None:
    parsed = parse_caption("Scene: A.\nEvents:\n<4 - 9> c\n<0 - 5> b\n<0 - 2> a")
    assert [e.description for e in parsed.events] == ["a", "b", "c"]


def test_caption_spans_are_clipped_and_dropped_against_the_duration() -> None:
    text = "Scene: A.\nEvents:\n<0.0 - 10.0> a\n<25.0 - 35.0> b\n<30.2 - 33.0> c\n<40.0 - 45.0> d"
    parsed = parse_caption(text, duration_seconds=30.2)
    assert parsed.events == (Event(Span(0.0, 10.0), "a"), Event(Span(25.0, 30.2), "b"))
    assert parsed.violations == (
        "span ends after the video (35.0 > 30.2 s); clipped",
        "span starts after the video ends (30.2 >= 30.2 s); dropped",
        "span starts after the video ends (40.0 >= 30.2 s); dropped",
    )


def test_invalid_clock_time_drops_only_that_event() -> None:
    parsed = parse_caption("Scene: A.\nEvents:\n<0:00 - 99:99> a\n<1.0 - 2.0> b")
    assert parsed.events == (Event(Span(1.0, 2.0), "b"),)
    assert "invalid time in '<0:00 - 99:99>'; event dropped" in parsed.violations


def test_find_style_answer_to_a_caption_prompt_has_no_events() -> None:
    parsed = parse_caption(THINK + "From 14.3 to 18.2.")
    assert parsed.events == ()
    assert "no events found" in parsed.violations


# --- captions: strict -------------------------------------------------------------------------------------


def test_strict_caption_returns_the_lenient_result_when_canonical() -> None:
    assert parse_caption(MARLIN_CAPTION, strict=True) == parse_caption(MARLIN_CAPTION)


def test_strict_caption_raises_with_every_violation() -> None:
    text = "A.\n- [0 - 5] x"
    with pytest.raises(
        ParseError, match=r"^Caption does not follow the expected format: missing 'Events:'"
    ) as info:
        parse_caption(text, strict=True)
    lenient = parse_caption(text)
    assert info.value.violations == lenient.violations
    assert info.value.raw == text
    for violation in lenient.violations:
        assert violation in str(info.value)


def test_invalid_duration_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^Invalid duration_seconds: -1\.0\. It must be a finite number"):
        parse_caption(MARLIN_CAPTION, duration_seconds=-1.0)


# --- grounding answers ------------------------------------------------------------------------------------


def test_marlin_find_answer_is_canonical() -> None:
    assert parse_span(THINK + "From 14.3 to 18.2.") == ParsedSpan(Span(14.3, 18.2), True, ())


def test_timelens_answer_is_canonical_for_timelens() -> None:
    parsed = parse_span("The event happens in 12.5 - 20.0 seconds.", output_format="timelens")
    assert parsed == ParsedSpan(Span(12.5, 20.0), True, ())


def test_timelens_answer_is_not_canonical_for_marlin_but_parses() -> None:
    parsed = parse_span("The event happens in 12.5 - 20.0 seconds.")
    assert parsed.span == Span(12.5, 20.0)
    assert not parsed.format_ok
    assert parsed.violations == ("answer is not in the form 'From <start> to <end>.'",)


def test_marlin_answer_is_not_canonical_for_timelens_but_parses() -> None:
    parsed = parse_span(THINK + "From 14.3 to 18.2.", output_format="timelens")
    assert (parsed.span, parsed.format_ok) == (Span(14.3, 18.2), False)
    assert parsed.violations == ("answer is not in the form 'The event happens in <start> - <end> seconds.'",)


@pytest.mark.parametrize(
    ("text", "output_format", "violation"),
    [
        ("From 14.3 to 18.2", "marlin", "missing final period"),
        (THINK + "From 14.3 to 18.2", "marlin", "missing final period"),
        ("The event happens in 14.3 - 18.2 seconds", "timelens", "missing final period"),
        ("from 14.3 to 18.2.", "marlin", "answer is not in the form 'From <start> to <end>.'"),
        ("From  14.3 to 18.2.", "marlin", "answer is not in the form 'From <start> to <end>.'"),
        ("From 14.3s to 18.2s.", "marlin", "answer is not in the form 'From <start> to <end>.'"),
    ],
)
def test_near_canonical_answers_parse_but_are_not_format_ok(
    text: str, output_format: str, violation: str
) -> None:
    parsed = parse_span(text, output_format=output_format)
    assert parsed.span == Span(14.3, 18.2)
    assert not parsed.format_ok
    assert parsed.violations == (violation,)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        # Qwen3-VL free-form answers
        ("The person opens the door from 00:12 to 00:20.", Span(12.0, 20.0)),
        ("The person opens the door between 00:01:05 and 00:01:10.5.", Span(65.0, 70.5)),
        ("The event occurs from 3.5 seconds to 9 seconds in the video.", Span(3.5, 9.0)),
        # Time-R1: think, then <answer>start to end</answer>
        (
            "<think>The man turns 2 - 3 times before.</think><answer>12.54 to 17.83</answer>",
            Span(12.54, 17.83),
        ),
        ("Reasoning: at 3 - 4 nothing.\n<answer>12.54 to 17.83</answer>", Span(12.54, 17.83)),
        # units glued to numbers (TimeLens's parser fails on these)
        ("12.5s to 20s", Span(12.5, 20.0)),
        ("10s-20s", Span(10.0, 20.0)),
        ("The event happens in 10s – 20s.", Span(10.0, 20.0)),
        # other tolerated shapes
        ("It happens between 3 and 7 seconds.", Span(3.0, 7.0)),
        ("<3.0 - 7.5>", Span(3.0, 7.5)),
        ("[[3.0, 7.5]]", Span(3.0, 7.5)),
        ('{"span": [3.0, 7.5]}', Span(3.0, 7.5)),
        ("Start: 4.2, end: 9.9", Span(4.2, 9.9)),
        ("1:05 - 1:10.5", Span(65.0, 70.5)),
    ],
)
def test_other_families_answers(text: str, span: Span) -> None:
    parsed = parse_span(text)
    assert parsed.span == span
    assert not parsed.format_ok


def test_numbers_in_the_echoed_query_are_not_used() -> None:
    text = "The event 'a man turns 2 - 3 times near 4 to 5 chairs' happens from 10.0 to 12.0."
    assert parse_span(text).span == Span(10.0, 12.0)


def test_multi_span_answer_uses_the_first_and_flags_it() -> None:
    parsed = parse_span("The event happens in 1.0 - 2.0, 5.0 - 6.0 seconds.", output_format="timelens")
    assert parsed.span == Span(1.0, 2.0)
    assert "several spans in the answer; used the first (1.0 - 2.0)" in parsed.violations


def test_json_multi_span_answer_uses_the_first() -> None:
    parsed = parse_span("[[3.0, 7.5], [10.0, 12.0]]")
    assert parsed.span == Span(3.0, 7.5)
    assert "several spans in the answer; used the first (3.0 - 7.5)" in parsed.violations


def test_backwards_canonical_span_is_swapped_but_form_is_ok() -> None:
    parsed = parse_span("From 20.0 to 12.0.")
    assert parsed == ParsedSpan(Span(12.0, 20.0), True, ("span written backwards (20.0 - 12.0); swapped",))


def test_span_is_clipped_to_the_duration() -> None:
    parsed = parse_span(THINK + "From 28.0 to 35.0.", duration_seconds=30.2)
    assert parsed == ParsedSpan(
        Span(28.0, 30.2), True, ("span ends after the video (35.0 > 30.2 s); clipped",), clipped=True
    )


def test_span_past_the_end_is_dropped() -> None:
    parsed = parse_span("From 31.0 to 35.0.", duration_seconds=30.2)
    assert parsed.span is None
    assert parsed.violations == ("span starts after the video ends (31.0 >= 30.2 s); dropped",)


@pytest.mark.parametrize(
    ("text", "violation"),
    [
        ("It happens at 5 seconds.", "only one time found (5 seconds); no span"),
        ("I could not find the event in the video.", "no time found in the answer"),
        ("", "empty answer"),
        (THINK, "empty answer"),
        ("From 1e400 to inf.", "only one time found (1e400); no span"),
        ("From 1e400 to 5.", "invalid time in '1e400' - '5'; no span"),
        ("From nan to nan.", "no time found in the answer"),
        ("From 00:00 to 99:99.", "invalid time in '00:00' - '99:99'; no span"),
    ],
)
def test_unreadable_answers_give_no_span(text: str, violation: str) -> None:
    parsed = parse_span(text)
    assert parsed.span is None
    assert not parsed.format_ok
    assert violation in parsed.violations


def test_huge_canonical_numbers_give_no_span() -> None:
    parsed = parse_span(f"From 1 to {'9' * 400}.")
    assert parsed.span is None
    assert parsed.format_ok
    assert parsed.violations[0].startswith("invalid time in '1' - '999")


def test_strict_span_returns_the_lenient_result_when_canonical() -> None:
    text = THINK + "From 14.3 to 18.2."
    assert parse_span(text, strict=True) == parse_span(text)


def test_strict_span_raises_on_a_missing_period() -> None:
    with pytest.raises(
        ParseError, match=r"^Answer does not follow the expected format: missing final period\.$"
    ) as info:
        parse_span("From 14.3 to 18.2", strict=True)
    assert info.value.raw == "From 14.3 to 18.2"
    assert info.value.violations == ("missing final period",)


def test_strict_span_raises_on_a_clipped_span() -> None:
    with pytest.raises(ParseError, match=re.escape("span ends after the video (35.0 > 30.0 s); clipped")):
        parse_span("From 28.0 to 35.0.", duration_seconds=30.0, strict=True)


def test_unknown_output_format_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"^Invalid output_format: 'qwen'\. It must be one of: marlin, timelens\.$"
    ):
        parse_span("From 1 to 2.", output_format="qwen")
