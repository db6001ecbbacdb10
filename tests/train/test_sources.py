"""Training examples from real labels: the shared clips' hand labels as plain JSONL, and a benchmark file."""

from __future__ import annotations

import json

from vidspan.eval.grounding.datasets import load_benchmark
from vidspan.models import families
from vidspan.parse import parse_span
from vidspan.train.data import TrainExample
from vidspan.train.sources import examples_from_benchmark, examples_from_jsonl


def test_hand_labels_become_marlin_examples_and_bad_rows_say_why(shared_videos, tmp_path):
    coarse = json.loads((shared_videos / "events.coarse.json").read_text())["videos"]
    names = ("car-detection.mp4", "bottle-detection.mp4")
    rows = [{"video": name, "start": e["start"], "end": e["end"], "text": e["label"]}
            for name in names for e in coarse[name]["events"]]  # fmt: skip
    rows.append({"video": "car-detection.mp4", "start": 10, "end": 999, "text": "past the end"})
    rows.append({"video": "gone.mp4", "start": 1, "end": 2, "text": "no file"})
    rows.append({"video": "car-detection.mp4", "start": "3", "end": 4, "text": "a string time"})
    lines = [json.dumps(r) for r in rows] + ["{not json", json.dumps({"video": "car-detection.mp4"})]
    source = tmp_path / "labels.jsonl"
    source.write_text("\n".join(lines) + "\n")
    examples, bad = examples_from_jsonl(source, families.MARLIN, videos=shared_videos)
    assert len(examples) == len(rows) - 3
    for example in examples:
        assert isinstance(example, TrainExample) and 0 <= example.start < example.end <= example.duration
        assert parse_span(example.answer, strict=True).span.to_tuple() == (example.start, example.end)
    reasons = sorted(b.reason.split(" (")[0].split(":")[0] for b in bad)
    assert any(r.startswith("span ends after the video") for r in reasons)
    assert any("no such file" in b.reason for b in bad)
    assert any("not a finite number" in b.reason for b in bad)
    assert any(b.reason.startswith(f"line {len(rows) + 1} is not JSON") for b in bad)
    assert any(b.reason == f"line {len(rows) + 2} lacks start, end, text" for b in bad)


def test_a_benchmark_file_becomes_timelens_examples(shared_videos, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "walk.mkv").symlink_to(shared_videos / "asl-walk.mkv")
    annotations = tmp_path / "charades-timelens.json"
    annotations.write_text(json.dumps({
        "walk": {"duration": 3.0, "spans": [[0.5, 1.5], [1.0, 9.0]], "queries": ["a hand moves", "too long"]},
        "gone": {"duration": 3.0, "spans": [[0, 1]], "queries": ["missing video"]},
    }))  # fmt: skip
    bench = load_benchmark("charades-timelens", annotations, videos)
    examples, bad = examples_from_benchmark(bench, families.TIMELENS)
    assert [e.answer for e in examples] == ["The event happens in 0.5 - 1.5 seconds."]
    assert examples[0].prompt == families.TIMELENS.render_find_prompt("a hand moves")
    assert sorted(b.reason.split(" (")[0] for b in bad) == ["span ends after the video", "video not found"]


def test_a_generate_captions_run_becomes_caption_and_find_examples(shared_videos, tmp_path):
    from vidspan.eval.captions.generate import generate_captions
    from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
    from vidspan.testing.mock import MockVideoModel
    from vidspan.train.sources import examples_from_caption_run

    reply = "Scene: A person at a desk.\nEvents:\n<0.0 - 0.8> A hand rises.\n<0.8 - 1.5> It lowers."
    samples = (CaptionSample(id="a", video="asl-eat.mkv", reference="r", subset="x"),
               CaptionSample(id="b", video="asl-walk.mkv", reference="r", subset="x"))  # fmt: skip
    paths = {s.video: shared_videos / s.video for s in samples}
    bench = CaptionBenchmark("tiny", "tiny.jsonl", samples, str(shared_videos), paths)
    generate_captions(bench, MockVideoModel([reply, "no events at all"]), tmp_path / "gen", max_frames=4)
    examples, bad = examples_from_caption_run(tmp_path / "gen", families.MARLIN, shared_videos)
    assert [e.task for e in examples] == ["caption", "find", "find"]
    assert (
        examples[0].answer
        == "Scene: A person at a desk.\nEvents:\n<0.0 - 0.8> A hand rises.\n<0.8 - 1.5> It lowers."
    )
    assert [b.reason for b in bad] == ["the caption has no scene or no timed events"]


def test_dream1k_becomes_reward_only_caption_rows_that_sft_refuses(shared_videos, tmp_path):
    from pathlib import Path

    from vidspan.eval.captions.datasets import load_caption_benchmark
    from vidspan.train.data import write_trl_jsonl
    from vidspan.train.sources import examples_from_caption_benchmark

    dream = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dream1k" / "DREAM-1k.jsonl"
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "1.mp4").symlink_to(shared_videos / "car-detection.mp4")
    (videos / "2.mp4").write_bytes(b"not a video")
    bench = load_caption_benchmark("dream1k", dream, videos)
    examples, bad = examples_from_caption_benchmark(bench, families.MARLIN)
    assert len(examples) == 1 and len(bad) == 999
    (row,) = examples
    assert row.task == "caption" and row.answer == "" and row.prompt == families.MARLIN.caption_prompt
    assert row.reference == bench.samples[0].reference and row.reference.startswith("A character emerges")
    assert sum(b.reason == "video not found" for b in bad) == 998
    assert next(b for b in bad if b.id == "2").reason != "video not found"  # unreadable: probe's reason
    line = json.loads(write_trl_jsonl(examples, tmp_path / "dream.jsonl").read_text())
    assert line["reference"] == row.reference and line["task"] == "caption"
    import pytest

    pytest.importorskip("trl")
    from vidspan.train.sft import train_sft

    with pytest.raises(ValueError, match="no row has an answer"):
        train_sft(tmp_path / "dream.jsonl", tmp_path / "no-model", tmp_path / "sft")
