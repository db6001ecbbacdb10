"""vidspan eval grounding / score / compare end to end: real files, real clips, a scripted model."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.models import register_plugin, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel
from vidspan.types import Clip

QVH = "qvhighlights"


def answer(clip: Clip, prompt: str) -> str:
    return "From 1.0 to 2.0." if "hand" in prompt else "no idea"


@pytest.fixture
def mock_model():
    model = MockVideoModel([answer], name="mock")
    plugin = MockPlugin(model)
    register_plugin(plugin)
    yield model
    unregister_plugin(plugin)


@pytest.fixture
def charades_timelens(tmp_path, shared_videos):
    """A TimeLens-format file over two real clips (linked into a video folder) and one missing video."""
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(shared_videos / "asl-eat.mkv", videos / "eat.mkv")
    os.symlink(shared_videos / "asl-walk.mkv", videos / "walk.mkv")
    data = {
        "eat": {"duration": 1.6, "spans": [[1, 2], [0, 1]], "queries": ["A hand  moves. ", "Nothing here."]},
        "walk": {"duration": 3.0, "spans": [[1, 2]], "queries": ["the hand walks"]},
        "gone": {"duration": 9.0, "spans": [[1, 2]], "queries": ["missing video"]},
    }
    annotations = tmp_path / "charades-timelens.json"
    annotations.write_text(json.dumps(data))
    return annotations, videos


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_grounding_run_then_score_then_compare(mock_model, charades_timelens, tmp_path):
    annotations, videos = charades_timelens
    run_dir = tmp_path / "run"
    result = invoke("eval", "grounding", "--bench", "charades-timelens", "--annotations", str(annotations),
                    "--videos", str(videos), "-m", "mock", "--out", str(run_dir), "--max-frames", "8",
                    "--no-progress", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 video(s) missing" in result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["num_samples"] == 4 and metrics["num_failed"] == 1
    lenient = metrics["lenient"]["charades"]
    assert lenient["num_samples"] == 3 and lenient["num_unparsed"] == 1
    assert lenient["R1@0.7"] == pytest.approx(200 / 3)  # two hand queries answered 1-2 exactly
    assert (run_dir / "report.md").exists() and (run_dir / "report.png").stat().st_size > 0

    result = invoke("eval", "score", str(run_dir), "--bench", "charades-timelens", "--annotations",
                    str(annotations), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rescored = json.loads(result.stdout)
    assert rescored["lenient"] == metrics["lenient"] and rescored["format"] == "vidspan-run"

    result = invoke("eval", "compare", str(run_dir), "--out", str(tmp_path / "board"))
    assert result.exit_code == 0, result.output
    assert "mock" in result.stdout and "TimeLens-8B" in result.stdout
    assert (tmp_path / "board.png").stat().st_size > 0


def test_score_timelens_prediction_file(charades_timelens, tmp_path):
    annotations, _ = charades_timelens
    preds = {
        "eat.mp4>>>A hand  moves>>>[1, 2]": {"answers": "The event happens in 1.0 - 2.0 seconds."},
        "eat.mp4>>>Nothing here>>>[0, 1]": {"timestamps": [[0.0, 0.5]]},
        "walk.mp4>>>the hand walks>>>[1, 2]": {"answers": "between 1 and 2"},
    }
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(preds))
    result = invoke("eval", "score", str(path), "--bench", "charades-timelens",
                    "--annotations", str(annotations), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["format"] == "timelens" and data["num_without_prediction"] == 1
    assert data["lenient"]["charades"]["mIoU"] == pytest.approx(100 * (1 + 0.5 + 1 + 0) / 4)
    assert data["strict"]["charades"]["mIoU"] == pytest.approx(100 * (1 + 0.5 + 0 + 0) / 4)


def test_score_reproduces_official_qvhighlights_numbers(shared_videos):
    qvh = shared_videos.parent / QVH
    result = invoke("eval", "score", str(qvh / "sample_val_preds.jsonl"), "--bench", QVH, "--annotations",
                    str(qvh / "highlight_val_release.jsonl"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    brief = json.loads(result.stdout)["qvhighlights"]["brief"]
    official = json.loads((qvh / "sample_val_preds_metrics_raw.json").read_text())["brief"]
    assert brief == official
    text = invoke("eval", "score", str(qvh / "sample_val_preds.jsonl"), "--bench", QVH, "--annotations",
                  str(qvh / "highlight_val_release.jsonl")).stdout  # fmt: skip
    assert "MR-full-R1@0.5: 53.94" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["eval", "grounding", "--bench", "charades", "--annotations", "{ann}", "--out", "{tmp}/r"],
            "Did you mean",
        ),
        (
            ["eval", "score", "{tmp}/nope.jsonl", "--bench", "qvhighlights", "--annotations", "{ann}"],
            "no such file",
        ),
        (
            [
                "eval",
                "grounding",
                "--bench",
                "charades-timelens",
                "--annotations",
                "{tmp}/x.json",
                "--out",
                "{tmp}/r",
            ],
            "x.json",
        ),
    ],
)
def test_bad_eval_input_is_one_line(charades_timelens, tmp_path, args, message):
    annotations, _ = charades_timelens
    args = [a.replace("{ann}", str(annotations)).replace("{tmp}", str(tmp_path)) for a in args]
    result = invoke(*args)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_charades_sta_text_format_with_durations(mock_model, tmp_path, shared_videos):
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(shared_videos / "asl-walk.mkv", videos / "AB12C.mkv")
    annotations = tmp_path / "charades_sta_test.txt"
    annotations.write_text("AB12C 1.0 2.0##person moves a hand.\nAB12C 0.0 1.5##person stands still.\n")
    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({"AB12C": 3.0}))
    result = invoke("eval", "grounding", "--bench", "charades-sta", "--annotations", str(annotations),
                    "--videos", str(videos), "--durations", str(durations), "-m", "mock",
                    "--out", str(tmp_path / "run"), "--max-frames", "8", "--no-progress",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    block = metrics["lenient"]["charades-sta"]
    assert block["num_samples"] == 2 and block["mIoU"] == pytest.approx(50.0)  # "hand" answered 1-2 exactly
    records = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert {r["duration"] for r in records} == {3.0}
