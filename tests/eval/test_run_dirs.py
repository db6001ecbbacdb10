"""Run directories that cannot lie: one RunDir for every run kind, refusing other settings and second writers.

Each refusal here was once silent: ``generate-captions`` resumed with another model and mixed both models'
captions in one file, and two processes on one grounding run both appended (20 lines for 10 samples).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vidspan.errors import RunError
from vidspan.eval.captions.generate import generate_captions
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.grounding.run import run_grounding
from vidspan.eval.grounding.samples import Benchmark, GroundingSample
from vidspan.eval.rundir import FORMAT_VERSION, RunDir, RunHeader
from vidspan.testing.mock import MockVideoModel

CAPTION = "Scene: A person at a desk.\nEvents:\n<0.0 - 1.0> A person raises a hand.\n"


def caption_bench(shared_videos: Path) -> CaptionBenchmark:
    samples = (CaptionSample(id="a", video="asl-eat.mkv", reference="A person eats.", subset="x"),)
    paths = {"asl-eat.mkv": shared_videos / "asl-eat.mkv"}
    return CaptionBenchmark("tiny", "tiny.jsonl", samples, str(shared_videos), paths)


def grounding_bench(shared_videos: Path) -> Benchmark:
    samples = tuple(
        GroundingSample(id=f"eat#{i}", video="asl-eat.mkv", query=f"a hand moves {i}", gt_spans=((0.0, 1.0),),
                        subset="charades", duration=1.566)
        for i in range(3)
    )  # fmt: skip
    return Benchmark("charades-timelens", "charades.json", samples, str(shared_videos),
                     {"asl-eat.mkv": shared_videos / "asl-eat.mkv"})  # fmt: skip


def test_generate_captions_refuses_another_model_in_the_same_folder(shared_videos, tmp_path):
    bench, out = caption_bench(shared_videos), tmp_path / "gen"
    first = generate_captions(bench, MockVideoModel([CAPTION], name="model-a"), out, max_frames=4)
    assert first["generated"] == 1
    with pytest.raises(RunError, match=r"holds a run made with other settings \(model\)"):
        generate_captions(bench, MockVideoModel([CAPTION], name="model-b"), out, max_frames=4)
    with pytest.raises(RunError, match=r"other settings \(sampling\)"):
        generate_captions(bench, MockVideoModel([CAPTION], name="model-a"), out, max_frames=8)
    lines = (out / "captions.jsonl").read_text().splitlines()
    assert len(lines) == 1  # nothing from model-b was appended
    again = generate_captions(bench, MockVideoModel([CAPTION], name="model-a"), out, max_frames=4)
    assert again["already_done"] == 1 and again["generated"] == 0


def test_every_run_kind_writes_the_same_typed_header(shared_videos, tmp_path):
    generate_captions(caption_bench(shared_videos), MockVideoModel([CAPTION]), tmp_path / "gen", max_frames=4)
    run_grounding(grounding_bench(shared_videos), MockVideoModel(["From 0.0 to 1.0."]), tmp_path / "ground",
                  max_frames=4)  # fmt: skip
    for directory, kind in ((tmp_path / "gen", "captions"), (tmp_path / "ground", "grounding")):
        raw = json.loads((directory / "header.json").read_text())
        assert list(raw)[:8] == list(RunHeader(kind, {}).to_dict())  # the shared fields, in file order
        header = RunHeader.from_dict(raw)
        assert header.kind == kind and header.format_version == FORMAT_VERSION
        assert header.status == "finished" and header.finished_at and header.started_at
        assert header.versions["vidspan"] and header.identity


def test_a_run_of_another_kind_is_refused(shared_videos, tmp_path):
    generate_captions(caption_bench(shared_videos), MockVideoModel([CAPTION]), tmp_path / "run", max_frames=4)
    with pytest.raises(RunError, match="holds a captions run, not a grounding run"):
        run_grounding(grounding_bench(shared_videos), MockVideoModel(), tmp_path / "run", max_frames=4)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from vidspan.eval.rundir import RunDir
    with RunDir.open(sys.argv[1], "grounding", {"x": 1}):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_a_second_process_on_the_same_run_is_refused_and_appends_nothing(shared_videos, tmp_path):
    bench, out = grounding_bench(shared_videos), tmp_path / "run"
    run_grounding(bench, MockVideoModel(["From 0.0 to 1.0."]), out, max_frames=4, limit=1)
    header = json.loads((out / "header.json").read_text())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.replace('{"x": 1}', repr(header["identity"])), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked", holder.communicate(timeout=30)
        with pytest.raises(
            RunError, match=rf"is being written by another vidspan process \(pid {holder.pid}\)"
        ):
            run_grounding(bench, MockVideoModel(["From 0.0 to 1.0."]), out, max_frames=4, limit=1)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 1
    # once the writer is gone the run resumes as usual
    deadline = time.monotonic() + 10
    while True:
        try:
            RunDir.open(out, "grounding", header["identity"]).close()
            break
        except RunError:
            assert time.monotonic() < deadline, "the lock was not released when its process died"
            time.sleep(0.1)


def test_the_lock_is_released_when_the_run_ends_or_fails(tmp_path):
    with RunDir.open(tmp_path / "r", "grounding", {"x": 1}) as run:
        with pytest.raises(RunError, match="being written by another vidspan process"):
            RunDir.open(tmp_path / "r", "grounding", {"x": 1})
        assert not run.resumed
    with RunDir.open(tmp_path / "r", "grounding", {"x": 1}) as again:
        assert again.resumed
    with pytest.raises(RunError, match=r"other settings \(x\)"):
        RunDir.open(tmp_path / "r", "grounding", {"x": 2})
    RunDir.open(tmp_path / "r", "grounding", {"x": 1}).close()  # the refused open left no lock behind
