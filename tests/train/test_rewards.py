"""Rewards: the IoU and format rewards agree with the evaluation's parser and metric, and never raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidspan.eval.grounding.metrics import temporal_iou
from vidspan.train.rewards import FLOOR, FormatReward, TemporalIoUReward, WeightedReward, completion_text

TENTHS = st.integers(min_value=0, max_value=600).map(lambda n: n / 10)


@settings(max_examples=200, deadline=None)
@given(a=TENTHS, b=TENTHS, s=TENTHS, e=TENTHS)
def test_iou_reward_is_the_evaluation_iou_of_the_canonical_answer(a, b, s, e):
    reward = TemporalIoUReward()(["p"], [f"From {a:.1f} to {b:.1f}."], start=[s], end=[e])
    lo, hi = min(a, b), max(a, b)  # the lenient parser swaps a backwards span (with a violation)
    assert reward == [pytest.approx(temporal_iou((lo, hi), (s, e)))]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_no_completion_text_makes_a_reward_raise(text):
    for reward in (TemporalIoUReward(), FormatReward(), TemporalIoUReward("timelens")):
        values = reward(["p"], [text], start=[1.0], end=[2.0], task=["find"])
        assert len(values) == 1 and 0.0 <= values[0] <= 1.0


def test_unreadable_completions_get_the_floor():
    iou = TemporalIoUReward()
    completions = ["I cannot tell.", None, 42, [{"role": "assistant", "content": "From 1,234 to 1,250."}], []]
    assert iou(["p"] * 5, completions, start=[0.0] * 5, end=[5.0] * 5) == [FLOOR] * 5
    assert iou(["p"], ["From 1 to 2."], start=[float("nan")], end=[2.0]) == [FLOOR]


def test_conversational_completions_and_duration_bound():
    iou = TemporalIoUReward("timelens")
    completion = [
        {"role": "assistant", "content": [{"type": "text", "text": "The event happens in 2 - 20 seconds."}]}
    ]
    assert completion_text(completion) == "The event happens in 2 - 20 seconds."
    # clipped to the 10 s video as at evaluation: [2, 10] against [2, 6] is 0.5
    assert iou(["p"], [completion], start=[2.0], end=[6.0], duration=[10.0]) == [pytest.approx(0.5)]


def test_format_reward_is_the_strict_parser():
    fmt = FormatReward()
    completions = [
        "From 2.0 to 4.0.",
        "From 2.0 to 4.0",
        "<think>\n\n</think>\n\nFrom 1.5 to 3.0.",
        "From 5 to 5.",
        "Scene: A kitchen.\nEvents:\n<0.0 - 1.0> A man walks in.",
        "Scene: A kitchen.\nEvents:\n0-1 walks",
    ]
    tasks = ["find", "find", "find", "find", "caption", "caption"]
    assert fmt(["p"] * 6, completions, task=tasks) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def test_weighted_reward_sums_and_checks_its_parts():
    total = WeightedReward((TemporalIoUReward(), 1.0), (FormatReward(), 0.5), name="iou+format")
    assert total.__name__ == "iou+format"
    values = total(["p"] * 2, ["From 2.0 to 4.0.", "from 2 to 4"], start=[2.0, 2.0], end=[6.0, 6.0])
    assert values == [pytest.approx(0.5 + 0.5), pytest.approx(0.5)]
    with pytest.raises(ValueError, match="Invalid weight: nan"):
        WeightedReward((FormatReward(), float("nan")))
    with pytest.raises(ValueError, match="all zero"):
        WeightedReward((FormatReward(), 0.0))
    with pytest.raises(ValueError, match="one per completion"):
        TemporalIoUReward()(["p"] * 2, ["a", "b"], start=[1.0], end=[2.0, 3.0])


def _judge_reply(request) -> str:
    """AutoDQ's questions answered like a judge that sees a dog as wrong (the real prompts, read back)."""
    import json
    import re

    prompt = request.prompt
    if "Statements:" in prompt:
        block = prompt.split("Statements:\n", 1)[1].split("\n\n", 1)[0]
        count = len([line for line in block.splitlines() if re.match(r"\d+\. ", line)])
        label = "contradiction" if "dog" in prompt else "entailment"
        return json.dumps(
            {"verdicts": [{"index": i, "reason": "r", "relation": label} for i in range(1, count + 1)]}
        )
    return json.dumps({"events": ["A person raises a hand."]})


def test_caption_quality_reward_is_autodq_f1_through_the_real_judge_code():
    from vidspan.testing.judges import ScriptedJudge
    from vidspan.train.rewards import CaptionQualityReward

    judge = ScriptedJudge(_judge_reply)
    reward = CaptionQualityReward(judge)
    completions = ["A person raises a hand.", "A dog barks.", ""]
    values = reward(["p"] * 3, completions, reference=["A person raises a hand to the mouth."] * 3)
    assert values == [pytest.approx(1.0), pytest.approx(0.0), FLOOR]
    assert judge.requests  # the judge was really asked (extraction and entailment)
    failing = CaptionQualityReward(ScriptedJudge(lambda request: "not json at all"))
    assert failing(["p"], ["A person raises a hand."], reference=["A hand rises."]) == [FLOOR]
    assert failing.unscored == 1


def test_the_ms_swift_plugin_registers_rewards_with_its_call_signature():
    from vidspan.train.swift_plugin import register

    orms = register({})
    assert set(orms) == {"vidspan_iou", "vidspan_iou_timelens", "vidspan_format"}
    iou, fmt = orms["vidspan_iou"](), orms["vidspan_format"]()
    completions = ["From 2.0 to 4.0.", "from 2 to 4"]
    assert iou(completions, start=[2.0, 2.0], end=[6.0, 6.0]) == [pytest.approx(0.5), pytest.approx(0.5)]
    assert fmt(completions, task=["find", "find"]) == [1.0, 0.0]
    timelens = orms["vidspan_iou_timelens"]()
    assert timelens(["The event happens in 2 - 4 seconds."], start=[2.0], end=[4.0]) == [1.0]


def test_the_cli_prints_the_plugin_file_that_ms_swift_imports():
    import importlib.util
    from pathlib import Path

    from click.testing import CliRunner

    from vidspan.cli.main import cli

    result = CliRunner().invoke(cli, ["train", "swift-plugin"])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path.name == "swift_plugin.py" and path.is_file()
    spec = importlib.util.spec_from_file_location("external_plugin", path)  # as --external_plugins does
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "vidspan_iou" in module.register({})
