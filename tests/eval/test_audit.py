"""Ground-truth audit: real frames from the shared clips, a scripted judge with crafted JSON replies."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable

import pytest
from PIL import Image

from support.fake_judges import FakeJudgeServer
from vidspan.eval.captions.audit import audit_references, load_audit, validate_audit
from vidspan.eval.captions.judge_frames import video_frames
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.grounding.run import RunError
from vidspan.judge.base import JudgeError, JudgeRequest
from vidspan.judge.gemini_judge import GeminiJudge
from vidspan.testing.judges import ScriptedJudge
from vidspan.video import SamplingConfig, sample_clip

FRAMES = {"num_frames": 2, "max_pixels": 64 * 64}


def scripted_judge(respond: Callable[[JudgeRequest], str]) -> ScriptedJudge:
    """The real judge with only its network call answered by ``respond``."""
    return ScriptedJudge(respond, model="script-1", prompt_tokens=10, completion_tokens=5)


def finding(severity: str = "minor") -> dict:
    return {"claim": "eats an apple", "problem": "it is bread", "video_shows": "bread", "severity": severity}


def reply(score: float, findings: list | None = None, events: list[str] | None = None) -> str:
    body = {"observations": "a person signs", "findings": findings or []}
    if events is not None:
        body["events"] = [{"index": i, "reason": "seen", "verdict": v} for i, v in enumerate(events, 1)]
    return json.dumps(body | {"score_reason": "because", "score": score})


# what the judge says about each reference, per run (sample 0, 1, 2); None = garbage
SCRIPT = {
    "a": [reply(9), reply(10), reply(9)],
    "b": [reply(7, [finding()]), reply(8, [finding()]), reply(7, [finding(), finding()])],
    "c": [reply(3, [finding("major")]), reply(4, [finding("major")]), reply(2, [finding("major")])],
    "d": [reply(4, [finding("major")]), reply(9), reply(5, [finding()])],
    "e": [None, None, None],
    "f": [
        reply(6, [finding()], ["supported", "contradicted", "supported"]),
        reply(6, [finding()], ["supported", "contradicted", "not visible"]),
        reply(6, [finding()], ["Supported", "contradicted", "supported"]),
    ],  # fmt: skip
    "h": [reply(8), None, reply(9)],
}


def scripted(request: JudgeRequest) -> str:
    key = re.search(r"\[(\w)\]", request.prompt).group(1)
    text = SCRIPT[key][request.sample]
    return "I cannot tell." if text is None else f"```json\n{text}\n```"


def make_benchmark(shared_videos, keys: str = "abcdefgh") -> CaptionBenchmark:
    samples = []
    for key in keys:
        events = ("a person walks", "a person jumps", "a person waves") if key == "f" else None
        video = "gone.mkv" if key == "g" else ("asl-walk.mkv" if key in "bdf" else "asl-eat.mkv")
        samples.append(CaptionSample(id=key, video=video, reference=f"[{key}] A person eats an apple.",
                                     subset="walk" if key in "bdf" else "eat", events=events))  # fmt: skip
    paths = {name: shared_videos / name for name in ("asl-eat.mkv", "asl-walk.mkv")}
    return CaptionBenchmark("tiny", "tiny.jsonl", tuple(samples), str(shared_videos), paths, ("gone.mkv",))


def test_video_frames_are_jpegs_at_true_times(shared_videos):
    path = shared_videos / "asl-walk.mkv"
    frames = video_frames(path, num_frames=4, max_pixels=64 * 64)
    config = SamplingConfig(num_frames=4, min_frames=2, max_pixels=64 * 64, min_pixels=64 * 64)
    clip = sample_clip(path, config)
    assert [f.seconds for f in frames] == pytest.approx(list(clip.timestamps), abs=1e-3)
    assert frames[0].seconds == 0.0 and frames[-1].seconds > 2.5
    image = Image.open(io.BytesIO(frames[0].jpeg))
    assert image.format == "JPEG" and image.size[0] * image.size[1] <= 64 * 64
    with pytest.raises(ValueError, match="Invalid num_frames: 1"):
        video_frames(path, num_frames=1)


def test_audit_consensus_summary_and_exclusions(shared_videos, tmp_path):
    judge = scripted_judge(scripted)
    seen = []
    run = audit_references(make_benchmark(shared_videos), judge, out_dir=tmp_path / "audit", runs=3, **FRAMES,
                           progress=lambda done, total, message: seen.append((done, total)))  # fmt: skip
    summary = run.summary
    overall = summary["overall"]
    assert summary["sentence"].startswith(
        "3 of 5 references have at least one factual error (in all 3 runs); 1 have major errors (score ≤ 5"
    )
    not_counted = "2 unscored (1 with no usable judge reply, 1 with some runs unusable) and 1 failed"
    assert not_counted in summary["sentence"]
    assert (overall["num_items"], overall["num_scored"], overall["num_failed"]) == (8, 5, 1)
    assert (overall["num_unscored"], overall["num_partly_scored"]) == (1, 1)
    assert sorted(summary["unscored_ids"]) == ["e", "h"] and summary["failed_ids"] == ["g"]
    assert summary["per_subset"]["walk"]["num_consensus_error"] == 2  # b and f; d disagrees
    assert summary["per_subset"]["eat"]["num_consensus_major"] == 1
    assert sorted(seen)[-1] == (8, 8)

    items = {json.loads(line)["id"]: json.loads(line) for line in (run.directory / "items.jsonl").open()}
    assert items["c"]["consensus_major"] and items["c"]["consensus_error"] and items["c"]["min_score"] == 2
    assert items["b"]["consensus_error"] and not items["b"]["consensus_major"]
    assert items["b"]["num_findings"] == [1, 1, 2]
    assert items["d"]["consensus_error"] is False and items["d"]["consensus_major"] is False
    assert items["d"]["mean_score"] == pytest.approx(6.0) and items["d"]["scores"] == [4, 9, 5]
    # unscored: never a zero, the judge's replies kept
    assert items["e"]["scores"] == [] and items["e"]["mean_score"] is None
    assert items["e"]["consensus_error"] is None and items["e"]["consensus_major"] is None
    assert items["e"]["runs"][0]["replies"] == ["I cannot tell."] * 3
    assert items["h"]["num_scored_runs"] == 2 and items["h"]["consensus_major"] is None
    assert items["h"]["mean_score"] == pytest.approx(8.5)
    assert overall["mean_score"] == pytest.approx((9 + 1 / 3 + 22 / 3 + 3 + 6 + 6 + 8.5) / 6)
    assert items["g"]["error"].startswith("video gone.mkv is missing")
    events = items["f"]["event_verdicts"]
    assert [e["consensus"] for e in events] == ["supported", "contradicted", None]
    assert events[2]["verdicts"] == ["supported", "not_visible", "supported"]
    assert items["f"]["event_disagreement_rate"] == pytest.approx(1 / 3)
    assert overall["event_consensus"] == {"supported": 1, "contradicted": 1, "not_visible": 0}

    # the judge saw real frames (the same in every run), the reference and the numbered events
    f_requests = [r for r in judge.requests if "[f]" in r.prompt]
    assert [r.sample for r in f_requests] == [0, 1, 2]
    assert all(r.frames == f_requests[0].frames and r.frames[0].jpeg[:2] == b"\xff\xd8" for r in f_requests)
    assert "2. a person jumps" in f_requests[0].prompt and '"verdict"' in f_requests[0].prompt
    assert '"verdict"' not in next(r for r in judge.requests if "[a]" in r.prompt).prompt

    header = json.loads((run.directory / "header.json").read_text())
    assert header["identity"]["judge"]["model"] == "script-1" and header["identity"]["runs"] == 3
    assert header["identity"]["num_frames"] == 2 and header["finished_at"] and "vidspan" in header["versions"]
    report = (run.directory / "report.md").read_text()
    assert summary["sentence"] in report and "### `c` (eat): scores 3, 4, 2" in report
    assert "`f`: a person jumps" in report and "`g` failed" in report
    assert json.loads((run.directory / "summary.json").read_text())["sentence"] == summary["sentence"]

    audit = load_audit(run.directory)
    assert audit.excluded_ids() == {"c"}
    assert audit.excluded_ids(min_score=6) == {"c", "f"}
    assert audit.excluded_ids(min_score=6, require_consensus=False) == {"c", "d", "f"}
    assert audit.corrected_events("f") == ("a person walks", "a person waves")
    assert audit.corrected_events("a") is None and audit.corrected_events("g") is None
    assert audit.corrected_events("nope") is None


def test_audit_resumes_and_retries_failed_items(shared_videos, tmp_path):
    benchmark = make_benchmark(shared_videos, "abc")

    def down_for_b(request: JudgeRequest) -> str:
        if "[b]" in request.prompt:
            raise JudgeError("connection refused")
        return scripted(request)

    first = scripted_judge(down_for_b)
    run = audit_references(benchmark, first, out_dir=tmp_path, runs=3, **FRAMES)
    assert run.summary["failed_ids"] == ["b"] and "judge failed" in run.load().items["b"]["error"]
    assert len(first.requests) == 7  # a and c: 3 runs each; b: the first call fails

    second = scripted_judge(scripted)
    run = audit_references(benchmark, second, out_dir=tmp_path, runs=3, **FRAMES)
    assert ["[b]" in r.prompt for r in second.requests] == [True] * 3
    assert run.summary["failed_ids"] == [] and run.summary["overall"]["num_consensus_error"] == 2

    third = scripted_judge(scripted)
    again = audit_references(benchmark, third, out_dir=tmp_path, runs=3, **FRAMES)
    assert third.requests == [] and again.summary["sentence"] == run.summary["sentence"]

    with pytest.raises(RunError, match=r"other settings \(runs\)"):
        audit_references(benchmark, third, out_dir=tmp_path, runs=2, **FRAMES)
    with pytest.raises(ValueError, match="Invalid runs: 0"):
        audit_references(benchmark, third, out_dir=tmp_path / "new", runs=0)


def test_audit_works_in_worker_threads(shared_videos, tmp_path):
    judge = scripted_judge(scripted)
    benchmark = make_benchmark(shared_videos)
    run = audit_references(benchmark, judge, out_dir=tmp_path, runs=3, max_workers=3, **FRAMES)
    assert run.summary["overall"]["num_consensus_error"] == 3 and judge.usage.unscored == 4


def test_load_audit_refuses_other_directories(tmp_path):
    (tmp_path / "header.json").write_text(json.dumps({"kind": "grounding"}))
    with pytest.raises(RunError, match="not a caption audit"):
        load_audit(tmp_path)
    with pytest.raises(RunError, match="Cannot read the audit"):
        load_audit(tmp_path / "missing")


def test_validate_audit_checks_counts_labels_and_scores():
    ok = json.loads(reply(7, [finding("Major")], ["supported", "Not visible"]))
    checked = validate_audit(ok, 2)
    assert checked["findings"][0]["severity"] == "major" and checked["events"][1]["verdict"] == "not_visible"
    assert validate_audit(json.loads(reply("8")), 0)["score"] == 8.0
    with pytest.raises(ValueError, match="all 3 reference events, got 2"):
        validate_audit(ok, 3)
    with pytest.raises(ValueError, match="score"):
        validate_audit(json.loads(reply(11)), 0)
    with pytest.raises(ValueError, match="score"):
        validate_audit(json.loads(reply(True)), 0)
    with pytest.raises(ValueError, match="severity"):
        validate_audit(json.loads(reply(5, [finding("bad")])), 0)
    with pytest.raises(ValueError, match="no reference events"):
        validate_audit(ok, 0)
    shuffled = ok | {"events": list(reversed(ok["events"]))}
    assert validate_audit(shuffled, 2)["events"] == checked["events"]


def test_audit_through_the_gemini_wire_format(shared_videos, tmp_path):
    def respond(info) -> str:  # the run index travels as the request seed (base seed 0 + sample)
        key = re.search(r"\[(\w)\]", info.prompt).group(1)
        text = SCRIPT[key][info.body["generationConfig"]["seed"] % 1000]
        return "I cannot tell." if text is None else text

    with FakeJudgeServer(respond) as server:
        judge = GeminiJudge("gemini-fake", base_url=server.gemini_base_url, api_key="k",
                            cache=tmp_path / "cache.sqlite", max_retries=0)  # fmt: skip
        run = audit_references(make_benchmark(shared_videos, "cef"), judge, out_dir=tmp_path / "a", **FRAMES)
        assert server.count("gemini") == 3 + 9 + 3 and not server.errors
        assert server.requests[0].num_images == 2 and "check video descriptions" in server.requests[0].system
    summary = run.summary
    assert summary["sentence"].startswith("2 of 2 references have at least one factual error")
    assert summary["overall"]["num_unscored"] == 1 and run.load().corrected_events("f") == (
        "a person walks", "a person waves")  # fmt: skip
    assert run.header["identity"]["judge"]["backend"] == "gemini"
    assert summary["judge_usage"]["calls"] == 15 and summary["judge_usage"]["unscored"] == 3
