"""SFT on TRL through vidspan's own sampling and prompts: a few steps on real clips, then the result loads."""

from __future__ import annotations

import json
import math

import pytest

import vidspan
from vidspan.models import families
from vidspan.train.data import find_example, write_trl_jsonl

pytest.importorskip("trl")
from support.squares import QUERY, SAMPLING


def test_sft_steps_lower_the_loss_and_the_checkpoint_answers_through_find(
    tiny_model_dirs, square_clips, tmp_path
):
    from vidspan.train.sft import train_sft

    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(square_clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    result = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "sft", sampling=SAMPLING, max_steps=12,
                       learning_rate=3e-3)  # fmt: skip
    assert len(result.losses) == 12 and all(math.isfinite(x) for x in result.losses)
    assert sum(result.losses[-4:]) < sum(result.losses[:4])  # it learns the answer form
    header = json.loads((result.checkpoint / "header.json").read_text())
    assert header["kind"] == "train-sft" and header["status"] == "finished"
    assert header["identity"]["learning_rate"] == 3e-3 and header["identity"]["sampling"]["max_frames"] == 8
    log = [json.loads(line) for line in (result.checkpoint / "log.jsonl").read_text().splitlines()]
    assert [entry["loss"] for entry in log] == list(result.losses)
    hit = vidspan.find(square_clips[0][0], QUERY, str(result.checkpoint), max_new_tokens=20, max_frames=8,
                       max_pixels=64 * 64, min_pixels=32 * 32)  # fmt: skip
    assert hit.settings["checkpoint"] == str(result.checkpoint) and hit.settings["family"] == "marlin"
    assert hit.raw.startswith("From")  # the trained answer form, where the random model wrote noise


def test_lora_trains_only_adapters_and_merges_into_a_plain_checkpoint(
    tiny_model_dirs, square_clips, tmp_path
):
    import torch
    from safetensors.torch import load_file

    from vidspan.train.sft import train_sft

    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(square_clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    result = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "lora", sampling=SAMPLING, max_steps=6,
                       learning_rate=1e-2, lora_r=4)  # fmt: skip
    assert all(math.isfinite(x) for x in result.losses)
    before = load_file(str(tiny_model_dirs["marlin"] / "model.safetensors"))
    after = load_file(str(result.checkpoint / "model.safetensors"))
    assert not any("lora" in k for k in after)  # merged: a plain checkpoint
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert changed and not any("visual" in k for k in changed)  # the vision tower stayed frozen
    hit = vidspan.find(square_clips[0][0], QUERY, str(result.checkpoint), max_new_tokens=8, max_frames=8,
                       max_pixels=64 * 64, min_pixels=32 * 32)  # fmt: skip
    assert hit.settings["family"] == "marlin"


def test_an_interrupted_sft_run_resumes_from_its_last_checkpoint(tiny_model_dirs, square_clips, tmp_path):
    from vidspan.train.sft import train_sft

    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(square_clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    options = dict(sampling=SAMPLING, max_steps=6, save_steps=3, learning_rate=3e-3)
    first = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "run", **options)
    assert len(first.losses) == 6 and (tmp_path / "run" / "checkpoint-6").is_dir()
    # as if interrupted after step 3: the last checkpoint left is checkpoint-3
    import shutil

    shutil.rmtree(tmp_path / "run" / "checkpoint-6")
    # other answers in the same file: a fresh start would log other losses for steps 1-3
    other = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=0.0, end=4.0, duration=4.0)
             for i, (p, _, _) in enumerate(square_clips)]  # fmt: skip
    write_trl_jsonl(other, data)
    again = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "run", **options)
    assert len(again.losses) == 6
    assert again.losses[:3] == first.losses[:3]  # steps 1-3 came back with checkpoint-3, not re-run
    assert again.losses[3:] != first.losses[3:]  # steps 4-6 ran again, on the new answers
