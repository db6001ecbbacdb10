"""Teacher annotation: strict answers kept, broken ones retried then failed, resumable, both tasks."""

from __future__ import annotations

import json

import pytest

from vidspan.errors import RunError
from vidspan.models import families
from vidspan.parse import parse_caption
from vidspan.testing.mock import MockVideoModel
from vidspan.train.annotate import annotate_videos, examples_from_annotations

GOOD = "Scene: A person signs at a desk.\nEvents:\n<0.0 - 0.8> A hand rises.\n<0.8 - 1.5> The hand lowers."
BROKEN = "A person signs. 0-1 a hand rises"


def test_annotate_retries_broken_answers_and_records_failures(shared_videos, tmp_path):
    videos = [shared_videos / "asl-eat.mkv", shared_videos / "asl-walk.mkv"]
    # eat: broken once, then good; walk: always broken (3 attempts)
    teacher = MockVideoModel([BROKEN, GOOD, BROKEN, BROKEN, BROKEN], name="teacher")
    summary = annotate_videos(videos, teacher, tmp_path / "ann", max_frames=4)
    assert (summary.annotated, summary.failed, summary.already_done) == (1, 1, 0)
    records = [json.loads(line) for line in (tmp_path / "ann" / "annotations.jsonl").read_text().splitlines()]
    eat, walk = records
    assert eat["error"] is None and eat["attempts"] == 2 and eat["rejected"] == [BROKEN]
    assert [e["description"] for e in eat["events"]] == ["A hand rises.", "The hand lowers."]
    assert walk["error"].startswith("the answer breaks the caption format") and walk["attempts"] == 3
    # resuming retries only the failed video; another teacher in the same folder is refused
    again = annotate_videos(videos, MockVideoModel([GOOD], name="teacher"), tmp_path / "ann", max_frames=4)
    assert (again.annotated, again.already_done) == (1, 1)
    with pytest.raises(RunError, match=r"other settings \(teacher\)"):
        annotate_videos(videos, MockVideoModel([GOOD], name="other"), tmp_path / "ann", max_frames=4)


def test_annotations_become_caption_and_find_examples(shared_videos, tmp_path):
    annotate_videos([shared_videos / "asl-eat.mkv"], MockVideoModel([GOOD]), tmp_path / "ann", max_frames=4)
    examples, bad = examples_from_annotations(tmp_path / "ann", families.MARLIN)
    caption = [e for e in examples if e.task == "caption"]
    finds = [e for e in examples if e.task == "find"]
    assert len(caption) == 1 and parse_caption(caption[0].answer, strict=True).events
    assert caption[0].prompt == families.MARLIN.caption_prompt
    assert [e.answer for e in finds] == ["From 0.0 to 0.8.", "From 0.8 to 1.5."] and bad == []


def test_annotate_cli_reports_failures_in_one_line_and_resumes(shared_videos, tmp_path):
    from click.testing import CliRunner

    from vidspan.cli.main import cli
    from vidspan.models import register_plugin, unregister_plugin
    from vidspan.testing.mock import MockPlugin

    plugin = MockPlugin(MockVideoModel([BROKEN], name="teacher-cli"))
    register_plugin(plugin)
    try:
        args = ["annotate", str(shared_videos / "asl-eat.mkv"), "-m", "teacher-cli", "--out",
                str(tmp_path / "a"), "--attempts", "2", "--max-frames", "4"]  # fmt: skip
        result = CliRunner().invoke(cli, args)
    finally:
        unregister_plugin(plugin)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == 1
    assert "1 video(s) failed; run again to retry them" in result.stderr


def _verdicts(*verdicts):
    """An audit reply in the judge's JSON form with these event verdicts."""
    events = [{"index": i, "reason": "seen", "verdict": v} for i, v in enumerate(verdicts, 1)]
    return json.dumps({"observations": "a hand", "findings": [], "events": events, "score_reason": "ok",
                       "score": 7})  # fmt: skip


@pytest.mark.parametrize("mode", ["drop", "flag"])
def test_the_video_judge_drops_or_flags_contradicted_events(shared_videos, tmp_path, mode):
    from vidspan.judge.base import JudgeError
    from vidspan.testing.judges import ScriptedJudge

    video = shared_videos / "asl-eat.mkv"
    # first session: the judge is down (transport failure) -> the video stays to do; then it answers
    judge = ScriptedJudge([JudgeError("connection refused"), _verdicts("supported", "contradicted")])
    first = annotate_videos([video], MockVideoModel([GOOD]), tmp_path / "ann", max_frames=4, judge=judge,
                            judge_frames=4, on_contradicted=mode)  # fmt: skip
    assert first.failed == 1
    again = annotate_videos([video], MockVideoModel([GOOD]), tmp_path / "ann", max_frames=4, judge=judge,
                            judge_frames=4, on_contradicted=mode)  # fmt: skip
    assert again.annotated == 1
    sent = judge.requests[-1]
    assert "<0.8 - 1.5> The hand lowers." in sent.prompt and len(sent.frames) == 4  # events with times
    lines = (tmp_path / "ann" / "annotations.jsonl").read_text().splitlines()
    record = [json.loads(line) for line in lines][-1]
    assert record["check"] == "judged" and record["event_verdicts"] == ["supported", "contradicted"]
    examples, bad = examples_from_annotations(tmp_path / "ann", families.MARLIN)
    finds = [e.answer for e in examples if e.task == "find"]
    assert finds == ["From 0.0 to 0.8."]  # the contradicted event is no find example either way
    caption = next(e for e in examples if e.task == "caption")
    if mode == "drop":
        assert [e["description"] for e in record["events"]] == ["A hand rises."]
        assert record["dropped_events"][0]["description"] == "The hand lowers."
        assert "The hand lowers" not in caption.answer and bad == []
    else:
        assert len(record["events"]) == 2 and record["flagged_events"] == [1]
        assert [b.reason for b in bad] == ["the video judge called event 2 contradicted: The hand lowers."]


def test_another_judge_is_another_run_and_bad_judge_options_are_refused(shared_videos, tmp_path):
    from vidspan.testing.judges import ScriptedJudge

    video = shared_videos / "asl-eat.mkv"
    annotate_videos([video], MockVideoModel([GOOD]), tmp_path / "ann", max_frames=4,
                    judge=ScriptedJudge([_verdicts("supported", "supported")]), judge_frames=4)  # fmt: skip
    with pytest.raises(RunError, match="other settings"):
        annotate_videos([video], MockVideoModel([GOOD]), tmp_path / "ann", max_frames=4,
                        judge=ScriptedJudge([], model="other-judge"), judge_frames=4)  # fmt: skip
    with pytest.raises(ValueError, match="on_contradicted"):
        annotate_videos([video], MockVideoModel([GOOD]), tmp_path / "x", judge=ScriptedJudge([]),
                        on_contradicted="ignore")  # fmt: skip
