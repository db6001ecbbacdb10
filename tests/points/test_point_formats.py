"""Molmo2's point/track/count grammar: the reference's golden strings, round trips, and the upstream bugs
(molmo2-formats.md §6) that must not come back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidspan.errors import ParseError
from vidspan.points.formats import (
    NO_TRACKS_ANSWER,
    NONE_ANSWER,
    format_count,
    format_points,
    format_tracks,
    parse_molmo2,
    parse_qwen_points,
)

W, H = 1000, 1000  # pixels equal the 0-1000 scale, so the golden strings read directly


def test_the_reference_video_pointing_example_round_trips():
    text = '<points coords="2.5 1 120 340 2 610 355;3.0 3 598 360">person</points>'
    parsed = parse_molmo2(text, strict=True)
    assert [(p.t, p.id, p.x, p.y) for p in parsed.points] == [
        (2.5, 1, 120, 340), (2.5, 2, 610, 355), (3.0, 3, 598, 360),
    ]  # fmt: skip
    assert parsed.labels == ("person",) and parsed.point_count == 3 and parsed.count is None
    frames = [(3.0, [(598, 360)]), (2.5, [(610, 355), (120, 340)])]  # any order in, sorted out
    assert format_points(frames, W, H, "person") == text


def test_the_reference_tracking_example_round_trips():
    text = '<tracks coords="0.0 1 259 340;1.0 1 262 338 2 700 120;2.0 2 690 125">dog</tracks>'
    parsed = parse_molmo2(text, strict=True)
    assert [(p.t, p.id) for p in parsed.points] == [(0.0, 1), (1.0, 1), (1.0, 2), (2.0, 2)]
    assert parsed.point_count == 2  # two distinct objects
    tracks = {"b": [(1.0, 700, 120), (2.0, 690, 125)], "a": [(0.0, 259, 340), (1.0, 262, 338)]}
    assert format_tracks(tracks, W, H, "dog") == text


def test_formatter_scales_pads_sorts_continues_ids_and_clamps_each_coordinate():
    # 640 x 480 frame: (32, 24) -> (050, 050); ids continue into the second frame; sorted by (x, y)
    out = format_points([(0.0, [(320, 240), (32, 24)]), (0.5, [(3.2, 470)])], 640, 480, "cup")
    assert out == '<points coords="0.0 1 050 050 2 500 500;0.5 3 005 979">cup</points>'
    # upstream's `not a and b` clamp missed one-sided and two-sided overflow; each is clamped here
    assert format_points([(1.0, [(700, -5)])], 640, 480, "x") == '<points coords="1.0 1 1000 000">x</points>'
    v1 = format_points([(0.0, [(10, 10)]), (1.0, [(20, 20)])], 100, 100, "x", variant="html-v1", alt="a cup")
    assert v1 == '<points alt="a cup" coords="0.0 1 100 100\t1.0 2 200 200">x</points>'
    assert format_points([], 10, 10, "x") == NONE_ANSWER
    assert format_tracks({}, 10, 10, "x") == NO_TRACKS_ANSWER
    with pytest.raises(ValueError, match="html-v2"):
        format_points([(0.0, [(1, 1)])], 10, 10, "x", variant="html-v3")


def test_count_wrappers_are_written_and_all_three_are_read_back():
    points = format_points([(1.0, [(100, 100), (500, 500)])], W, H, "apple")
    for mode, expected in [
        ("point_then_count", f"Counting the {points} shows a total of 2."),
        ("count_then_point", f"There are 2 {points}."),
        ("count", "2"),
        ("point", points),
    ]:
        text = format_count(2, points, mode=mode)
        assert text == expected
        assert parse_molmo2(text).point_count == 2
    assert format_count(0, mode="count") == NONE_ANSWER
    with pytest.raises(ValueError, match="point_then_count"):
        format_count(1, mode="both")


def test_the_empty_answers_are_valid_and_mean_zero():
    none = parse_molmo2("There are none.")  # upstream's non-raw "\b" never matched it (bug 1)
    assert none.empty and none.count == 0 and none.violations == ()
    assert parse_molmo2("there are none").count == 0
    tracks = parse_molmo2(NO_TRACKS_ANSWER, strict=True)
    assert tracks.empty and tracks.points == () and tracks.point_count == 0
    assert parse_molmo2("The total number of cars is: 7").count == 7
    assert parse_molmo2("12.").count == 12


def test_short_and_out_of_range_coordinates_are_reported_not_silently_dropped():
    parsed = parse_molmo2('<points coords="1.0 1 7 45 2 1200 300 3 500 500">x</points>')
    assert [(p.id, p.x, p.y) for p in parsed.points] == [(1, 7, 45), (3, 500, 500)]  # 7 read, no shift
    assert any("outside the 0–1000" in v for v in parsed.violations)
    with pytest.raises(ParseError, match="zero-padded"):
        parse_molmo2('<points coords="1.0 1 7 045">x</points>', strict=True)


def test_duplicate_ids_in_a_frame_keep_the_first_and_are_counted():
    parsed = parse_molmo2('<tracks coords="0.0 1 100 100 1 900 900;1.0 1 110 100">dog</tracks>')
    assert [(p.t, p.x) for p in parsed.points] == [(0.0, 100), (1.0, 110)]
    assert any("twice" in v for v in parsed.violations)


def test_every_separator_is_read_and_mixing_them_is_not_canonical():
    for sep in ("\t", ";", ",", ":"):
        parsed = parse_molmo2(f'<points coords="0.0 1 100 100{sep}1.0 2 200 200">x</points>')
        assert [(p.t, p.id) for p in parsed.points] == [(0.0, 1), (1.0, 2)], repr(sep)
    with pytest.raises(ParseError, match="mixes"):
        parse_molmo2('<points coords="0.0 1 100 100;1.0 2 200 200\t2.0 3 300 300">x</points>', strict=True)


def test_strict_mode_lists_every_violation():
    text = '<points coords="0.0 2 100 100;1.0 1 200">x</points> <points coords="5">y'
    with pytest.raises(ParseError) as info:
        parse_molmo2(text, strict=True)
    message = str(info.value)
    assert "not closed" in message and "triples" in message
    lenient = parse_molmo2(text)
    assert [(p.t, p.id) for p in lenient.points] == [(0.0, 2)] and len(lenient.violations) == 2


def test_alt_text_and_labels_are_kept_and_the_raw_text_is_kept():
    text = 'Counting the <points alt="red cups" coords="1.0 1 100 200">cups</points> shows a total of 1.'
    parsed = parse_molmo2(text)
    assert parsed.alts == ("red cups",) and parsed.labels == ("cups",) and parsed.raw == text
    assert parsed.count == 1


def test_qwen3_vl_json_points_and_boxes_on_the_1000_scale():
    text = ('```json\n[{"point_2d": [250, 500], "label": "cup"}, '
            '{"bbox_2d": [100, 200, 300, 400], "label": "dog"}]\n```')
    parsed = parse_qwen_points(text, t=2.0)
    assert [(p.t, p.x, p.y, p.label) for p in parsed.points] == [
        (2.0, 250, 500, "cup"),
        (2.0, 200, 300, "dog"),
    ]
    assert parsed.points[1].box == (100, 200, 300, 400)
    bad = parse_qwen_points('[{"point_2d": [1500, 2]}, {"label": "x"}, 3]')
    assert bad.points == () and len(bad.violations) == 3
    with pytest.raises(ParseError):
        parse_qwen_points("not json {", strict=True)
    assert parse_qwen_points("There are none.").empty


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list('<>/="; \t:,.0123456789 pointsrackcoaltThere nonx')), max_size=120)
)
def test_the_lenient_parsers_never_raise(text):
    parsed = parse_molmo2(text)
    assert all(0 <= p.x <= 1000 and 0 <= p.y <= 1000 and p.id >= 1 for p in parsed.points)
    parse_qwen_points(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)),
                                                         min_size=1, max_size=4)), min_size=1, max_size=5,
                unique_by=lambda f: f[0]))  # fmt: skip
def test_formatted_points_parse_back_to_the_same_positions(frames):
    frames = [(t / 10, pts) for t, pts in frames]
    parsed = parse_molmo2(format_points(frames, W, H, "thing"), strict=True)
    got = sorted((p.t, p.x, p.y) for p in parsed.points)
    assert got == sorted((t, float(x), float(y)) for t, pts in frames for x, y in pts)
