"""Prediction files from other tools and vidspan runs, joined to samples (eval.grounding.predictions)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vidspan.eval.grounding.datasets import EvalFileNotFoundError, load_qvhighlights, load_timelens
from vidspan.eval.grounding.predictions import (
    Prediction,
    PredictionFormatError,
    detect_prediction_format,
    join_timelens_predictions,
    load_predictions,
    qvhighlights_submission_from_predictions,
    qvhighlights_submission_to_predictions,
    read_qvhighlights_submission,
    read_timelens_prediction_file,
    read_timelens_predictions,
    read_vidspan_run,
    write_qvhighlights_submission,
)
from vidspan.eval.grounding.samples import GroundingSample

QVH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "qvhighlights"
QVH_GT = QVH / "highlight_val_release.jsonl"
QVH_PREDS = QVH / "sample_val_preds.jsonl"

TIMELENS = {
    "3MSZA": {
        "duration": 31.0,
        "spans": [[25, 30], [1, 24], [0, 1]],
        "queries": [
            "A woman is repeatedly flipping the switch on the wall.",
            "  A woman   walks\tinto the room .  ",
            "the light turns on",
        ],
    },
    "v_abc": {"duration": 120.5, "spans": [[10.5, 20.25]], "queries": ["A man plays a drum."]},
}


@pytest.fixture
def samples(tmp_path) -> list[GroundingSample]:
    path = tmp_path / "charades-timelens.json"
    path.write_text(json.dumps(TIMELENS), encoding="utf-8")
    return load_timelens(path)


def key(video: str, query: str, gt: list) -> str:
    """A key exactly as TimeLens's inference script writes it."""
    return f"{video}>>>{query}>>>{gt}"


ENTRIES = {
    # `timestamps` wins over `answers`
    key("3MSZA.mp4", "A woman is repeatedly flipping the switch on the wall", [25, 30]): {
        "timestamps": [[24.0, 30.0], [1.0, 2.0]],
        "answers": "The event happens in 99 - 100 seconds.",
        "duration": 31.0,
    },
    # only `answers`; the GT written with floats
    key("3MSZA.mp4", "A woman walks into the room", [1.0, 24.0]): {
        "answers": "The event happens in 2.5 - 20.0 seconds.",
        "duration": 31.0,
    },
    # an answer that does not parse
    key("3MSZA.mp4", "the light turns on", [0, 1]): {"answers": "I cannot tell.", "duration": 31.0},
    # an unmatched key: the GT differs
    key("3MSZA.mp4", "the light turns on", [0, 2]): {"timestamps": [[0.0, 1.0]]},
}


def test_timelens_json_entries_join_by_video_query_and_gt(tmp_path, samples):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(ENTRIES), encoding="utf-8")
    preds, unmatched = join_timelens_predictions(read_timelens_prediction_file(path), samples)
    assert set(preds) == {"3MSZA#0", "3MSZA#1", "3MSZA#2"}  # v_abc#0 has no entry: the caller's unparsed
    first = preds["3MSZA#0"]
    assert first.span == (24.0, 30.0)
    assert first.spans == ((24.0, 30.0), (1.0, 2.0))
    assert first.raw == "The event happens in 99 - 100 seconds."
    second = preds["3MSZA#1"]
    assert (second.span, second.raw, second.format_ok) == (
        (2.5, 20.0),
        "The event happens in 2.5 - 20.0 seconds.",
        True,
    )
    assert preds["3MSZA#2"].span is None and preds["3MSZA#2"].raw == "I cannot tell."
    assert unmatched == (key("3MSZA.mp4", "the light turns on", [0, 2]),)


def test_read_timelens_predictions_logs_unmatched_keys(tmp_path, samples, caplog):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(ENTRIES), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="vidspan"):
        preds = read_timelens_predictions(path, samples)
    assert len(preds) == 3
    assert "1 of 4 prediction keys" in caplog.text and "[0, 2]" in caplog.text


