"""Grounding runs: files, resume after interruption, settings recorded, decode ahead of the model."""

from __future__ import annotations

import json
import threading
import time

import pytest

from vidspan.eval.grounding.run import RunError, run_grounding
from vidspan.eval.grounding.samples import Benchmark, GroundingSample
from vidspan.models import families
from vidspan.testing.mock import MockVideoModel
from vidspan.types import Clip
from vidspan.video import VideoReader


def make_benchmark(shared_videos, *, missing: bool = True) -> Benchmark:
    rows = [
        ("asl-eat", "a hand moves to the mouth", (0.0, 1.0)),
        ("asl-eat", "the hand goes down", (1.0, 1.5)),
        ("car-detection", "a car enters", (2.0, 8.0)),
        ("one-by-one-person-detection", "a person walks in", (25.0, 30.0)),
    ]
    if missing:
        rows.append(("not-here", "anything", (1.0, 2.0)))
    samples = tuple(
        GroundingSample(
            id=f"{v}#{i}", video=v, query=q, gt_spans=(gt,), subset="charades" if i % 2 else "qvh"
        )
        for i, (v, q, gt) in enumerate(rows)
    )
    paths = {
        "asl-eat": shared_videos / "asl-eat.mkv",
        "car-detection": shared_videos / "car-detection.mp4",
        "one-by-one-person-detection": shared_videos / "one-by-one-person-detection.mp4",
    }
    missing_videos = ("not-here",) if missing else ()
    annotations = str(shared_videos / "events.coarse.json")
    return Benchmark("test-bench", annotations, samples, str(shared_videos), paths, missing_videos)


ANSWERS = {
    "a hand moves to the mouth": "From 0.0 to 1.0.",  # exact: IoU 1
    "the hand goes down": "From 1.5 to 1.0.",  # backwards: IoU 0 (no swap), strict rejects
    "a car enters": "it enters at about 4 s to 8 s",  # lenient reads 4-8 (IoU 4/6), strict rejects
    "a person walks in": "From 24.6 to 30.4.",  # IoU 5/5.8 unrounded, 1.0 rounded to seconds
}


def reply(clip: Clip, prompt: str) -> str:
    for query, answer in ANSWERS.items():
        if f'"{query}"' in prompt:
            return answer
    return "no idea"


