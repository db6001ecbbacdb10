"""GRPO on video: rewards are called on the model's real sampled completions and the result loads."""

from __future__ import annotations

import math

import pytest

import vidspan
from support.squares import QUERY, SAMPLING
from vidspan.models import families
from vidspan.train.data import find_example, write_trl_jsonl
from vidspan.train.grpo import group_advantages
from vidspan.train.rewards import FormatReward, TemporalIoUReward

pytest.importorskip("trl")


def test_group_advantages_are_standardised_within_the_group():
    assert group_advantages([1.0, 1.0, 1.0]) == [0.0, 0.0, 0.0]
    adv = group_advantages([0.0, 1.0])
    assert adv[0] == pytest.approx(-1.0, abs=1e-3) and adv[1] == pytest.approx(1.0, abs=1e-3)


class Recording(TemporalIoUReward):
    """The real IoU reward, keeping every completion it was asked to score."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __call__(self, prompts, completions, **columns):
        self.seen += list(completions)
        return super().__call__(prompts, completions, **columns)


def test_grpo_scores_real_completions_and_the_checkpoint_answers(tiny_model_dirs, square_clips, tmp_path):
    from vidspan.train.grpo import train_grpo
    from vidspan.train.sft import train_sft

    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(square_clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    sft = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "sft", sampling=SAMPLING, max_steps=24,
                    learning_rate=3e-3)  # fmt: skip
    iou = Recording()
    result = train_grpo(data, sft.checkpoint, tmp_path / "grpo", [iou, FormatReward()], sampling=SAMPLING,
                        num_generations=4, max_steps=3, learning_rate=1e-4,
                        max_completion_length=20)  # fmt: skip
    assert len(iou.seen) == 12 and all(isinstance(t, str) and t for t in iou.seen)
    assert any(t.startswith("From") for t in iou.seen)  # sampled from the SFT model, not made up
    assert all(math.isfinite(x) for x in result.rewards + result.losses)
    hit = vidspan.find(square_clips[0][0], QUERY, str(result.checkpoint), max_new_tokens=20, max_frames=8,
                       max_pixels=64 * 64, min_pixels=32 * 32)  # fmt: skip
    assert hit.settings["family"] == "marlin" and hit.raw