def test_timelens_jsonl_merges_like_dict_update_so_later_keys_win(tmp_path, samples):
    k = key("3MSZA.mp4", "A woman is repeatedly flipping the switch on the wall", [25, 30])
    lines = [
        {k: {"timestamps": [[1.0, 2.0]]}},
        {key("v_abc.mp4", "A man plays a drum", [10.5, 20.25]): {"answers": "From 11 to 19."}},
        {k: {"timestamps": [[25.0, 30.0]], "answers": "The event happens in 25.0 - 30.0 seconds."}},
    ]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    entries = read_timelens_prediction_file(path)
    assert len(entries) == 2
    preds = read_timelens_predictions(path, samples)
    assert preds["3MSZA#0"].span == (25.0, 30.0)
    assert preds["v_abc#0"].span == (11.0, 19.0)
    assert preds["v_abc#0"].format_ok is False and preds["v_abc#0"].span_strict is None


def test_timelens_keys_tolerate_folders_no_extension_messy_queries_and_v_prefix(samples):
    entries = {
        key(
            "videos/charades/3MSZA.mp4", "  A woman is repeatedly flipping the switch on the wall. ", [25, 30]
        ): {"timestamps": [[25, 30]]},
        key("abc", "A man plays a drum", [10.5000000001, 20.25]): {"timestamps": [[10, 20]]},
        key("3MSZA.mp4", "the light turns on", "not a literal"): {"timestamps": [[0, 1]]},
        "no separators at all": {"timestamps": [[0, 1]]},
    }
    preds, unmatched = join_timelens_predictions(entries, samples)
    assert preds["3MSZA#0"].span == (25.0, 30.0)
    assert preds["v_abc#0"].span == (10.0, 20.0)
    assert len(unmatched) == 2


def test_timelens_answers_keep_reversed_spans_as_written(samples):
    entries = {
        key("3MSZA.mp4", "the light turns on", [0, 1]): {"answers": "The event happens in 9 - 3 seconds."}
    }
    preds, _ = join_timelens_predictions(entries, samples)
    assert preds["3MSZA#2"].span == (9.0, 3.0)  # scored as is (IoU 0), like the TimeLens scorer


def test_timelens_file_that_is_not_objects_is_rejected(tmp_path, samples):
    path = tmp_path / "preds.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PredictionFormatError, match=r"preds\.json: expected a JSON object or JSONL"):
        read_timelens_predictions(path, samples)
    path.write_text('{"a>>>b>>>[0, 1]": {}}\n[1]\n{"c": 1}\n', encoding="utf-8")
    with pytest.raises(PredictionFormatError, match=r"line 2: expected a JSON object"):
        read_timelens_prediction_file(path)
    with pytest.raises(EvalFileNotFoundError, match=r"Prediction file not found: .*absent\.json"):
        read_timelens_prediction_file(tmp_path / "absent.json")


# --------------------------------------------------------------------------------------------- QVHighlights


def test_read_the_real_moment_detr_submission_and_join_it():
    rows = read_qvhighlights_submission(QVH_PREDS)
    assert len(rows) == 1550
    assert all(len(r["pred_relevant_windows"]) == 10 for r in rows)
    samples = load_qvhighlights(QVH_GT)
    preds = qvhighlights_submission_to_predictions(rows, samples)
    assert len(preds) == 1550
    first = preds["2579"]
    assert first.span == (0.0, 70.0)
    assert first.spans[:2] == ((0.0, 70.0, 0.9986), (78.0, 146.0, 0.4138))
    assert len(first.saliency) == 75
    assert first.saliency[0] == pytest.approx(-0.2452392578125)


def test_qvhighlights_submission_round_trips_through_predictions(tmp_path):
    rows = read_qvhighlights_submission(QVH_PREDS)
    samples = load_qvhighlights(QVH_GT)
    preds = qvhighlights_submission_to_predictions(rows, samples)
    back = qvhighlights_submission_from_predictions(preds, samples)
    by_qid = {r["qid"]: r for r in rows}
    assert len(back) == 1550
    for row in back:
        original = by_qid[row["qid"]]
        assert row["pred_relevant_windows"] == original["pred_relevant_windows"]
        assert row["pred_saliency_scores"] == original["pred_saliency_scores"]
        assert row["vid"] == original["vid"]
    path = write_qvhighlights_submission(back, tmp_path / "sub.jsonl")
    assert read_qvhighlights_submission(path) == back


