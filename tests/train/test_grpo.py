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
    sft = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "sft", sampling=SAMPLING, max_steps=48,
                    learning_rate=3e-3)  # fmt: skip
    iou = Recording()
    result = train_grpo(data, sft.checkpoint, tmp_path / "grpo", [iou, FormatReward()], sampling=SAMPLING,
                        num_generations=4, prompts_per_step=2, max_steps=2, learning_rate=1e-4,
                        max_completion_length=20)  # fmt: skip
    assert len(iou.seen) == 16 and all(isinstance(t, str) and t for t in iou.seen)  # 2 steps x 2 groups x 4
    assert any(t.startswith("From") for t in iou.seen), iou.seen  # sampled from the SFT model, not made up
    assert all(math.isfinite(x) for x in result.rewards + result.losses)
    hit = vidspan.find(square_clips[0][0], QUERY, str(result.checkpoint), max_new_tokens=20, max_frames=8,
                       max_pixels=64 * 64, min_pixels=32 * 32)  # fmt: skip
    assert hit.settings["family"] == "marlin" and hit.raw
    with pytest.raises(ValueError, match="prompts_per_step"):
        train_grpo(data, sft.checkpoint, tmp_path / "bad", [iou], prompts_per_step=0)


class Interrupt(Exception):
    """Raised from the progress callback: the run stops as a killed one would, mid-way."""


def test_an_interrupted_grpo_run_resumes_after_its_last_state_with_the_same_draws(
    tiny_model_dirs, square_clips, tmp_path
):
    from vidspan.train.grpo import train_grpo

    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(square_clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    options = dict(sampling=SAMPLING, num_generations=3, max_steps=4, save_steps=2, learning_rate=1e-3,
                   max_completion_length=6)  # fmt: skip
    rewards = [TemporalIoUReward(), FormatReward()]
    whole = train_grpo(data, tiny_model_dirs["marlin"], tmp_path / "whole", rewards, **options)

    seen: list[int] = []

    def stop_at_3(done, total, message):
        seen.append(done)
        assert total == 4 and message.startswith("grpo: mean reward")
        if done == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_grpo(data, tiny_model_dirs["marlin"], tmp_path / "cut", rewards, progress=stop_at_3, **options)
    assert (tmp_path / "cut" / "state" / "state.json").is_file()  # written after step 2
    assert not (tmp_path / "cut" / "model.safetensors").exists()  # no final checkpoint from a cut run
    seen.clear()
    resumed = train_grpo(data, tiny_model_dirs["marlin"], tmp_path / "cut", rewards,
                         progress=lambda d, t, m: seen.append(d), **options)  # fmt: skip
    assert seen == [3, 4]  # steps 1-2 were not run again
    assert resumed.rewards == whole.rewards  # same random draws as the uninterrupted run
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-5)
    assert not (tmp_path / "cut" / "state").exists()  # dropped once the final checkpoint is whole
    header = (tmp_path / "cut" / "header.json").read_text()
    assert '"status": "finished"' in header
    seen.clear()
    again = train_grpo(data, tiny_model_dirs["marlin"], tmp_path / "cut", rewards,
                       progress=lambda d, t, m: seen.append(d), **options)  # fmt: skip
    assert seen == [] and again.rewards == whole.rewards  # a finished run trains no more


def test_sampled_completions_never_hold_vision_placeholders(tiny_model_dirs, square_clips):
    from vidspan.train.grpo import _sample, placeholder_ids
    from vidspan.train.loop import load_policy
    from vidspan.train.sft import VideoSftCollator

    vm = load_policy(tiny_model_dirs["marlin"], None, freeze_vision=True)
    ids = placeholder_ids(vm.model.config)
    assert vm.model.config.video_token_id in ids and vm.model.config.image_token_id in ids
    row = {"video": str(square_clips[0][0]), "prompt": vm.family.render_find_prompt(QUERY)}
    inputs = VideoSftCollator(vm, SAMPLING).prompt_inputs(row)
    completions = _sample(vm, inputs, 8, temperature=1.0, max_new_tokens=40)
    tokens = [t for c in completions for t in c]
    assert len(tokens) > 100  # the random model rambles: enough draws to have hit a placeholder
    assert not set(tokens) & set(ids)
