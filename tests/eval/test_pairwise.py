"""Pairwise caption comparison: both orders, wins only when they survive the swap, real frames and HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from support.fake_judges import FakeJudgeServer
from vidspan.eval.captions.pairwise import combine, compare_captions, validate_pairwise
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.grounding.run import RunError
from vidspan.judge.openai_judge import OpenAIJudge
from vidspan.testing.judges import ScriptedJudge

FRAMES = {"num_frames": 2, "max_pixels": 64 * 64}
CAPTION = re.compile(r'Caption (\d):\n"""(.*?)"""', re.S)


def scripted_judge(respond: Callable[[str], str]) -> ScriptedJudge:
    """The real judge with only its network call answered by ``respond(prompt)``."""
    return ScriptedJudge(lambda request: respond(request.prompt), model="script-1")


def verdict(winner: str) -> str:
    return json.dumps({"caption_1_errors": "none", "caption_2_errors": "none", "completeness": "similar",
                       "reason": f"caption {winner} is better", "winner": winner})  # fmt: skip


def always_first(prompt: str) -> str:
    return verdict("1")


def prefers_red(prompt: str) -> str:
    """Picks the caption that mentions red (a tie when both or neither do); garbage for "[junk]"."""
    if "[junk]" in prompt:
        return "no idea"
    red = [number for number, text in CAPTION.findall(prompt) if "red" in text]
    return verdict(red[0] if len(red) == 1 else "tie")


def make_benchmark(shared_videos) -> CaptionBenchmark:
    subsets = ["eat", "eat", "walk", "walk", "walk", "eat"]
    samples = tuple(
        CaptionSample(id=str(i), video=f"asl-{subset}.mkv", reference="ref", subset=subset)
        for i, subset in enumerate(subsets)
    )
    paths = {name: shared_videos / name for name in ("asl-eat.mkv", "asl-walk.mkv")}
    return CaptionBenchmark("tiny", "tiny.jsonl", samples, str(shared_videos), paths)


# A mentions red on 0, 1, 2; B on 3; neither on 4; 5 has no caption from B
CAPTIONS_A = {"0": "a man in red eats", "1": "red shirt", "2": "a red coat walks", "3": "a man", "4": "x",
              "5": "only A"}  # fmt: skip
CAPTIONS_B = {"0": "a man eats", "1": "a shirt", "2": "a coat walks", "3": "a red man", "4": "y"}


def test_position_bias_is_cancelled(shared_videos, tmp_path):
    judge = scripted_judge(always_first)
    run = compare_captions(make_benchmark(shared_videos), CAPTIONS_A, CAPTIONS_B, judge, out_dir=tmp_path,
                           name_a="model-a", name_b="model-b", **FRAMES)  # fmt: skip
    overall = run.summary["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"]) == (0, 5, 0)
    assert overall["position_consistency"] == 0.0 and overall["first_position_rate"] == 1.0
    assert overall["num_flipped"] == 5
    assert len(judge.requests) == 10 and run.summary["missing_b"] == ["5"]
    pair = run.pairs()["0"]
    assert pair["orders"]["a_first"]["chosen"] == "a" and pair["orders"]["b_first"]["chosen"] == "b"
    assert pair["outcome"] == "tie" and pair["position_consistent"] is False
    # both orders really were asked: A as caption 1, then B as caption 1, with the same real frames
    first, second = (r for r in judge.requests if "a man in red eats" in r.prompt)
    assert CAPTION.findall(first.prompt) == [("1", "a man in red eats"), ("2", "a man eats")]
    assert CAPTION.findall(second.prompt) == [("1", "a man eats"), ("2", "a man in red eats")]
    assert (
        first.frames == second.frames and len(first.frames) == 2 and first.frames[0].jpeg[:2] == b"\xff\xd8"
    )
    assert "Verdict changed with the order (5, counted as ties)" in (run.directory / "report.md").read_text()


def test_consistent_preference_wins_per_subset_and_report(shared_videos, tmp_path):
    seen = []
    run = compare_captions(make_benchmark(shared_videos), CAPTIONS_A, CAPTIONS_B, scripted_judge(prefers_red),
                           out_dir=tmp_path / "cmp", name_a="model-a", name_b="model-b", **FRAMES,
                           progress=lambda done, total, message: seen.append((done, total)))  # fmt: skip
    summary = run.summary
    overall = summary["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"]) == (3, 1, 1)
    assert overall["position_consistency"] == 1.0 and overall["win_rate"] == pytest.approx(0.6)
    assert overall["score"] == pytest.approx(3.5 / 5) and overall["first_position_rate"] == pytest.approx(0.5)
    eat, walk = summary["per_subset"]["eat"], summary["per_subset"]["walk"]
    assert (eat["wins"], eat["ties"], eat["losses"], eat["num_pairs"]) == (2, 0, 0, 2)
    assert (walk["wins"], walk["ties"], walk["losses"]) == (1, 1, 1)
    assert summary["sentence"].startswith("model-a vs model-b: 3 wins, 1 ties, 1 losses for model-a over 5")
    assert sorted(seen)[-1] == (5, 5)
    pairs = run.pairs()
    assert pairs["3"]["outcome"] == "b" and pairs["3"]["orders"]["b_first"]["winner"] == "1"
    assert pairs["4"]["outcome"] == "tie" and pairs["4"]["position_consistent"] is True

    header = json.loads((run.directory / "header.json").read_text())
    assert header["kind"] == "caption-pairwise" and header["identity"]["judge"]["model"] == "script-1"
    assert header["name_a"] == "model-a" and header["finished_at"]
    assert json.loads((run.directory / "summary.json").read_text())["overall"]["wins"] == 3
    report = (run.directory / "report.md").read_text()
    assert "# model-a vs model-b on tiny" in report and summary["sentence"] in report
    assert "| eat | 2 | 2 | 0 | 0 |" in report and "| **all** | 5 | 3 | 1 | 1 |" in report
    assert "`3` (walk): model-b. With model-a as caption 1: caption 2 is better" in report
    assert "Not compared: 0 samples without a caption from model-a, 1 without one from model-b." in report


def test_unscored_pairs_resume_and_settings(shared_videos, tmp_path):
    benchmark = make_benchmark(shared_videos)
    captions_a = CAPTIONS_A | {"1": "[junk] red"}
    judge = scripted_judge(prefers_red)
    run = compare_captions(benchmark, captions_a, CAPTIONS_B, judge, out_dir=tmp_path, name_a="a", name_b="b",
                           **FRAMES)  # fmt: skip
    overall = run.summary["overall"]
    assert run.summary["unscored_ids"] == ["1"] and overall["num_unscored"] == 1
    assert (overall["wins"], overall["ties"], overall["losses"], overall["num_scored"]) == (2, 1, 1, 4)
    pair = run.pairs()["1"]
    assert pair["outcome"] is None and pair["orders"]["a_first"]["replies"] == ["no idea"] * 3
    assert "Not counted: 1 unscored" in run.summary["sentence"]
    assert "`1` unscored in a_first, b_first" in (run.directory / "report.md").read_text()

    again = scripted_judge(prefers_red)
    resumed = compare_captions(benchmark, captions_a, CAPTIONS_B, again, out_dir=tmp_path, name_a="a",
                               name_b="b", **FRAMES)  # fmt: skip
    assert again.requests == [] and resumed.summary["overall"] == overall
    with pytest.raises(RunError, match=r"other settings \(captions_sha256\)"):
        compare_captions(benchmark, CAPTIONS_A, CAPTIONS_B, again, out_dir=tmp_path, name_a="a", name_b="b",
                         **FRAMES)  # fmt: skip
    with pytest.raises(ValueError, match="Invalid name_b: 'a'. It must differ from name_a."):
        compare_captions(
            benchmark, CAPTIONS_A, CAPTIONS_B, again, out_dir=tmp_path / "x", name_a="a", name_b="a"
        )


def test_missing_video_fails_the_pair_and_is_retried(shared_videos, tmp_path):
    benchmark = make_benchmark(shared_videos)
    broken = CaptionBenchmark("tiny", "tiny.jsonl", benchmark.samples, str(shared_videos),
                              {"asl-eat.mkv": shared_videos / "asl-eat.mkv"})  # fmt: skip
    run = compare_captions(broken, CAPTIONS_A, CAPTIONS_B, scripted_judge(prefers_red), out_dir=tmp_path,
                           name_a="a", name_b="b", **FRAMES)  # fmt: skip
    assert run.summary["failed_ids"] == ["2", "3", "4"] and run.summary["overall"]["num_scored"] == 2
    judge = scripted_judge(prefers_red)
    run = compare_captions(benchmark, CAPTIONS_A, CAPTIONS_B, judge, out_dir=tmp_path, name_a="a", name_b="b",
                           max_workers=2, **FRAMES)  # fmt: skip
    assert len(judge.requests) == 6 and run.summary["failed_ids"] == []
    assert run.summary["overall"]["wins"] == 3


def test_combine_and_validate():
    pairs = [("a", "a"), ("b", "b"), ("a", "b"), ("tie", "a"), ("b", "tie"), ("tie", "tie")]
    assert [combine(*pair) for pair in pairs] == ["a", "b", "tie", "tie", "tie", "tie"]
    assert validate_pairwise({"winner": "Caption 2", "reason": "r"})["winner"] == "2"
    assert validate_pairwise({"winner": 1})["winner"] == "1"
    assert validate_pairwise({"winner": "TIE"})["winner"] == "tie"
    for bad in ({"winner": "3"}, {"winner": True}, {"reason": "no winner"}, ["1"]):
        with pytest.raises(ValueError):
            validate_pairwise(bad)


def test_through_the_openai_wire_format(shared_videos, tmp_path):
    def respond(info) -> str:
        return prefers_red(info.prompt)

    with FakeJudgeServer(respond) as server:
        url = server.openai_base_url
        judge = OpenAIJudge("gpt-fake", base_url=url, api_key="k", cache=tmp_path / "c.db", max_retries=0)
        benchmark = make_benchmark(shared_videos)
        run = compare_captions(benchmark, CAPTIONS_A, CAPTIONS_B, judge, out_dir=tmp_path / "r", name_a="a",
                               name_b="b", **FRAMES)  # fmt: skip
        assert server.count("openai") == 10 and not server.errors
        request = server.requests[0]
        assert (
            request.num_images == 2
            and request.texts[0] == "0.0 seconds:"
            and "describes the video" in request.prompt
        )
        assert request.body["response_format"] == {"type": "json_object"} and "compare two" in request.system
    overall = run.summary["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"]) == (3, 1, 1)
    assert (
        run.summary["judge_usage"]["calls"] == 10 and run.header["identity"]["judge"]["backend"] == "openai"
    )
