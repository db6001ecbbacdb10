"""summarize: window summaries from each window's events, the summary of summaries with checked
chapters (re-asked when unusable), and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from support.fake_judges import FakeJudgeServer
from vidspan.answer.summarize import summarize
from vidspan.judge.openai_judge import OpenAIJudge
from vidspan.models import families
from vidspan.testing.mock import MockVideoModel

LIGHT = {"fps": 0.5, "max_frames": 4, "min_frames": 2, "max_pixels": 64 * 64, "window_seconds": 12.0}
GOOD = {
    "summary": "A car passes,  then parks.",
    "chapters": [{"start": 3, "title": "Arrival"}, {"start": 14.0, "title": " The  parking "}],
}


def caption_reply(clip, prompt):
    return f"Scene: a street.\nEvents:\n<1.0 - 4.0> A car passes at {clip.window.start:.0f}.\n"


def responder(final_replies):
    def respond(info):
        if "summarise one part" in (info.system or ""):
            return f"Part summary for: {info.prompt.splitlines()[0]}"
        return final_replies.pop(0) if len(final_replies) > 1 else final_replies[0]

    return respond


def test_summary_is_built_window_by_window_and_its_chapters_are_checked(shared_videos):
    video = str(shared_videos / "car-detection.mp4")
    model = MockVideoModel([caption_reply], family=families.MARLIN)
    bad = json.dumps({"summary": "x", "chapters": [{"start": 99.0, "title": "After the end"}]})
    with FakeJudgeServer(responder([bad, json.dumps(GOOD)])) as server:
        llm = OpenAIJudge("qwen-local", base_url=server.openai_base_url, api_key="k", cache=False)
        summary = summarize(video, llm=llm, model=model, **LIGHT)
        requests = list(server.requests)
    windows = summary.caption.windows
    assert len(summary.windows) == len(windows) == 4
    # each window was summarised from its own events, in order
    window_prompts = [r.prompt for r in requests if "summarise one part" in (r.system or "")]
    assert [p.splitlines()[0] for p in window_prompts] == [
        f"Part {i + 1} of 4 of the video, {w.start:.1f}–{w.end:.1f} s." for i, w in enumerate(windows)
    ]
    assert f"A car passes at {windows[1].start:.0f}." in window_prompts[1]
    final = [r for r in requests if "JSON" in (r.system or "")]
    assert len(final) == 2  # the chapter past the video's end was re-asked
    assert summary.windows[0].text in final[-1].prompt
    assert summary.text == "A car passes, then parks."
    assert [(c.start, c.title) for c in summary.chapters] == [(0.0, "Arrival"), (14.0, "The parking")]
    assert summary.to_dict()["chapters"][1] == {"start": 14.0, "title": "The parking"}


def test_summarize_cli_text_chapters_and_json(shared_videos, monkeypatch):
    from vidspan.cli.main import cli
    from vidspan.models import register_plugin, unregister_plugin
    from vidspan.testing.mock import MockPlugin

    plugin = MockPlugin(MockVideoModel([caption_reply], family=families.MARLIN, name="mock"))
    register_plugin(plugin)
    video = str(shared_videos / "car-detection.mp4")
    try:
        with FakeJudgeServer(responder([json.dumps(GOOD)])) as server:
            args = [
                "summarize",
                video,
                "-m",
                "mock",
                "--llm",
                "openai:q",
                "--llm-base-url",
                server.openai_base_url,
                "--fps",
                "0.5",
                "--max-frames",
                "4",
                "--max-pixels",
                "4096",
                "--window",
                "12",
                "--no-progress",
            ]
            monkeypatch.setenv("OPENAI_API_KEY", "k")
            text = CliRunner().invoke(cli, args)
            chapters = CliRunner().invoke(cli, [*args, "--chapters"])
            as_json = CliRunner().invoke(cli, [*args, "--json"])
        assert text.exit_code == 0, text.output
        assert text.stdout == "A car passes, then parks.\n\nChapters:\n  0:00 Arrival\n  0:14 The parking\n"
        assert chapters.stdout == "0:00 Arrival\n0:14 The parking\n"
        assert json.loads(as_json.stdout)["duration"] == pytest.approx(30.16)
    finally:
        unregister_plugin(plugin)
