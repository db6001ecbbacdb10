"""Grounding runs on a real local Ray cluster (started on loopback): the same run directory as one process,
a bad video fails its samples only, and a SIGKILLed model actor loses and doubles nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray")

from support.ray_jobs import KillableModel, grounding_reply  # noqa: E402
from vidspan.eval.grounding.run import run_grounding  # noqa: E402
from vidspan.eval.grounding.samples import Benchmark, GroundingSample  # noqa: E402
from vidspan.models import families  # noqa: E402
from vidspan.scale import RayOptions  # noqa: E402

LIGHT = {"num_cpus": 0.5, "decode_cpus": 0.5}
from vidspan.testing.mock import MockVideoModel  # noqa: E402


def benchmark(shared_videos, broken: Path | None = None) -> Benchmark:
    rows = [
        ("asl-eat", "a hand moves to the mouth", (0.0, 1.0)),
        ("asl-eat", "the hand goes down", (1.0, 1.5)),
        ("car-detection", "a car enters", (2.0, 8.0)),
        ("one-by-one-person-detection", "a person walks in", (25.0, 30.0)),
    ]
    paths = {
        "asl-eat": shared_videos / "asl-eat.mkv",
        "car-detection": shared_videos / "car-detection.mp4",
        "one-by-one-person-detection": shared_videos / "one-by-one-person-detection.mp4",
    }
    if broken is not None:
        rows.append(("broken", "anything", (1.0, 2.0)))
        paths["broken"] = broken
    samples = tuple(
        GroundingSample(id=f"{v}#{i}", video=v, query=q, gt_spans=(gt,), subset="qvh" if i % 2 else "cha")
        for i, (v, q, gt) in enumerate(rows)
    )
    return Benchmark("test-bench", str(shared_videos / "events.coarse.json"), samples, str(shared_videos),
                     {k: str(v) for k, v in paths.items()}, ())  # fmt: skip


def lines(run_dir: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows}), "a sample was written twice"
    return {r["id"]: r for r in rows}


FAST = {"max_frames": 8, "max_pixels": 64 * 64, "window_seconds": 200}


def test_ray_run_equals_single_process_and_resumes(ray_cluster, shared_videos, tmp_path):
    model = MockVideoModel([grounding_reply], family=families.MARLIN)
    bench = benchmark(shared_videos)
    one = run_grounding(bench, model, tmp_path / "one", **FAST)
    ray = run_grounding(bench, model, tmp_path / "ray", ray=RayOptions(workers=2, **LIGHT), **FAST)
    assert ray.metrics == one.metrics
    assert lines(tmp_path / "ray") == lines(tmp_path / "one")
    assert one.metrics["num_scored"] == 4 and one.metrics["lenient"]["all"]["mIoU"] > 0

    # an interrupted Ray run (its last line lost) resumes on Ray: only the missing sample runs again
    samples = tmp_path / "ray" / "samples.jsonl"
    kept = samples.read_text().splitlines()[:-1]
    samples.write_text("\n".join(kept) + "\n")
    again = run_grounding(bench, model, tmp_path / "ray", ray=RayOptions(workers=1, **LIGHT), **FAST)
    assert again.metrics == one.metrics and lines(tmp_path / "ray") == lines(tmp_path / "one")


def test_bad_video_fails_its_samples_not_the_job(ray_cluster, shared_videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    model = MockVideoModel([grounding_reply], family=families.MARLIN)
    run = run_grounding(benchmark(shared_videos, broken), model, tmp_path / "run",
                        ray=RayOptions(workers=2, **LIGHT), **FAST)  # fmt: skip
    rows = lines(tmp_path / "run")
    assert rows["broken#4"]["error"] and "broken.mp4" in rows["broken#4"]["error"]
    assert run.metrics["num_scored"] == 4 and run.metrics["num_failed"] == 1
    assert all(r["error"] is None for k, r in rows.items() if k != "broken#4")


def test_sigkilled_actor_is_restarted_and_nothing_is_lost_or_doubled(ray_cluster, shared_videos, tmp_path):
    marker = tmp_path / "killed.pid"
    model = KillableModel(grounding_reply, "car-detection", str(marker), family=families.MARLIN)
    bench = benchmark(shared_videos)
    run = run_grounding(bench, model, tmp_path / "run", ray=RayOptions(workers=2, **LIGHT), **FAST)
    assert marker.exists(), "the actor was never killed"
    reference = run_grounding(bench, MockVideoModel([grounding_reply]), tmp_path / "one", **FAST)
    assert lines(tmp_path / "run") == lines(tmp_path / "one")
    assert run.metrics == reference.metrics
