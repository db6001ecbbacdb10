"""The QVHighlights scorer: reproduction of the official numbers and hand-computed cases."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from vidspan.eval.grounding.qvhighlights import (
    IOU_THRESHOLDS,
    eval_highlight,
    eval_moment_retrieval,
    eval_qvhighlights,
    load_jsonl,
)

QVH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "qvhighlights"


@pytest.fixture(scope="module")
def qvh_data() -> tuple[list[dict], list[dict], dict]:
    assert QVH.is_dir(), f"missing shared test data at {QVH}"
    submission = load_jsonl(QVH / "sample_val_preds.jsonl")
    ground_truth = load_jsonl(QVH / "highlight_val_release.jsonl")
    expected = json.loads((QVH / "sample_val_preds_metrics_raw.json").read_text())
    return submission, ground_truth, expected


def _numeric_leaves(tree: dict, prefix: str = "") -> dict[str, float]:
    leaves = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}"
        if isinstance(value, dict):
            leaves.update(_numeric_leaves(value, path))
        else:
            assert isinstance(value, int | float), path
            leaves[path] = value
    return leaves


def _key_order(tree: dict) -> list:
    return [(key, _key_order(value) if isinstance(value, dict) else None) for key, value in tree.items()]


def test_reproduces_every_official_number(qvh_data):
    submission, ground_truth, expected = qvh_data
    started = time.perf_counter()
    result = eval_qvhighlights(submission, ground_truth)
    elapsed = time.perf_counter() - started

    assert _key_order(result) == _key_order(expected)  # same keys, same nesting, same order
    want, got = _numeric_leaves(expected), _numeric_leaves(result)
    assert len(want) == 14 + 6 + 4 * 21
    mismatches = {k: (want[k], got[k]) for k in want if abs(want[k] - got[k]) > 0.01 + 1e-9}
    assert not mismatches, mismatches
    assert result["brief"]["MR-full-R1@0.5"] == 53.94
    assert result["brief"]["HL-min-VeryGood-mAP"] == 35.65
    assert elapsed < 10, f"scoring 1550 queries took {elapsed:.1f} s"


def test_intersection_mode_scores_the_shared_qids(qvh_data):
    submission, ground_truth, _ = qvh_data
    part = submission[:200]
    qids = {d["qid"] for d in part}
    with pytest.raises(ValueError, match=r"1350 missing.*0 extra.*match_number=False"):
        eval_qvhighlights(part, ground_truth)
    loose = eval_qvhighlights(part + [{**submission[0], "qid": -1}], ground_truth, match_number=False)
    strict = eval_qvhighlights(part, [d for d in ground_truth if d["qid"] in qids])
    assert loose == strict


# ------------------------------------------------------------------------------------ qid checks


def _gt(qid, windows, duration=150, clip_ids=(), scores=()):
    return {
        "qid": qid,
        "duration": duration,
        "relevant_windows": [list(w) for w in windows],
        "relevant_clip_ids": list(clip_ids),
        "saliency_scores": [list(s) for s in scores],
    }


def _pred(qid, windows=None, saliency=None):
    entry = {"qid": qid}
    if windows is not None:
        entry["pred_relevant_windows"] = [list(w) for w in windows]
    if saliency is not None:
        entry["pred_saliency_scores"] = list(saliency)
    return entry


def test_match_number_lists_missing_and_extra_qids():
    gt = [_gt(1, [(0, 10)]), _gt(2, [(0, 10)]), _gt(3, [(0, 10)])]
    sub = [_pred(1, [(0, 10, 1.0)]), _pred(2, [(0, 10, 1.0)]), _pred(7, [(0, 10, 1.0)])]
    with pytest.raises(
        ValueError, match=r"Invalid submission: .*1 missing, e\.g\. \[3\]; 1 extra, e\.g\. \[7\]"
    ):
        eval_qvhighlights(sub, gt)
    result = eval_qvhighlights(sub, gt, match_number=False)
    assert result["brief"]["MR-full-R1@0.5"] == 100.0
    assert list(result["brief"]) == sorted(result["brief"])  # MR only: its keys sorted


def test_rejects_duplicates_disjoint_sets_and_empty_predictions():
    gt = [_gt(1, [(0, 10)])]
    with pytest.raises(ValueError, match=r"Invalid submission: duplicate qids \[1\]"):
        eval_qvhighlights([_pred(1, [(0, 10, 1)]), _pred(1, [(0, 10, 1)])], gt)
    with pytest.raises(ValueError, match="no qid in common"):
        eval_qvhighlights([_pred(2, [(0, 10, 1)])], gt, match_number=False)
    with pytest.raises(ValueError, match="no prediction fields"):
        eval_qvhighlights([_pred(1)], gt)
    with pytest.raises(ValueError, match=r"It must be a list of \[start, end, score\]"):
        eval_qvhighlights([_pred(1, [(0, 10)])], gt)


# ------------------------------------------------------------------------------ moment retrieval


def test_r1_uses_the_first_listed_window_and_the_best_matching_gt():
    # GT windows [0, 10] and [20, 30]; the first listed window [21, 30] (lower score) overlaps the second:
    # paired IoU 9 / 10. The higher-scored [0, 4] is ignored by R1.
    gt = [_gt(1, [(0, 10), (20, 30)])]
    sub = [_pred(1, [(21, 30, 0.1), (0, 4, 0.9)])]
    r1 = eval_moment_retrieval(sub, gt)["full"]["MR-R1"]
    assert r1["0.9"] == 100.0 and r1["0.95"] == 0.0
    # no overlap with any GT window: a miss at every threshold
    miss = eval_moment_retrieval([_pred(1, [(40, 50, 1.0)])], gt)["full"]["MR-R1"]
    assert set(miss.values()) == {0.0}


def test_r1_counts_iou_equal_to_the_threshold():
    gt = [_gt(1, [(0, 10)]), _gt(2, [(0, 10)])]
    sub = [_pred(1, [(0, 5, 1.0)]), _pred(2, [(0, 7, 1.0)])]  # IoU exactly 0.5 and 0.7
    r1 = eval_moment_retrieval(sub, gt)["full"]["MR-R1"]
    assert r1["0.5"] == 100.0 and r1["0.55"] == 50.0 and r1["0.7"] == 50.0 and r1["0.75"] == 0.0


def test_map_sorts_by_score_and_locks_matched_windows():
    gt = [_gt(1, [(0, 10)]), _gt(2, [(0, 10)])]
    sub = [
        # query 1: a duplicate of the matched window is a false positive after it -> P = [1, 1/2], AP 1
        _pred(1, [(0, 10, 0.5), (0, 10, 0.9)]),
        # query 2: listed first but scored lower, the hit comes second -> P = [0, 1/2], AP 0.5
        _pred(2, [(0, 10, 0.2), (50, 60, 0.8)]),
    ]
    mr_map = eval_moment_retrieval(sub, gt)["full"]["MR-mAP"]
    assert {k: v for k, v in mr_map.items()} == {**{str(t): 75.0 for t in IOU_THRESHOLDS}, "average": 75.0}


def test_map_interpolates_and_uses_top_ten_only():
    # two GT windows; hits at ranks 1 and 3 -> P/R = (1, .5), (.5, .5), (2/3, 1) -> AP = .5 * 1 + .5 * 2/3
    gt = [_gt(1, [(0, 10), (20, 30)])]
    sub = [_pred(1, [(0, 10, 0.9), (40, 50, 0.8), (20, 30, 0.7)])]
    assert eval_moment_retrieval(sub, gt)["full"]["MR-mAP"]["0.5"] == pytest.approx(
        100 * (0.5 + 1 / 3), abs=0.005
    )
    # the 11th window as listed is dropped even with the highest score
    windows = [(40 + 5 * i, 42 + 5 * i, 0.5) for i in range(10)] + [(0, 10, 1.0)]
    sub = [_pred(1, windows)]
    assert eval_moment_retrieval(sub, gt)["full"]["MR-mAP"]["average"] == 0.0


def test_map_threshold_changes_the_match():
    gt = [_gt(1, [(0, 10)])]
    sub = [_pred(1, [(0, 6, 1.0)])]  # IoU 0.6
    mr_map = eval_moment_retrieval(sub, gt)["full"]["MR-mAP"]
    assert [mr_map[str(t)] for t in IOU_THRESHOLDS] == [100.0] * 3 + [0.0] * 7
    assert mr_map["average"] == 30.0


def test_length_subsets_filter_gt_windows_and_drop_empty_queries():
    gt = [
        _gt(1, [(0, 4), (20, 40)]),  # lengths 4 (short) and 20 (middle)
        _gt(2, [(0, 100)]),  # long only
        _gt(3, [(0, 10), (10, 40)]),  # 10 is short (<= 10), 30 is middle (<= 30)
    ]
    sub = [
        _pred(1, [(20, 40, 1.0)]),
        _pred(2, [(0, 100, 1.0)]),
        _pred(3, [(10, 40, 1.0)]),
    ]
    result = eval_moment_retrieval(sub, gt)
    assert result["short"]["MR-R1"]["0.5"] == 0.0  # queries 1 and 3: their predictions match no short window
    assert result["middle"]["MR-R1"]["0.5"] == 100.0  # queries 1 and 3
    assert result["long"]["MR-R1"]["0.5"] == 100.0  # query 2 only
    assert result["full"]["MR-R1"]["0.5"] == 100.0


def test_empty_window_list_scores_zero_and_stays_in_the_denominator():
    gt = [_gt(1, [(0, 10)]), _gt(2, [(0, 10)])]
    result = eval_moment_retrieval([_pred(1, [(0, 10, 1.0)]), _pred(2, [])], gt)["full"]
    assert result["MR-R1"]["0.5"] == 50.0 and result["MR-mAP"]["average"] == 50.0


# --------------------------------------------------------------------------- highlight detection


def test_highlight_hand_computed():
    # 10 s -> 5 clips; clip 1 scores (4, 2, 0), clip 2 scores (1, 3, 4)
    gt = [_gt(1, [(2, 6)], duration=10, clip_ids=[1, 2], scores=[(4, 2, 0), (1, 3, 4)])]
    sub = [_pred(1, saliency=[0.1, 0.9, 0.5, 0.0, 0.0])]
    hl = eval_highlight(sub, gt)
    # Fair (>= 2): labels a0 [0,1,0,0,0] AP 1; a1 [0,1,1,0,0] AP 1; a2 [0,0,1,0,0] (rank 2) AP 0.5
    assert hl["HL-min-Fair"] == {"HL-mAP": 83.33, "HL-Hit1": 100.0}
    # Good (>= 3): a0 [0,1,..] AP 1; a1 [0,0,1,..] AP 0.5; a2 [0,0,1,..] AP 0.5; top clip 1 -> a0 positive
    assert hl["HL-min-Good"] == {"HL-mAP": 66.67, "HL-Hit1": 100.0}
    # VeryGood (>= 4): a0 AP 1; a1 all 0 -> AP 0; a2 AP 0.5
    assert hl["HL-min-VeryGood"] == {"HL-mAP": 50.0, "HL-Hit1": 100.0}


def test_highlight_ties_padding_truncation_and_out_of_range_top_clip():
    gt = [_gt(1, [(0, 4)], duration=8, clip_ids=[0, 1, 2, 3], scores=[(4, 4, 4)] * 2 + [(0, 0, 0)] * 2)]
    # all scores tie: argmax is clip 0 (a hit); the PR curve has one point, precision 2/4
    tied = eval_highlight([_pred(1, saliency=[0.3] * 4)], gt)["HL-min-VeryGood"]
    assert tied == {"HL-mAP": 50.0, "HL-Hit1": 100.0}
    # a short prediction is padded with zeros: [1, 0.5, 0, 0] ranks both positives first
    padded = eval_highlight([_pred(1, saliency=[1.0, 0.5])], gt)["HL-min-VeryGood"]
    assert padded == {"HL-mAP": 100.0, "HL-Hit1": 100.0}
    # the top clip lies past the video's 4 clips: no hit; the truncated prediction ranks the negatives first
    long_pred = [0.0, 0.1, 0.8, 0.9, 5.0]
    out = eval_highlight([_pred(1, saliency=long_pred)], gt)["HL-min-VeryGood"]
    assert out["HL-Hit1"] == 0.0
    assert out["HL-mAP"] == 50.0  # positives at ranks 3 and 4: envelope precision 1/2 at both recalls


def test_highlight_all_zero_and_all_one_labels():
    gt = [
        _gt(1, [(0, 4)], duration=4, clip_ids=[0, 1], scores=[(4, 0, 1)] * 2),
        _gt(2, [(0, 4)], duration=4, clip_ids=[], scores=[]),
    ]
    sub = [_pred(1, saliency=[0.0, 1.0]), _pred(2, saliency=[0.0, 1.0])]
    hl = eval_highlight(sub, gt)["HL-min-VeryGood"]
    # query 1: annotator 0 all positive (AP 1), others all negative (AP 0); query 2: all negative
    assert hl == {"HL-mAP": pytest.approx(100 / 6, abs=0.005), "HL-Hit1": 50.0}


def test_highlight_only_submission_has_only_highlight_keys():
    gt = [_gt(1, [(0, 4)], duration=4, clip_ids=[0], scores=[(4, 4, 4)])]
    result = eval_qvhighlights([_pred(1, saliency=[1.0, 0.0])], gt)
    assert list(result) == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood"]
    assert result["brief"]["HL-min-VeryGood-Hit1"] == 100.0


def test_relevant_clip_outside_the_video_is_rejected():
    gt = [_gt(1, [(0, 4)], duration=4, clip_ids=[2], scores=[(4, 4, 4)])]
    with pytest.raises(ValueError, match=r"Invalid relevant_clip_ids for qid 1: max 2\. It must index the 2"):
        eval_highlight([_pred(1, saliency=[1.0, 0.0])], gt)


def test_perfect_saliency_ranking_scores_full_marks():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 5, size=75)
    gt = [_gt(1, [(0, 150)], clip_ids=range(75), scores=[(v, v, v) for v in levels.tolist()])]
    for name, minimum in (("Fair", 2), ("Good", 3), ("VeryGood", 4)):
        positive = levels >= minimum
        assert positive.any() and not positive.all()
        saliency = positive + rng.random(75) * 0.01  # every positive above every negative
        hl = eval_highlight([_pred(1, saliency=saliency.tolist())], gt)[f"HL-min-{name}"]
        assert hl == {"HL-mAP": 100.0, "HL-Hit1": 100.0}
        worst = eval_highlight([_pred(1, saliency=(-saliency).tolist())], gt)[f"HL-min-{name}"]
        # all negatives ranked first: the envelope precision is the positive rate at every recall
        assert worst["HL-Hit1"] == 0.0
        assert worst["HL-mAP"] == pytest.approx(100 * positive.mean(), abs=0.005)
