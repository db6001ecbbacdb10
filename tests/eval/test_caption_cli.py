"""vidspan eval generate-captions, captions, audit and compare-captions, through HTTP judges on loopback."""

from __future__ import annotations

import json
import os
import re

import pytest
from click.testing import CliRunner

from support.fake_judges import FakeJudgeServer
from vidspan.cli.main import cli
from vidspan.models import register_plugin, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel

CAPTION = "Scene: A person sits at a desk.\nEvents:\n<0.0 - 1.0> A person raises a hand to the mouth.\n"


def judge(request) -> str:
    """A scripted judge that answers every protocol question in the JSON each one asks for."""
    prompt = request.prompt
    if '"winner"' in prompt:
        return json.dumps({"caption_1_errors": "", "caption_2_errors": "", "reason": "same", "winner": "1"})
    if '"findings"' in prompt:
        return json.dumps({"observations": "a person", "findings": [], "events": [], "score_reason": "ok",
                           "score": 9})  # fmt: skip
    if "Statements:" in prompt:
        block = prompt.split("Statements:\n", 1)[1].split("\n\n", 1)[0]
        count = len([line for line in block.splitlines() if re.match(r"\d+\. ", line)])
        key, label = ("verdict", "supported") if request.num_images else ("relation", "entailment")
        verdicts = [{"index": i, "reason": "ok", key: label} for i in range(1, count + 1)]
        return json.dumps({"verdicts": verdicts})
    if '"objects"' in prompt:
        return json.dumps({"objects": ["There is a desk."]})
    return json.dumps({"events": ["A person raises a hand."]})


@pytest.fixture
def setup(tmp_path, shared_videos):
    model = MockVideoModel([CAPTION], name="mock")
    plugin = MockPlugin(model)
    register_plugin(plugin)
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(shared_videos / "asl-eat.mkv", videos / "eat.mkv")
    refs = tmp_path / "refs.jsonl"
    refs.write_text(
        json.dumps({"id": "a", "video": "eat", "caption": "A person raises a hand to the mouth."}) + "\n"
        + json.dumps({"id": "b", "video": "gone", "caption": "A dog runs."}) + "\n"
    )  # fmt: skip
    yield refs, videos
    unregister_plugin(plugin)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_generate_then_score_audit_and_compare(setup, tmp_path):
    refs, videos = setup
    bench = ["--bench", "jsonl", "--annotations", str(refs), "--videos", str(videos)]
    run = tmp_path / "gen"
    result = invoke("eval", "generate-captions", *bench, "-m", "mock", "--out", str(run), "--max-frames", "8",
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["generated"] == 1 and summary["missing_videos"] == ["b"]
    assert "1 video(s) missing" in result.stderr
    lines = [json.loads(x) for x in (run / "captions.jsonl").read_text().splitlines()]
    assert lines[0]["caption"] == CAPTION and lines[0]["events"][0]["description"].startswith("A person")
    again = json.loads(invoke("eval", "generate-captions", *bench, "-m", "mock", "--out", str(run),
                              "--max-frames", "8", "--no-progress").stdout)  # fmt: skip
    assert again["generated"] == 0 and again["already_done"] == 1
    # the same folder with other sampling would mix two settings' captions: refused in one line
    other = invoke("eval", "generate-captions", *bench, "-m", "mock", "--out", str(run), "--no-progress")
    assert other.exit_code == 1 and "Traceback" not in other.output
    (error,) = [line for line in other.stderr.splitlines() if line.startswith("Error:")]
    assert "holds a run made with other settings (sampling)" in error

    with FakeJudgeServer(judge) as server:
        result = invoke("eval", "captions", *bench, "--candidates", str(run), "--judge", "openai:gpt-4.1",
                        "--judge-base-url", server.openai_base_url,
                        "--video-judge", "gemini:gemini-2.5-flash",
                        "--video-judge-base-url", server.gemini_base_url, "--out", str(tmp_path / "autodq"),
                        "--frames", "4", "--no-progress", "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        metrics = json.loads(result.stdout)
        assert server.count("openai") > 0 and server.count("gemini") > 0
        assert (tmp_path / "autodq" / "report.md").exists()
        assert "gpt-4.1" in json.dumps(json.loads((tmp_path / "autodq" / "header.json").read_text()))
        text = json.dumps(metrics)
        assert '"failed": 1' in text  # sample b has no candidate: counted, not dropped

        calls = server.count("openai")
        invoke("eval", "captions", *bench, "--candidates", str(run), "--judge", "openai:gpt-4.1",
               "--judge-base-url", server.openai_base_url, "--out", str(tmp_path / "autodq2"),
               "--no-progress")  # fmt: skip
        assert server.count("openai") == calls  # the same questions again: all from the judge cache

        result = invoke("eval", "audit", *bench, "--judge", "gemini:gemini-2.5-pro", "--judge-base-url",
                        server.gemini_base_url, "--runs", "2", "--frames", "4",
                        "--out", str(tmp_path / "audit"), "--no-progress", "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "of" in json.loads(result.stdout)["sentence"]

        result = invoke("eval", "compare-captions", str(run), str(run), *bench, "--judge", "openai:gpt-4.1",
                        "--judge-base-url", server.openai_base_url, "--frames", "4",
                        "--out", str(tmp_path / "pair"), "--no-progress", "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        pair = json.loads(result.stdout)
        assert pair["overall"]["ties"] == 1  # "always caption 1" cancels out over both orders


def test_bad_judge_spec_is_one_line(setup, tmp_path):
    refs, videos = setup
    result = invoke("eval", "audit", "--bench", "jsonl", "--annotations", str(refs), "--videos", str(videos),
                    "--judge", "opnai:gpt-4.1", "--out", str(tmp_path / "a"))  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Did you mean: openai:gpt-4.1" in lines[0]