def test_run_writes_header_samples_metrics(shared_videos, tmp_path):
    model = MockVideoModel([reply], family=families.MARLIN)
    run = run_grounding(
        make_benchmark(shared_videos), model, tmp_path / "run", max_frames=16, window_seconds=200
    )
    header = json.loads((tmp_path / "run" / "header.json").read_text())
    assert header["benchmark"] == "test-bench" and header["model"] == "mock"
    assert header["settings"]["max_frames"] == 16 and header["settings"]["fps"] == 2.0
    assert header["round_to_seconds"] is False and header["finished_at"]
    assert header["versions"]["vidspan"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 5
    by_query = {r["query"]: r for r in lines}
    assert by_query["a hand moves to the mouth"]["iou"] == 1.0
    assert (
        by_query["the hand goes down"]["span"] == [1.5, 1.0] and by_query["the hand goes down"]["iou"] == 0.0
    )
    assert (
        by_query["a car enters"]["iou"] == pytest.approx(4 / 6)
        and by_query["a car enters"]["iou_strict"] == 0
    )
    assert by_query["a person walks in"]["iou"] == pytest.approx(5 / 5.8)
    assert by_query["anything"]["error"].startswith("video not-here is missing")
    m = run.metrics
    assert m["num_samples"] == 5 and m["num_scored"] == 4 and m["num_failed"] == 1
    assert m["missing_videos"] == ["not-here"]
    expected_miou = 100 * (1 + 0 + 4 / 6 + 5 / 5.8) / 4
    assert m["lenient"]["all"]["mIoU"] == pytest.approx(expected_miou)
    assert m["lenient"]["all"]["R1@0.5"] == pytest.approx(100 * 3 / 4)
    assert m["strict"]["all"]["num_unparsed"] == 2
    assert m["lenient"]["all"]["num_unparsed"] == 0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["lenient"] == m["lenient"]


def test_round_to_seconds_is_an_option_and_recorded(shared_videos, tmp_path):
    model = MockVideoModel([reply])
    bench = make_benchmark(shared_videos, missing=False)
    run = run_grounding(
        bench, model, tmp_path / "r", max_frames=16, window_seconds=200, round_to_seconds=True
    )
    lines = [json.loads(x) for x in (tmp_path / "r" / "samples.jsonl").read_text().splitlines()]
    assert {r["query"]: r["iou"] for r in lines}["a person walks in"] == 1.0
    assert run.header["round_to_seconds"] is True and run.metrics["round_to_seconds"] is True


def test_resume_after_interruption_redoes_nothing_finished(shared_videos, tmp_path):
    bench = make_benchmark(shared_videos, missing=False)
    first = MockVideoModel([reply])
    run_grounding(bench, first, tmp_path / "run", max_frames=16, window_seconds=200)
    path = tmp_path / "run" / "samples.jsonl"
    lines = path.read_text().splitlines()
    # an interruption: the last sample was half written, the one before it never started
    path.write_text("\n".join(lines[:2]) + "\n" + lines[3][:25])
    second = MockVideoModel([reply])
    run = run_grounding(bench, second, tmp_path / "run", max_frames=16, window_seconds=200)
    assert {c.prompt.split('"')[1] for c in second.history} == {"a car enters", "a person walks in"}
    assert run.metrics["num_scored"] == 4
    records = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(s.id for s in bench.samples)
    # nothing left to do: no model call at all
    third = MockVideoModel([reply])
    run_grounding(bench, third, tmp_path / "run", max_frames=16, window_seconds=200)
    assert third.history == []


def test_resume_refuses_other_settings(shared_videos, tmp_path):
    bench = make_benchmark(shared_videos, missing=False)
    run_grounding(
        bench, MockVideoModel([reply]), tmp_path / "run", max_frames=16, window_seconds=200, limit=1
    )
    with pytest.raises(RunError, match=r"other settings \(sampling\)"):
        run_grounding(
            bench, MockVideoModel([reply]), tmp_path / "run", max_frames=32, window_seconds=200, limit=1
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty and holds no vidspan run"):
        run_grounding(bench, MockVideoModel([reply]), tmp_path / "other", window_seconds=200, limit=1)


def test_resume_refuses_another_frame_count(shared_videos, tmp_path):
    """num_frames is part of the run's identity like every other sampling field (it was once left out)."""
    from vidspan.video import SamplingConfig

    bench = make_benchmark(shared_videos, missing=False)
    run = tmp_path / "run"
    run_grounding(bench, MockVideoModel([reply]), run, sampling=SamplingConfig(num_frames=8),
                  window_seconds=200, limit=1)  # fmt: skip
    with pytest.raises(RunError, match=r"other settings \(sampling\)"):
        run_grounding(bench, MockVideoModel([reply]), run, sampling=SamplingConfig(num_frames=16),
                      window_seconds=200, limit=1)  # fmt: skip
    header = json.loads((tmp_path / "run" / "header.json").read_text())
    assert header["identity"]["sampling"]["num_frames"] == 8


def test_model_errors_are_recorded_and_retried(shared_videos, tmp_path):
    bench = make_benchmark(shared_videos, missing=False)

    def broken(clip: Clip, prompt: str) -> str:
        raise RuntimeError("server on fire")

    run = run_grounding(bench, MockVideoModel([broken]), tmp_path / "run", max_frames=16, window_seconds=200)
    assert run.metrics["num_failed"] == 4 and "server on fire" in run.metrics["failed"][0]["error"]
    run = run_grounding(bench, MockVideoModel([reply]), tmp_path / "run", max_frames=16, window_seconds=200)
    assert run.metrics["num_failed"] == 0 and run.metrics["num_scored"] == 4


def test_next_video_is_decoded_while_the_model_works(shared_videos, tmp_path, monkeypatch):
    events: list[tuple[str, float]] = []
    lock = threading.Lock()
    real_sample = VideoReader.sample

    def spying_sample(self, *args, **kwargs):
        with lock:
            events.append((f"decode {self.path.stem}", time.monotonic()))
        return real_sample(self, *args, **kwargs)

    def slow(clip: Clip, prompt: str) -> str:
        with lock:
            events.append((f"generate {clip.video.path.rsplit('/', 1)[-1]}", time.monotonic()))
        time.sleep(0.4)
        return "From 0.0 to 1.0."

    monkeypatch.setattr(VideoReader, "sample", spying_sample)
    bench = make_benchmark(shared_videos, missing=False)
    run_grounding(bench, MockVideoModel([slow]), tmp_path / "run", max_frames=8, window_seconds=200)
    first_generate = next(t for name, t in events if name.startswith("generate asl-eat"))
    car_decode = next(t for name, t in events if name == "decode car-detection")
    assert car_decode < first_generate + 0.4  # car-detection was decoded while asl-eat was being answered
