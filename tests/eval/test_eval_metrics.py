"""TimeLens-protocol metrics: hull IoU, banker's rounding, R1 with >=, per-subset and pooled summaries."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidspan.eval.grounding.metrics import (
    METRICS,
    OVERALL,
    GroundingScore,
    higher_is_better,
    round_span,
    score_timelens,
    summarize,
    temporal_iou,
)
from vidspan.eval.grounding.samples import GroundingSample


def _sample(sample_id: str, span: tuple[float, float], subset: str = "charades") -> GroundingSample:
    return GroundingSample(id=sample_id, video="v", query="q", gt_spans=(span,), subset=subset)


# ------------------------------------------------------------------------------------------- IoU


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ((0.0, 10.0), (0.0, 10.0), 1.0),
        ((0.0, 10.0), (5.0, 15.0), 5.0 / 15.0),
        ((2.0, 4.0), (0.0, 10.0), 0.2),  # contained
        ((0.0, 5.0), (10.0, 20.0), 0.0),  # disjoint: hull 20, intersection clamped to 0
        ((0.0, 10.0), (10.0, 20.0), 0.0),  # touching
        ((24.6, 30.4), (25.0, 30.0), 5.0 / 5.8),
        ((10.0, 5.0), (0.0, 20.0), 0.0),  # reversed prediction, scored as is
        ((8.0, 3.0), (3.0, 8.0), 0.0),  # reversed copy of the GT
        ((5.0, 5.0), (5.0, 5.0), 0.0),  # zero hull: the guard
        ((5.0, 5.0), (0.0, 10.0), 0.0),  # zero-length prediction
        (None, (0.0, 10.0), 0.0),  # nothing parsed
    ],
)
def test_temporal_iou_hand_computed(pred, gt, expected):
    assert temporal_iou(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_the_rounding_example_from_the_reference():
    gt = (25.0, 30.0)
    assert temporal_iou((24.6, 30.4), gt) == pytest.approx(0.862, abs=5e-4)
    assert round_span((24.6, 30.4)) == (25.0, 30.0)
    assert temporal_iou(round_span((24.6, 30.4)), gt) == 1.0


def test_round_span_is_bankers_rounding():
    assert round_span((2.5, 3.5)) == (2.0, 4.0)
    assert round_span((0.5, 1.5)) == (0.0, 2.0)
    assert round_span((2.6, 2.4)) == (3.0, 2.0)  # no swap
    assert round_span((12.34, 20.05), unit=0.1) == pytest.approx((12.3, 20.0))
    assert all(isinstance(v, float) for v in round_span((1.2, 3.0)))
    with pytest.raises(ValueError, match=r"Invalid unit: 0\. It must be a positive finite number"):
        round_span((1.0, 2.0), unit=0)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def valid_spans(draw):
    start = draw(finite)
    length = draw(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False))
    return (start, start + length)


@given(finite, finite, finite, finite)
def test_iou_is_in_unit_interval(a, b, c, d):
    assert 0.0 <= temporal_iou((a, b), (c, d)) <= 1.0


@given(valid_spans(), valid_spans())
def test_iou_is_symmetric_for_valid_spans(p, g):
    assert temporal_iou(p, g) == temporal_iou(g, p)


@given(valid_spans())
def test_iou_of_identical_spans_is_one(span):
    assert temporal_iou(span, span) == 1.0


@given(finite, finite, valid_spans())
def test_reversed_prediction_scores_zero(a, b, gt):
    start, end = max(a, b), min(a, b)
    assert temporal_iou((start, end), gt) == 0.0


# --------------------------------------------------------------------------------------- scoring


def test_score_timelens_uses_the_first_gt_span_and_keeps_failures():
    samples = [
        GroundingSample(id="a", video="v", query="q", gt_spans=((0.0, 10.0), (50.0, 60.0)), subset="s"),
        _sample("b", (0.0, 10.0), "s"),
    ]
    scores = score_timelens([(50.0, 60.0), None], samples)
    assert scores == [GroundingScore("a", "s", 0.0, True), GroundingScore("b", "s", 0.0, False)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        scores[0].iou = 1.0  # type: ignore[misc]


def test_round_to_seconds_changes_the_score():
    samples = [_sample("a", (25.0, 30.0))]
    plain = score_timelens([(24.6, 30.4)], samples)[0]
    rounded = score_timelens([(24.6, 30.4)], samples, round_to_seconds=True)[0]
    assert plain.iou == pytest.approx(5.0 / 5.8) and rounded.iou == 1.0
    assert score_timelens([None], samples, round_to_seconds=True)[0] == GroundingScore(
        "a", "charades", 0.0, False
    )
    # banker's rounding: 2.5 -> 2, so [2.5, 5.5] becomes [2, 6]
    assert score_timelens([(2.5, 5.5)], [_sample("b", (2.0, 6.0))], round_to_seconds=True)[0].iou == 1.0


def test_score_timelens_rejects_mismatched_inputs():
    with pytest.raises(
        ValueError, match=r"Invalid preds: 1 predictions for 2 samples\. It must have exactly"
    ):
        score_timelens([None], [_sample("a", (0, 1)), _sample("b", (0, 1))])
    empty = GroundingSample(id="x", video="v", query="q", gt_spans=(), subset="s")
    with pytest.raises(ValueError, match=r"Invalid sample 'x': gt_spans=\(\)\. It must have at least one"):
        score_timelens([(0.0, 1.0)], [empty])


# -------------------------------------------------------------------------------------- summaries


def test_r1_counts_iou_equal_to_the_threshold():
    samples = [_sample("a", (0.0, 10.0)), _sample("b", (0.0, 10.0))]
    scores = score_timelens([(0.0, 5.0), (0.0, 7.0)], samples)  # IoU exactly 0.5 and 0.7
    assert [s.iou for s in scores] == [0.5, 0.7]
    block = summarize(scores)[OVERALL]
    assert block["R1@0.3"] == 100.0 and block["R1@0.5"] == 100.0 and block["R1@0.7"] == 50.0
    assert summarize(scores, thresholds=(0.51,))[OVERALL]["R1@0.51"] == 50.0


def test_summary_per_subset_and_pooled():
    samples = [
        _sample("c1", (0.0, 10.0), "charades"),
        _sample("c2", (0.0, 10.0), "charades"),
        _sample("a1", (0.0, 10.0), "activitynet"),
        _sample("a2", (0.0, 10.0), "activitynet"),
        _sample("a3", (0.0, 10.0), "activitynet"),
        _sample("a4", (0.0, 10.0), "activitynet"),
    ]
    preds = [(0.0, 10.0), None, (0.0, 4.0), (0.0, 6.0), None, (20.0, 30.0)]
    summary = summarize(score_timelens(preds, samples))
    assert list(summary) == ["charades", "activitynet", OVERALL]
    assert summary["charades"] == {
        "R1@0.3": 50.0,
        "R1@0.5": 50.0,
        "R1@0.7": 50.0,
        "mIoU": 50.0,
        "num_samples": 2,
        "num_unparsed": 1,
        "parse_failure_rate": 50.0,
    }
    anet = summary["activitynet"]
    assert anet["R1@0.3"] == 50.0 and anet["R1@0.5"] == 25.0 and anet["R1@0.7"] == 0.0
    assert anet["mIoU"] == pytest.approx(25.0)
    assert (anet["num_samples"], anet["num_unparsed"], anet["parse_failure_rate"]) == (4, 1, 25.0)
    pooled = summary[OVERALL]  # sample-weighted, not the mean of the subset numbers
    assert pooled["R1@0.3"] == pytest.approx(300 / 6)
    assert pooled["R1@0.5"] == pytest.approx(200 / 6)
    assert pooled["mIoU"] == pytest.approx(100 * 2.0 / 6)
    assert (pooled["num_samples"], pooled["num_unparsed"]) == (6, 2)
    assert pooled["parse_failure_rate"] == pytest.approx(100 / 3)  # full precision, not rounded


def test_unparsed_predictions_stay_in_the_denominator():
    samples = [_sample(str(i), (0.0, 10.0)) for i in range(4)]
    block = summarize(score_timelens([(0.0, 10.0), None, None, None], samples))["charades"]
    assert block["R1@0.5"] == 25.0 and block["mIoU"] == 25.0 and block["parse_failure_rate"] == 75.0


def test_summarize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"Invalid scores: \[\]\. It must contain at least one score\."):
        summarize([])
    score = GroundingScore("a", "s", 1.0, True)
    with pytest.raises(ValueError, match=r"Invalid threshold: 1\.5\. It must be in \[0, 1\]\."):
        summarize([score], thresholds=(1.5,))
    with pytest.raises(ValueError, match=r"Invalid subset: 'all'"):
        summarize([GroundingScore("a", OVERALL, 1.0, True)])


def test_metric_metadata():
    assert all(METRICS[f"R1@{t}"].higher_is_better for t in ("0.3", "0.5", "0.7"))
    assert METRICS["mIoU"].higher_is_better
    assert not METRICS["parse_failure_rate"].higher_is_better
    assert higher_is_better("R1@0.9") and not higher_is_better("num_unparsed")
    summary_keys = set(summarize([GroundingScore("a", "s", 1.0, True)])["s"])
    assert summary_keys - set(METRICS) == {"num_samples"}
    with pytest.raises(KeyError, match="Unknown metric 'bogus'"):
        higher_is_better("bogus")
