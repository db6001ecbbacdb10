"""``vidspan train data`` end to end on the shared clips' hand labels: files, splits, bad rows, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli


@pytest.fixture
def labels(shared_videos, tmp_path):
    coarse = json.loads((shared_videos / "events.coarse.json").read_text())["videos"]
    rows = [{"video": name, "start": e["start"], "end": e["end"], "text": e["label"]}
            for name, video in coarse.items() for e in video.get("events", [])]  # fmt: skip
    rows.append({"video": "car-detection.mp4", "start": 5, "end": 500, "text": "past the end"})
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, len(rows)


def test_train_data_writes_every_format_split_by_video(labels, shared_videos, tmp_path):
    datasets = pytest.importorskip("datasets")
    path, n = labels
    out = tmp_path / "data"
    result = CliRunner().invoke(cli, ["train", "data", "--jsonl", str(path), "--videos", str(shared_videos),
                                      "--out", str(out), "--split", "train=0.7,val=0.3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bad_rows"] == 1 and "span ends after the video" in result.stderr
    counts = {name: s["examples"] for name, s in summary["splits"].items()}
    assert sum(counts.values()) == n - 1
    videos = {}
    for name in counts:
        rows = [json.loads(line) for line in (out / f"{name}.trl.jsonl").read_text().splitlines()]
        assert len(rows) == counts[name]
        videos[name] = {r["video"] for r in rows}
        swift = (out / f"{name}.swift.jsonl").read_text().splitlines()
        assert len(swift) == counts[name]
    assert not videos["train"] & videos["val"]
    loaded = datasets.load_from_disk(str(out / "hf"))
    assert {name: len(loaded[name]) for name in loaded} == {k: v for k, v in counts.items() if v}
    assert json.loads((out / "bad_rows.jsonl").read_text())["reason"].startswith("span ends after the video")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "nope"], "Unknown family 'nope'"),
        (["--split", "train"], "Invalid split part 'train'"),
        (["--format", "csv"], "Invalid formats: ['csv']"),
    ],
)
def test_bad_options_are_one_line(labels, shared_videos, tmp_path, args, message):
    path, _ = labels
    result = CliRunner().invoke(cli, ["train", "data", "--jsonl", str(path), "--videos", str(shared_videos),
                                      "--out", str(tmp_path / "o"), *args])  # fmt: skip
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_train_sft_then_grpo_from_the_cli(tiny_model_dirs, square_clips, tmp_path):
    pytest.importorskip("trl")
    from support.squares import QUERY

    labels = tmp_path / "squares.jsonl"
    labels.write_text("".join(json.dumps({"video": str(p), "start": s, "end": e, "text": QUERY}) + "\n"
                              for p, s, e in square_clips))  # fmt: skip
    runner = CliRunner()
    made = runner.invoke(cli, ["train", "data", "--jsonl", str(labels), "--out", str(tmp_path / "d"),
                               "--split", "train=1", "--format", "trl"])  # fmt: skip
    assert made.exit_code == 0, made.output
    frames = ["--fps", "2", "--max-frames", "8", "--max-pixels", str(64 * 64)]
    data, base = str(tmp_path / "d" / "train.trl.jsonl"), str(tiny_model_dirs["marlin"])
    config = tmp_path / "sft.yaml"
    config.write_text("lr: 3.0e-3\nmax-steps: 4\nsave_steps: 2\n")
    sft = runner.invoke(cli, ["train", "sft", data, "-m", base, "--out", str(tmp_path / "sft"),
                              "--config", str(config), *frames])  # fmt: skip
    assert sft.exit_code == 0, sft.output
    assert len(sft.stdout.strip().splitlines()) == 1  # stdout: the result only (TRL's printer is off)
    checkpoint = json.loads(sft.stdout)["checkpoint"]
    assert "[4/4] sft: loss" in sft.stderr  # progress on stderr
    header = json.loads((tmp_path / "sft" / "header.json").read_text())
    assert header["identity"]["learning_rate"] == 3e-3 and header["identity"]["max_steps"] == 4
    assert {"trl", "torch", "transformers"} <= set(header["versions"])
    grpo = runner.invoke(cli, ["train", "grpo", data, "-m", checkpoint,
                               "--out", str(tmp_path / "grpo"), "--max-steps", "1", "--num-generations", "2",
                               *frames])  # fmt: skip
    assert grpo.exit_code == 0, grpo.output
    assert "[1/1] grpo: mean reward" in grpo.stderr
    pairs_file = str(tmp_path / "pairs.jsonl")
    pairs = runner.invoke(cli, ["train", "pairs", data, "-m", checkpoint, "--out", pairs_file,
                                "--num-samples", "3", *frames])  # fmt: skip
    assert pairs.exit_code == 0, pairs.output
    counts = json.loads(pairs.stdout.strip().splitlines()[-1])
    assert counts["pairs"] + counts["ties"] + counts["all_failed"] == len(square_clips)
    if counts["pairs"]:
        simpo = runner.invoke(cli, ["train", "simpo", pairs_file, "-m", checkpoint, "--out",
                                    str(tmp_path / "simpo"), "--max-steps", "2", *frames])  # fmt: skip
        assert simpo.exit_code == 0, simpo.output
    again = runner.invoke(cli, ["train", "sft", data, "-m", base, "--out", str(tmp_path / "sft"),
                                "--max-steps", "5", *frames])  # fmt: skip
    assert again.exit_code == 1 and "holds a run made with other settings" in again.output


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("lr: [1, 2\n", "bad.yaml", "is not valid YAML"),
        ('{"lr": 1e-3, "warmup": 3}', "bad.json", "unknown option(s) warmup"),
        ("[1, 2]", "list.json", "must hold a mapping"),
    ],
)
def test_a_bad_config_file_is_one_clear_line(text, name, message, tmp_path):
    config = tmp_path / name
    config.write_text(text)
    data = tmp_path / "train.jsonl"
    data.write_text("")
    result = CliRunner().invoke(cli, ["train", "sft", str(data), "-m", str(tmp_path), "--out",
                                      str(tmp_path / "out"), "--config", str(config)])  # fmt: skip
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
