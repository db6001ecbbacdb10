"""Numbers as real models write them: decimal commas, exponents, signs, Unicode digits, zero-length spans.

Each case was once read as a different span than the one written (``10,5 - 20,5`` became 5.0 - 20.0, a
negative start was sign-flipped) or not read at all (``1.2e1``). The rule: read the number the model
meant, or give no span; never a different span without a word.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidspan.errors import ParseError
from vidspan.parse import parse_span
from vidspan.parse.timestamps import normalize_numbers

QUICK = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("text", "span", "note"),
    [
        ("The event happens in 10,5 - 20,5 seconds.", (10.5, 20.5), "decimal comma in '10,5' read as 10.5"),
        ("From 10,5 to 20.", (10.5, 20.0), "decimal comma in '10,5' read as 10.5"),
        ("[10,5, 20]", (10.5, 20.0), "decimal comma in '10,5' read as 10.5"),
        ("between 3,25 and 4", (3.25, 4.0), "decimal comma in '3,25' read as 3.25"),
        ("12,5s-14s", (12.5, 14.0), "decimal comma in '12,5' read as 12.5"),
        ("From -3 to 5.", (0.0, 5.0), "negative time -3 clamped to 0"),
        ("The event happens in \u22122.5 - 4 seconds.", (0.0, 4.0), "negative time -2.5 clamped to 0"),
        ("From 1e1 to 2.5e1.", (10.0, 25.0), "time in scientific notation (1e1)"),
        ("The event happens in 1.2E1 - 2e1 seconds.", (12.0, 20.0), "time in scientific notation (1.2E1)"),
        ("From \u0661\u0660 to \u0662\u0660.", (10.0, 20.0), "non-ASCII digits read as ASCII digits"),
        ("From \uff11\uff10 to \uff12\uff10.", (10.0, 20.0), "non-ASCII digits read as ASCII digits"),
        ("From \u0661\u066b\u0665 to \u0663.", (1.5, 3.0), "non-ASCII digits read as ASCII digits"),
    ],
)
def test_number_formats_are_read_as_written_with_a_violation(text, span, note):
    parsed = parse_span(text, duration_seconds=60)
    assert parsed.span is not None and parsed.span.to_tuple() == pytest.approx(span)
    assert note in parsed.violations
    with pytest.raises(ParseError, match="expected format"):
        parse_span(text, duration_seconds=60, strict=True)


@pytest.mark.parametrize("text", ["[10,20]", "(10, 20)", "00:10,00:20", "00:10, 00:20"])
def test_a_comma_between_the_two_times_stays_a_separator(text):
    assert parse_span(text).span.to_tuple() == (10.0, 20.0)


@pytest.mark.parametrize("text", ["From 1,234 to 1,250.", "The event happens in 10,500 - 12,000 seconds."])
def test_a_comma_before_three_digits_is_ambiguous_and_gives_no_span(text):
    parsed = parse_span(text)
    assert parsed.span is None and parsed.as_written is None
    assert any(v.startswith("ambiguous number") for v in parsed.violations)


def test_digits_joined_by_commas_never_split_into_two_times():
    parsed = parse_span("From 1,2,3 to 5")
    assert parsed.span is None  # not (1, 2), not (2, 3)


def test_zero_length_span_is_kept_when_lenient_and_refused_when_strict():
    lenient = parse_span("From 5 to 5.")
    assert lenient.format_ok and lenient.span.to_tuple() == (5.0, 5.0)
    assert lenient.violations == ("zero-length span (5.0 - 5.0)",)
    with pytest.raises(ParseError, match="zero-length span"):
        parse_span("From 5 to 5.", strict=True)
    assert parse_span("The event happens in 5.0 - 5.0 seconds.", output_format="timelens").violations == (
        "zero-length span (5.0 - 5.0)",
    )


def test_normalize_numbers_keeps_length_where_it_only_rewrites_characters():
    notes: list[str] = []
    assert normalize_numbers("\u0661\u0660,5 - 20", notes) == "10.5 - 20"
    assert notes == ["non-ASCII digits read as ASCII digits", "decimal comma in '10,5' read as 10.5"]


# ------------------------------------------------------------------------------------------- properties

TENTHS = st.integers(min_value=0, max_value=36_000)  # tenths of a second, up to an hour
DIGITS = {
    "ascii": "0123456789",
    "arabic-indic": "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
    "fullwidth": "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
    "devanagari": "\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f",
}


FORMS = ["From {a} to {b}.", "The event happens in {a} - {b} seconds.", "between {a} and {b}"]


def written(tenths: int, *, comma: bool, digits: str, exponent: bool) -> str:
    """``tenths / 10`` seconds as a model might write it."""
    if exponent:
        mantissa = f"{tenths / 10 ** (len(str(tenths)) - 1):.{max(len(str(tenths)) - 1, 1)}f}"
        text = f"{mantissa}e{len(str(tenths)) - 2}"  # 1234 tenths -> 1.234e2
    else:
        text = f"{tenths // 10}.{tenths % 10}"
    if comma:
        text = text.replace(".", ",")
    return text.translate(str.maketrans("0123456789", digits))


@QUICK
@given(
    a=TENTHS,
    b=TENTHS,
    comma=st.booleans(),
    script=st.sampled_from(sorted(DIGITS)),
    exponent=st.booleans(),
    form=st.sampled_from(
        ["From {a} to {b}.", "The event happens in {a} - {b} seconds.", "between {a} and {b}"]
    ),
)
def test_any_number_format_is_read_as_the_value_written_or_not_at_all(a, b, comma, script, exponent, form):
    text = form.format(
        a=written(a, comma=comma, digits=DIGITS[script], exponent=exponent),
        b=written(b, comma=comma, digits=DIGITS[script], exponent=exponent),
    )
    parsed = parse_span(text)
    if parsed.as_written is not None:  # read: exactly the values written
        assert parsed.as_written == pytest.approx((a / 10, b / 10), abs=1e-9)
    else:  # not read: only ever because a comma number was ambiguous
        assert comma and any(v.startswith("ambiguous number") for v in parsed.violations)
    canonical = not comma and script == "ascii" and not exponent and form == "From {a} to {b}."
    assert (parsed.violations == ()) == (canonical and a < b)


@QUICK
@given(a=TENTHS, b=TENTHS, minus=st.sampled_from(["-", "\u2212"]))
def test_a_negative_start_is_clamped_to_zero_never_flipped(a, b, minus):
    parsed = parse_span(f"From {minus}{a / 10:.1f} to {b / 10:.1f}.")
    assert parsed.as_written == (0.0, b / 10)
    assert f"negative time -{a / 10:.1f} clamped to 0" in parsed.violations
