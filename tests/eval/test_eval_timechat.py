"""TimeChat / VTG-LLM files read directly: COCO-style ground truth and ``{qid: {timestamp, query, vid}}``
predictions, scored against hand-computed values; and the QVHighlights TimeLens block's GT-window label.

The fixtures are written here in the exact shapes of TimeChat's ``metrics/tvg/example_gt_file.json``
(``{"annotations": [{"image_id", "caption", "timestamp", "id"}]}``, from ``utils/get_coco_format.py``) and
``metrics/tvg/example_pred_file.json`` (``fmt_*_result.json`` from ``evaluate.py``; VTG-LLM ships the same).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.errors import BenchmarkFormatError, PredictionFormatError
from vidspan.eval.grounding.datasets import load_activitynet, load_benchmark, load_charades_sta
from vidspan.eval.grounding.predictions import detect_prediction_format, load_predictions
from vidspan.eval.grounding.score import score_predictions
from vidspan.eval.grounding.timechat import (
    join_timechat_predictions,
    load_coco_grounding,
    read_timechat_predictions,
)

GT = {
    "annotations": [
        {"image_id": "3MSZA.mp4", "caption": "person turn a light on.", "timestamp": [24.3, 30.4], "id": 0},
        {
            "image_id": "3MSZA.mp4",
            "caption": "person flipped the light switch near the door.",
            "timestamp": [24.3, 30.4],
            "id": 1,
        },
        {
            "image_id": "AMT7R.mp4",
            "caption": "a person is putting a picture onto the wall.",
            "timestamp": [4.3, 12.5],
            "id": 4,
        },
        {
            "image_id": "YVKIV.mp4",
            "caption": "the person puts down the bag.",
            "timestamp": [4.5, 9.0],
            "id": 5,
        },
        {
            "image_id": "VXJS4.mp4",
            "caption": "a person walks through the doorway.",
            "timestamp": [0.0, 3.4],
            "id": 6,
        },
    ]
}

PREDS = {
    "0": {"timestamp": [[24.3, 30.4]], "query": "person turn a light on.", "vid": "3MSZA.mp4"},
    "1": {
        "timestamp": [[20.8, 30.0]],
        "query": "person flipped the light switch near the door.",
        "vid": "3MSZA.mp4",
    },
    "4": {"timestamp": [], "query": "a person is putting a picture onto the wall.", "vid": "AMT7R.mp4"},
    "5": {
        "timestamp": "The given query happens in 4.5 - 6.75 seconds.",
        "query": "the person puts down the bag.",
        "vid": "YVKIV.mp4",
    },
    # no entry for id 6: missing, IoU 0
}

# IoU by hand (intersection / hull):
#   0: exact                                   -> 1
#   1: [20.8, 30.0] vs [24.3, 30.4]: 5.7 / 9.6 -> 0.59375
#   4: empty list (nothing parsed)             -> 0
#   5: answer text 4.5 - 6.75 vs [4.5, 9.0]: 2.25 / 4.5 -> 0.5
#   6: no prediction                           -> 0
IOUS = [1.0, 5.7 / 9.6, 0.0, 0.5, 0.0]


@pytest.fixture
def timechat_files(tmp_path):
    gt = tmp_path / "test.caption_coco_format.json"
    gt.write_text(json.dumps(GT, indent=4), encoding="utf-8")
    preds = tmp_path / "fmt_charades_test_f96_result.json"
    preds.write_text(json.dumps(PREDS, indent=4), encoding="utf-8")
    return gt, preds


def test_coco_ground_truth_keeps_annotation_ids_as_qids(timechat_files):
    gt, _ = timechat_files
    samples = load_coco_grounding(gt, durations={"3MSZA": 31.0})
    assert [s.id for s in samples] == ["0", "1", "4", "5", "6"]
    assert [s.qid for s in samples] == [0, 1, 4, 5, 6]
    first = samples[0]
    assert (first.video, first.query, first.gt_spans, first.subset) == (
        "3MSZA.mp4",
        "person turn a light on.",
        ((24.3, 30.4),),
        "charades-sta",
    )
    assert first.duration == 31.0 and samples[2].duration is None


def test_charades_sta_and_activitynet_detect_the_coco_form(timechat_files):
    gt, _ = timechat_files
    assert [s.id for s in load_charades_sta(gt)] == ["0", "1", "4", "5", "6"]
    assert {s.subset for s in load_activitynet(gt)} == {"activitynet"}
    bench = load_benchmark("timechat-coco", gt, subset="charades")
    assert bench.subsets == ("charades",)


def test_coco_durations_come_from_annotations_or_images(tmp_path):
    data = {
        "annotations": [
            {"image_id": "a/b/X.mp4", "caption": "c", "timestamp": [1, 2], "id": 3, "duration": 12.5},
            {"image_id": "Y.mp4", "caption": "d", "timestamp": [1, 2], "id": 4},
        ],
        "images": [{"id": "Y.mp4", "duration": 30.0}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    samples = load_coco_grounding(path)
    assert [(s.video, s.duration) for s in samples] == [("X.mp4", 12.5), ("Y.mp4", 30.0)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"annotations": {"id": 0}}, "'annotations' list"),
        ({"annotations": [{"image_id": "A.mp4", "caption": "x", "timestamp": [0, 1]}]}, r"missing 'id'"),
        (
            {
                "annotations": [
                    {"image_id": "A.mp4", "caption": "x", "timestamp": [0, 1], "id": n} for n in (7, 7)
                ]
            },
            r"annotations\[1\]: 'id' must be an integer unique",
        ),
        (
            {"annotations": [{"image_id": "A.mp4", "caption": "x", "timestamp": [0], "id": 0}]},
            r"annotations\[0\]: timestamp: expected \[start, end\]",
        ),
    ],
)
def test_malformed_coco_ground_truth_names_the_annotation(tmp_path, data, message):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkFormatError, match=message):
        load_coco_grounding(path)


def test_timechat_predictions_join_by_qid_and_read_every_timestamp_form(timechat_files):
    gt, preds = timechat_files
    samples = load_coco_grounding(gt)
    assert detect_prediction_format(preds) == "timechat"
    joined = read_timechat_predictions(preds, samples)
    assert set(joined) == {"0", "1", "4", "5"}
    assert joined["0"].span == (24.3, 30.4) and joined["0"].raw is None
    assert joined["4"].span is None and joined["4"].spans == ()
    assert joined["5"].span == (4.5, 6.75) and joined["5"].raw.startswith("The given query")
    assert load_predictions(preds, samples, "timechat") == joined


def test_timechat_bare_pair_and_first_of_several_and_kept_as_written(tmp_path):
    path = tmp_path / "gt.json"
    annotations = [{"image_id": "A.mp4", "caption": "q", "timestamp": [1, 5], "id": n} for n in (1, 2, 3)]
    path.write_text(json.dumps({"annotations": annotations}))
    samples = load_coco_grounding(path)
    entries = {
        "1": {"timestamp": [47.0, 60.0], "query": "q", "vid": "A.mp4"},  # TimeChat's docstring form
        "2": {"timestamp": [[3.0, 4.0], [1.0, 5.0]], "query": "q", "vid": "A.mp4"},
        "3": {"timestamp": [[9.0, 2.0]], "query": "q", "vid": "A.mp4"},
    }
    joined, unmatched = join_timechat_predictions(entries, samples)
    assert unmatched == ()
    assert joined["1"].span == (47.0, 60.0)
    assert joined["2"].span == (3.0, 4.0) and len(joined["2"].spans) == 2
    assert joined["3"].span == (9.0, 2.0)  # not swapped: the TimeLens protocol scores it IoU 0


def test_a_qid_naming_another_video_is_not_joined(timechat_files):
    gt, _ = timechat_files
    samples = load_coco_grounding(gt)
    entries = {"0": {"timestamp": [[24.3, 30.4]], "query": "person turn a light on.", "vid": "OTHER.mp4"}}
    joined, unmatched = join_timechat_predictions(entries, samples)
    assert joined == {} and unmatched == ("0",)


def test_charades_text_ground_truth_joins_by_video_and_query_when_unique(tmp_path):
    text = tmp_path / "charades_sta_test.txt"
    text.write_text(
        "3MSZA 24.3 30.4##person turn a light on.\n"
        "AMT7R 4.3 12.5##person closes the door.\n"
        "AMT7R 14.0 20.0##person closes the door.\n",
        encoding="utf-8",
    )
    samples = load_charades_sta(text)
    entries = {
        "0": {"timestamp": [[24.3, 30.4]], "query": "Person turn a light on", "vid": "3MSZA.mp4"},
        "1": {"timestamp": [[4.3, 12.5]], "query": "person closes the door.", "vid": "AMT7R.mp4"},
    }
    joined, unmatched = join_timechat_predictions(entries, samples)
    assert set(joined) == {"3MSZA#0"} and unmatched == ("1",)  # "1" is ambiguous: two samples


def test_a_timechat_file_that_is_not_an_object_is_rejected(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text("[1, 2]")
    with pytest.raises(PredictionFormatError, match="keyed by query id"):
        read_timechat_predictions(path, [])


def test_score_timechat_files_matches_hand_computed_values(timechat_files):
    gt, preds = timechat_files
    result = score_predictions(preds, load_benchmark("charades-sta", gt))
    assert result["format"] == "timechat" and result["num_without_prediction"] == 1
    block = result["lenient"]["charades-sta"]
    assert block["num_samples"] == 5 and block["num_unparsed"] == 2  # the empty list and the missing id
    assert block["R1@0.3"] == pytest.approx(60.0)
    assert block["R1@0.5"] == pytest.approx(60.0)
    assert block["R1@0.7"] == pytest.approx(20.0)
    assert block["mIoU"] == pytest.approx(100 * sum(IOUS) / 5)
    # strict: TimeChat's answer wording is not TimeLens's canonical sentence, so sample 5 scores 0 there
    assert result["strict"]["charades-sta"]["mIoU"] == pytest.approx(100 * (1.0 + 5.7 / 9.6) / 5)
    assert result["gt_window"] == "first" and result["num_multi_window_samples"] == 0


def test_cli_scores_timechat_files_detected_and_explicit(timechat_files):
    gt, preds = timechat_files
    runner = CliRunner()
    result = runner.invoke(
        cli, ["eval", "score", str(preds), "--bench", "charades-sta", "--annotations", str(gt), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["format"] == "timechat"
    assert data["lenient"]["charades-sta"]["mIoU"] == pytest.approx(100 * sum(IOUS) / 5)
    result = runner.invoke(
        cli,
        ["eval", "score", str(preds), "--bench", "timechat-coco", "--annotations", str(gt),
         "--format", "timechat"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "timechat-coco (timechat), TimeLens protocol, first ground-truth window" in result.stdout
    assert "| charades-sta | 60.00 | 60.00 | 20.00 | 41.88 | 5 | 40.0 |" in result.stdout


# ---------------------------------------------------------------------------- QVHighlights window label

QVH_GT = [
    {"qid": 1, "query": "two windows", "vid": "v1_0.0_150.0", "duration": 150,
     "relevant_windows": [[0, 10], [20, 30]], "relevant_clip_ids": [0, 10],
     "saliency_scores": [[4, 4, 4], [2, 2, 2]]},
    {"qid": 2, "query": "one window", "vid": "v2_0.0_150.0", "duration": 150,
     "relevant_windows": [[40, 50]], "relevant_clip_ids": [20], "saliency_scores": [[3, 3, 3]]},
]  # fmt: skip
QVH_SUBMISSION = [
    {"qid": 1, "query": "two windows", "vid": "v1_0.0_150.0", "pred_relevant_windows": [[20, 30, 0.9]]},
    {"qid": 2, "query": "one window", "vid": "v2_0.0_150.0", "pred_relevant_windows": [[40, 50, 0.8]]},
]


def test_qvhighlights_timelens_block_says_it_scores_the_first_window(tmp_path):
    gt, sub = tmp_path / "gt.jsonl", tmp_path / "sub.jsonl"
    gt.write_text("".join(json.dumps(r) + "\n" for r in QVH_GT))
    sub.write_text("".join(json.dumps(r) + "\n" for r in QVH_SUBMISSION))
    args = ["eval", "score", str(sub), "--bench", "qvhighlights", "--annotations", str(gt)]
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    # query 1's prediction is its second window: the first-window protocol gives IoU 0, the official R1 a hit
    assert data["lenient"]["qvhighlights"]["R1@0.5"] == pytest.approx(50.0)
    assert data["qvhighlights"]["brief"]["MR-full-R1@0.5"] == 100.0
    assert data["gt_window"] == "first" and data["num_multi_window_samples"] == 1
    assert data["protocol_label"].startswith("TimeLens protocol, first ground-truth window (1 of 2")
    text = CliRunner().invoke(cli, args).stdout
    assert "lenient (TimeLens protocol, first GT window):" in text
    assert "QVHighlights official metrics (MR R1 scores the best-matching GT window):" in text