def test_single_span_predictions_become_a_submission_with_score_one(tmp_path):
    samples = load_qvhighlights(QVH_GT)[:3]
    preds = {
        samples[0].id: Prediction(samples[0].id, (10.0, 20.0), "From 10 to 20.", spans=((10.0, 20.0),)),
        samples[1].id: Prediction(samples[1].id, None, "no idea"),
    }  # samples[2] has no prediction at all
    rows = qvhighlights_submission_from_predictions(preds, samples)
    assert [r["qid"] for r in rows] == [s.qid for s in samples]
    assert [r["pred_relevant_windows"] for r in rows] == [[[10.0, 20.0, 1.0]], [], []]
    assert all("pred_saliency_scores" not in r for r in rows)
    assert rows[0]["query"] == samples[0].query and rows[0]["vid"] == samples[0].video
    path = write_qvhighlights_submission(rows, tmp_path / "sub.jsonl")
    assert len(read_qvhighlights_submission(path)) == 3


def test_submission_needs_qvhighlights_samples(samples):
    with pytest.raises(ValueError, match=r"Invalid sample for a QVHighlights submission: '3MSZA#0'"):
        qvhighlights_submission_from_predictions({}, samples)


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        (
            {"qid": 2, "pred_relevant_windows": [[0, 2]]},
            r"line 2: pred_relevant_windows\[0\] must be \[start, end, score\]",
        ),
        ({"qid": 1, "pred_relevant_windows": []}, r"line 2: qid 1 repeats line 1"),
        ({"qid": "2", "pred_relevant_windows": []}, r"line 2: 'qid' must be an integer"),
        ({"qid": 2}, r"line 2: 'pred_relevant_windows' must be a list"),
        (
            {"qid": 2, "pred_relevant_windows": [], "pred_saliency_scores": ["a"]},
            r"line 2: 'pred_saliency_scores'",
        ),
    ],
)
def test_qvhighlights_submission_validation_names_the_line(tmp_path, second_line, message):
    path = tmp_path / "sub.jsonl"
    first = {"qid": 1, "pred_relevant_windows": [[0, 2, 0.9]], "pred_saliency_scores": [0.1, 0.2]}
    path.write_text(json.dumps(first) + "\n" + json.dumps(second_line) + "\n", encoding="utf-8")
    with pytest.raises(PredictionFormatError, match=message):
        read_qvhighlights_submission(path)


# -------------------------------------------------------------------------------------------- vidspan runs


def run_record(sample: GroundingSample, span, raw="From 1 to 2.", **extra) -> dict:
    """One samples.jsonl line in the shape vidspan's runner writes."""
    return (
        sample.to_dict()
        | {
            "raw": raw,
            "span": span,
            "span_strict": span,
            "format_ok": True,
            "iou": 0.5,
            "error": None,
        }
        | extra
    )


