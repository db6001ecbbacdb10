"""vidspan train pairs on a real local Ray cluster: one tiny Marlin-shaped policy per actor samples the
prompts, and the pairs file is the one a single process writes (per-prompt seeds, rows in input order)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")
pytest.importorskip("trl")

from support.ray_jobs import distinct_letters_reward  # noqa: E402
from support.squares import QUERY, SAMPLING, square_clip  # noqa: E402
from vidspan.models import families  # noqa: E402
from vidspan.scale import RayOptions  # noqa: E402
from vidspan.train.data import find_example, write_trl_jsonl  # noqa: E402
from vidspan.train.rewards import FormatReward, TemporalIoUReward  # noqa: E402


def test_pairs_on_ray_equal_the_single_process_file(ray_cluster, tiny_model_dirs, tmp_path):
    from vidspan.train.simpo import make_pairs

    spans = [(0, 2), (1, 3), (2, 4), (1, 2), (0, 3)]
    clips = [(square_clip(tmp_path / f"sq{i}.mp4", s, e), s, e) for i, (s, e) in enumerate(spans)]
    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=4.0)
                for i, (p, s, e) in enumerate(clips)]  # fmt: skip
    data = write_trl_jsonl(examples, tmp_path / "train.jsonl")
    # the real rewards, and one that tells a random policy's completions apart (so there are pairs)
    rewards = [TemporalIoUReward(), FormatReward(), distinct_letters_reward]
    common = {"sampling": SAMPLING, "num_samples": 4, "temperature": 1.5, "max_completion_length": 12,
              "seed": 3}  # fmt: skip
    model = tiny_model_dirs["marlin"]
    one = make_pairs(data, model, tmp_path / "one.jsonl", rewards, **common)
    seen = []
    ray = RayOptions(workers=2, num_cpus=0.5, decode_cpus=0.5)
    on_ray = make_pairs(data, model, tmp_path / "ray.jsonl", rewards, ray=ray,
                        progress=lambda done, total, _m: seen.append((done, total)), **common)  # fmt: skip
    assert on_ray == one
    assert one.pairs + one.ties + one.all_failed == len(spans)
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
    assert seen[-1] == (5, 5)
    rows = [json.loads(x) for x in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), key=int)  # input order
    assert not (tmp_path / "ray.jsonl.tmp").exists()
    assert one.pairs >= 1, one  # there is something to compare
