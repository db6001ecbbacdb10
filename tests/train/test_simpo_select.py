"""Preference pairs from real sampled completions, SimPO steps that lower its loss, hard-sample selection."""

from __future__ import annotations

import json
import math

import pytest

import vidspan
from support.squares import QUERY, SAMPLING
from vidspan.models import families
from vidspan.train.data import find_example, write_trl_jsonl
from vidspan.train.rewards import FormatReward, TemporalIoUReward
from vidspan.train.select import gaussian_weight, select_hard

pytest.importorskip("trl")

# seed 0's pairs start at a SimPO loss of 3e-5 (already separated), which Adam's fixed-size steps cannot lower
SEED = 1


def test_simpo_loss_matches_its_formula():
    import torch

    from vidspan.train.simpo import simpo_loss

    value = simpo_loss(torch.tensor(-0.5), torch.tensor(-1.0), beta=2.0, gamma=0.5)
    assert float(value) == pytest.approx(-math.log(1 / (1 + math.exp(-(2.0 * 0.5 - 0.5)))))


def test_pairs_then_simpo(tiny_model_dirs, square_clips, tmp_path):
    from vidspan.train.sft import train_sft
    from vidspan.train.simpo import make_pairs, train_simpo

    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(square_clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    sft = train_sft(data, tiny_model_dirs["marlin"], tmp_path / "sft", sampling=SAMPLING, max_steps=48,
                    learning_rate=3e-3)  # fmt: skip
    rewards = [TemporalIoUReward(), FormatReward()]
    stats = make_pairs(data, sft.checkpoint, tmp_path / "pairs.jsonl", rewards, sampling=SAMPLING,
                       num_samples=8, temperature=1.5, max_completion_length=20, seed=SEED)  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert stats.pairs + stats.ties + stats.all_failed == len(examples) and len(rows) == stats.pairs
    for row in rows:
        assert row["chosen_score"] > row["rejected_score"] and row["margin"] > 0
    assert rows  # seeded sampling at temperature 1.5 gives groups whose best and worst differ
    result = train_simpo(tmp_path / "pairs.jsonl", sft.checkpoint, tmp_path / "simpo", sampling=SAMPLING,
                         max_steps=10, learning_rate=1e-3)  # fmt: skip
    assert all(math.isfinite(x) for x in result.losses)
    assert result.losses[-1] < result.losses[0]
    hit = vidspan.find(square_clips[0][0], QUERY, str(result.checkpoint), max_new_tokens=20, max_frames=8,
                       max_pixels=64 * 64, min_pixels=32 * 32)  # fmt: skip
    assert hit.settings["family"] == "marlin"


def test_selection_prefers_hard_examples_and_spreads_over_buckets():
    examples = [find_example(families.MARLIN, id=f"{i}", video=f"/v/{i}.mp4", query="q", start=0.0, end=1.0,
                             duration=10.0 + 40.0 * (i % 2)) for i in range(200)]  # fmt: skip
    ious = {f"{i}": (0.0 if i < 100 else 0.9) for i in range(200)}  # ids 0-99 hard, 100-199 easy
    chosen = select_hard(examples, ious, 40, seed=3)
    assert len(chosen) == 40
    assert sum(int(e.id) < 100 for e in chosen) >= 36  # weight 0.97 against 0.0001
    assert abs(sum(e.duration < 30 for e in chosen) - 20) <= 1  # both 30 s buckets equally
    assert gaussian_weight(0.05) == 1.0 and gaussian_weight(0.85) < 0.01


def test_select_from_a_real_grounding_run_keeps_the_missed_samples(square_clips, tmp_path):
    from support.squares import SAMPLING as sampling
    from vidspan.eval.grounding.datasets import load_benchmark
    from vidspan.eval.grounding.run import run_grounding
    from vidspan.testing.mock import MockVideoModel
    from vidspan.train.select import select_from_run
    from vidspan.train.sources import examples_from_benchmark

    annotations = tmp_path / "squares-timelens.json"
    annotations.write_text(json.dumps({p.stem: {"duration": 4.0, "spans": [[s, e]], "queries": [QUERY]}
                                       for p, s, e in square_clips}))  # fmt: skip
    bench = load_benchmark("charades-timelens", annotations, square_clips[0][0].parent)
    run_grounding(bench, MockVideoModel(["From 0.0 to 1.0."]), tmp_path / "run", sampling=sampling)
    examples, _ = examples_from_benchmark(bench, families.MARLIN)
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    kept = select_from_run(data, tmp_path / "run", tmp_path / "hard.jsonl", 2, seed=0)
    rows = [json.loads(line) for line in (tmp_path / "hard.jsonl").read_text().splitlines()]
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    missed = {r["id"] for r in records if r["iou"] == 0.0}
    assert kept == 2 and len(missed) == 3 and {r["id"] for r in rows} <= missed  # IoU 0 outweighs IoU 0.5