def write_run(run_dir: Path, lines: list[str]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples.jsonl").write_text("".join(lines), encoding="utf-8")
    return run_dir


def test_read_vidspan_run_skips_a_truncated_last_line(tmp_path, samples, caplog):
    lines = [
        json.dumps(run_record(samples[0], [24.0, 30.0])) + "\n",
        json.dumps(run_record(samples[1], None, raw="no idea", span_strict=None, format_ok=False)) + "\n",
        json.dumps(run_record(samples[2], None, raw=None, error="VideoError: broken")) + "\n",
        json.dumps(run_record(samples[3], [1.0, 2.0]))[:40],  # the crash
    ]
    run = write_run(tmp_path / "run", lines)
    with caplog.at_level(logging.WARNING, logger="vidspan"):
        preds = read_vidspan_run(run)
    assert "line 4: skipping a truncated last line" in caplog.text
    assert list(preds) == ["3MSZA#0", "3MSZA#1", "3MSZA#2"]
    assert preds["3MSZA#0"] == Prediction(
        "3MSZA#0",
        (24.0, 30.0),
        "From 1 to 2.",
        spans=((24.0, 30.0),),
        span_strict=(24.0, 30.0),
        format_ok=True,
    )
    assert (preds["3MSZA#1"].span, preds["3MSZA#1"].raw, preds["3MSZA#1"].format_ok) == (
        None,
        "no idea",
        False,
    )
    assert preds["3MSZA#2"].error == "VideoError: broken" and preds["3MSZA#2"].raw is None
    assert read_vidspan_run(run / "samples.jsonl") == preds  # the file itself works too


def test_read_vidspan_run_rejects_a_broken_middle_line_and_lets_later_ids_win(tmp_path, samples):
    good = json.dumps(run_record(samples[0], [1.0, 2.0])) + "\n"
    run = write_run(tmp_path / "bad", [good, "{torn\n", good])
    with pytest.raises(PredictionFormatError, match=r"samples\.jsonl, line 2: not valid JSON"):
        read_vidspan_run(run)
    run = write_run(tmp_path / "badspan", [json.dumps(run_record(samples[0], [1.0])) + "\n"])
    with pytest.raises(PredictionFormatError, match=r"line 1: 'span' and 'span_strict' must be"):
        read_vidspan_run(run)
    later = json.dumps(run_record(samples[0], [5.0, 6.0])) + "\n"
    assert read_vidspan_run(write_run(tmp_path / "resumed", [good, later]))["3MSZA#0"].span == (5.0, 6.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalFileNotFoundError, match=r"empty/samples\.jsonl"):
        read_vidspan_run(tmp_path / "empty")


# ----------------------------------------------------------------------------------- detection and dispatch


def test_detect_prediction_format(tmp_path, samples):
    run = write_run(tmp_path / "run", [json.dumps(run_record(samples[0], [1.0, 2.0])) + "\n"])
    assert detect_prediction_format(run) == "vidspan-run"
    assert detect_prediction_format(run / "samples.jsonl") == "vidspan-run"
    assert detect_prediction_format(QVH_PREDS) == "qvhighlights"
    as_json = tmp_path / "preds.json"
    as_json.write_text(json.dumps(ENTRIES), encoding="utf-8")
    assert detect_prediction_format(as_json) == "timelens"
    as_jsonl = tmp_path / "preds.jsonl"
    as_jsonl.write_text("".join(json.dumps({k: v}) + "\n" for k, v in ENTRIES.items()), encoding="utf-8")
    assert detect_prediction_format(as_jsonl) == "timelens"


def test_detect_prediction_format_rejects_unknown_inputs(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    with pytest.raises(
        PredictionFormatError, match=r"Cannot tell the format of prediction file .*other\.json"
    ):
        detect_prediction_format(other)
    other.write_text("", encoding="utf-8")
    with pytest.raises(PredictionFormatError, match="Cannot tell the format"):
        detect_prediction_format(other)
    (tmp_path / "folder").mkdir()
    with pytest.raises(PredictionFormatError, match=r"folder is a folder without samples\.jsonl"):
        detect_prediction_format(tmp_path / "folder")
    with pytest.raises(EvalFileNotFoundError, match="Prediction file not found"):
        detect_prediction_format(tmp_path / "absent.jsonl")


def test_load_predictions_dispatches_on_the_detected_format(tmp_path, samples):
    as_json = tmp_path / "preds.json"
    as_json.write_text(json.dumps(ENTRIES), encoding="utf-8")
    assert set(load_predictions(as_json, samples)) == {"3MSZA#0", "3MSZA#1", "3MSZA#2"}
    qvh = load_qvhighlights(QVH_GT)
    assert len(load_predictions(QVH_PREDS, qvh)) == 1550
    stray = GroundingSample("other#0", "other", "q", ((0.0, 1.0),), "charades")
    lines = [json.dumps(run_record(s, [1.0, 2.0])) + "\n" for s in (samples[0], stray)]
    run = write_run(tmp_path / "run", lines)
    assert set(load_predictions(run, samples)) == {"3MSZA#0"}  # run samples outside the benchmark left out
    with pytest.raises(ValueError, match=r"Invalid prediction_format: 'csv'"):
        load_predictions(run, samples, prediction_format="csv")
