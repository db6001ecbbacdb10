"""``vidspan eval points | counts | tracks``: loaders, hand-computed metrics, resumable runs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from support.moving import Motion, molmo2_reply, moving_clip
from vidspan.cli.main import cli
from vidspan.errors import BenchmarkFormatError
from vidspan.eval.points.datasets import load_burst_vc, load_video_count, load_video_points, load_video_track
from vidspan.eval.points.run import report, run_points_eval, score_samples
from vidspan.models import families
from vidspan.points.masks import encode_rle
from vidspan.testing.mock import MockPlugin, MockVideoModel

SMALL = {"fps": 2.0, "max_frames": 8, "max_pixels": 96 * 160, "min_pixels": 32 * 32}
MOTION = Motion()


def square_mask(t: float, motion: Motion = MOTION) -> np.ndarray:
    """The true mask of the square at ``t`` (stored = displayed: no rotation)."""
    mask = np.zeros((motion.height, motion.width), bool)
    x0, y0 = round(motion.x0 + motion.vx * t), round(motion.y0)
    mask[y0 : y0 + motion.size, x0 : x0 + motion.size] = True
    return mask


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def points_row(video: str = "plain.mp4", t: float = 1.0) -> dict:
    x, y = MOTION.centre(t)
    return {"video_id": video, "label": "red square", "width": 160, "height": 96, "video_duration": 4.0,
            "two_fps_timestamps": [t], "points": [{"x": x, "y": y}],
            "masks": [[{"frame_id": k, "rle": encode_rle(square_mask(k / 2))}
                       for k in range(8)]]}  # fmt: skip


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("where-videos")
    moving_clip(root / "plain.mp4", MOTION)
    return root


# -- loaders --------------------------------------------------------------------------------------------


def test_point_rows_load_masks_at_two_fps(tmp_path) -> None:
    (sample,) = load_video_points(write_jsonl(tmp_path / "p.jsonl", [points_row()]))
    assert sample.task == "point" and sample.points == ((1.0, *MOTION.centre(1.0)),)
    assert sorted(sample.masks[0]) == [k / 2 for k in range(8)]


def test_count_and_burst_rows_keep_the_clip_span_and_subset(tmp_path) -> None:
    (count,) = load_video_count(write_jsonl(tmp_path / "c.jsonl", [
        {"video_id": "a.mp4", "label": "cars", "count": 3, "category": "object", "clip_start": 2.0,
         "clip_end": 9.5, "question": 'How many "cars" are there in the video?'}]))  # fmt: skip
    assert (count.count, count.span, count.subset) == (3, (2.0, 9.5), "object")
    (burst,) = load_burst_vc(write_jsonl(tmp_path / "b.jsonl", [
        {"subset": "burst", "video_name": "v1", "dataset": "YFCC100M", "category": "Person", "count": 2,
         "timestamps": [0.5], "video_duration": 30.0},
        {"subset": "ovis", "video_name": "skip", "category": "x", "count": 1, "timestamps": [0.0],
         "video_duration": 3.0}]))  # fmt: skip
    assert (burst.video, burst.label, burst.subset) == ("YFCC100M/v1", "person", "YFCC100M")
    assert burst.question == 'How many "person" are there in the video?'


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"label": "x", "count": 1}, "missing 'video_id' or 'video'"),
        ({"video_id": "a", "label": "x", "count": -1}, "count must be an integer >= 0"),
        ({"video_id": "a", "label": "x", "count": 1, "clip_start": 5, "clip_end": 2}, "must be after"),
    ],
)
def test_bad_rows_name_the_file_line_and_field(tmp_path, row, message) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [row])
    with pytest.raises(BenchmarkFormatError, match=message) as caught:
        load_video_count(path)
    assert "bad.jsonl line 1" in str(caught.value)


# -- hand-computed metrics ---------------------------------------------------------------------------------


def test_pointing_scores_snapped_and_exact_by_hand(tmp_path) -> None:
    rows = [points_row("a.mp4"), points_row("b.mp4")]
    samples = load_video_points(write_jsonl(tmp_path / "p.jsonl", rows))
    x, y = MOTION.centre(1.0)
    records = {
        samples[0].id: {"points": [[1.0, x, y]]},  # at an annotated time, inside: P = R = F1 = 1
        samples[1].id: {"points": [[1.1, x + 3, y], [3.9, 150.0, 5.0]]},  # 1.1 s is no key; 2 predicted
    }
    result = score_samples("point", samples, records, tolerance=0.25)
    # b, snapped: the matched point (1.1 s → the 1.0 s mask) is inside: P = 1/2, R = 1, F1 = 2/3
    assert result["precision"] == pytest.approx(100 * (1 + 0.5) / 2)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    # exact keys (upstream): b scores 0
    assert result["f1_exact"] == pytest.approx(50.0) and result["recall_exact"] == pytest.approx(50.0)
    assert result["valid"] == 100.0 and result["failed"] == 0


def test_counting_scores_bins_and_subsets_by_hand(tmp_path) -> None:
    truths = [(0, "object"), (3, "object"), (12, "animal"), (30, "animal")]
    rows = [{"video_id": f"v{i}", "label": "x", "count": n, "category": c} for i, (n, c) in enumerate(truths)]
    samples = load_video_count(write_jsonl(tmp_path / "c.jsonl", rows))
    predicted = [0, 4, 12, None]  # exact, close (|1| <= 1), exact, invalid
    records = {s.id: {"count": c} for s, c in zip(samples, predicted, strict=True)}
    result = score_samples("count", samples, records)
    assert (result["correct"], result["close"], result["valid"]) == (50.0, 75.0, 75.0)
    assert result["correct_0_5"] == 50.0 and result["correct_10_15"] == 100.0
    assert result["correct_25_31"] == 0.0
    assert result["acc_object"] == 50.0 and result["acc_animal"] == 50.0
    assert "correct_5_10" not in result


def test_tracking_frame_f1_by_hand(tmp_path) -> None:
    frames = [encode_rle(square_mask(f / 10)) for f in range(40)]
    rows = [{"id": "t1", "exp": "red square", "w": 160, "h": 96, "fps": 10, "clip": "plain",
             "masks": [{"object_id": 7, "masks": frames}]}]  # fmt: skip
    (sample,) = load_video_track(write_jsonl(tmp_path / "t.jsonl", rows))
    assert sample.video == "plain.mp4"
    inside = [[t, *MOTION.centre(t)] for t in (0.0, 1.0, 2.0)]
    records = {"t1": {"tracks": {"1": [*inside, [3.0, 2.0, 2.0]]}}}  # the last point misses its mask
    result = score_samples("track", [sample], records)
    # GT points once a second at frames 0, 10, 20, 30 (mask centroids); 3 frames hit, 1 misses
    assert result["f1"] == pytest.approx(75.0) and result["precision"] == pytest.approx(75.0)
    assert "j_and_f" not in result


# -- runs ---------------------------------------------------------------------------------------------------


def test_a_pointing_run_scores_a_perfect_pointer_and_resumes(tmp_path, videos) -> None:
    rows = [points_row("plain.mp4"), points_row("missing.mp4")]
    annotations = write_jsonl(tmp_path / "p.jsonl", rows)
    vm = MockVideoModel([molmo2_reply], family=families.MOLMO2)
    run = run_points_eval("molmo2-video-points", annotations, videos, vm, tmp_path / "run", **SMALL)
    assert vm.history[0].prompt.startswith("How many")  # Molmo2's eval asks the count question
    assert run.metrics["failed"] == 1 and run.metrics["missing_videos"] == ["missing.mp4"]
    assert run.metrics["recall"] == 50.0  # the one video present: its square is found
    asked = len(vm.history)
    again = run_points_eval("molmo2-video-points", annotations, videos, vm, tmp_path / "run", **SMALL)
    assert len(vm.history) == asked  # the finished sample is not asked again
    assert again.metrics["recall"] == 50.0
    assert "Molmo2 (paper) | " in (tmp_path / "run" / "report.md").read_text()


def test_a_counting_run_through_the_cli(tmp_path, videos) -> None:
    annotations = write_jsonl(tmp_path / "c.jsonl", [
        {"video_id": "plain.mp4", "label": "red square", "count": 1, "category": "object",
         "question": 'How many "red square" are there in the video?'}])  # fmt: skip
    vm = MockVideoModel([molmo2_reply], family=families.MOLMO2, name="molmo-cli")
    from vidspan.models.registry import plugin_manager

    plugin = MockPlugin(vm)
    plugin_manager().register(plugin)
    try:
        result = CliRunner().invoke(cli, ["eval", "counts", "--annotations", str(annotations), "--videos",
                                          str(videos), "-m", "molmo-cli", "--out", str(tmp_path / "run"),
                                          "--fps", "2", "--max-frames", "8", "--max-pixels", "15360",
                                          "--no-progress", "--json"])  # fmt: skip
    finally:
        plugin_manager().unregister(plugin)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["correct"] == 100.0 and metrics["acc_object"] == 100.0


def test_report_puts_the_run_beside_the_reference_rows() -> None:
    text = report({"task": "track", "model": "m", "benchmark": "b", "samples": 2, "failed": 0,
                   "precision": 50.0, "recall": 40.0, "f1": 44.4,
                   "reference": [{"model": "Molmo2 (paper)", "j_and_f": 56.2}]})  # fmt: skip
    assert "| m (b, this run) | 50.0 | 40.0 | 44.4 |" in text and "| Molmo2 (paper) |" in text
