"""The recipe, measured: base -> SFT -> GRPO -> SimPO on a synthetic grounding task, scored by vidspan eval.

The task: 8 s black clips in which a red square is visible for one whole-second span; the query names the
square. Clips are split by video into train and held-out. Each stage is scored on the held-out split with
``run_grounding`` (the TimeLens protocol, as ``vidspan eval grounding``), and the table is printed beside
Marlin-2B's published SFT and GRPO rows on Charades-TimeLens (a real benchmark: the comparison shows the
shape of the recipe, not comparable numbers).

    python benchmarks/recipe.py                       # tiny random Marlin-shaped start, CPU
    python benchmarks/recipe.py --model DIR --device cuda

Work in progress for issue [6].
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/support: tiny checkpoints and the squares task


def make_task(root: Path, n_clips: int, seed: int) -> tuple[list, list]:
    from support.squares import square_clip

    rng = random.Random(seed)
    clips = []
    for i in range(n_clips):
        start = rng.randint(0, 5)
        end = rng.randint(start + 1, 8)
        path = root / "clips" / f"square{i:04d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            square_clip(path, start, end, duration=8.0)
        clips.append((path, float(start), float(end)))
    held = max(8, n_clips // 10)
    return clips[:-held], clips[-held:]


def score(checkpoint: Path, held: list, root: Path, name: str, sampling) -> dict:
    from support.squares import QUERY
    from vidspan.eval.grounding.datasets import load_benchmark
    from vidspan.eval.grounding.run import run_grounding

    annotations = root / "squares-timelens.json"
    if not annotations.exists():
        data = {p.stem: {"duration": 8.0, "spans": [[s, e]], "queries": [QUERY]} for p, s, e in held}
        annotations.write_text(json.dumps(data))
    bench = load_benchmark("charades-timelens", annotations, root / "clips")
    run = run_grounding(bench, str(checkpoint), root / "runs" / name, sampling=sampling, max_new_tokens=20)
    return run.metrics["lenient"]["all"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Start checkpoint (default: a tiny random Marlin)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vidspan-recipe"))
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--sft-steps", type=int, default=3000)
    parser.add_argument("--grpo-steps", type=int, default=100)
    parser.add_argument("--simpo-steps", type=int, default=100)
    parser.add_argument("--pair-prompts", type=int, default=48, help="Train prompts sampled for SimPO pairs")
    args = parser.parse_args()

    from support.squares import QUERY
    from vidspan.eval.grounding.published import reference_rows
    from vidspan.models import families
    from vidspan.train.data import find_example, write_trl_jsonl
    from vidspan.train.grpo import train_grpo
    from vidspan.train.rewards import FormatReward, TemporalIoUReward
    from vidspan.train.sft import train_sft
    from vidspan.train.simpo import make_pairs, train_simpo
    from vidspan.video import SamplingConfig

    root = args.out
    sampling = SamplingConfig(fps=2.0, max_frames=16, max_pixels=64 * 64, min_pixels=32 * 32)
    train, held = make_task(root, args.clips, seed=0)
    if args.model is None:
        from support.tiny_models import build_tiny_model

        args.model = str(build_tiny_model("marlin", root / "base"))
    examples = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=8.0)
                for i, (p, s, e) in enumerate(train)]  # fmt: skip
    data = write_trl_jsonl(examples, root / "train.jsonl")
    rows, times = {}, {}
    rows["base"] = score(Path(args.model), held, root, "base", sampling)
    t0 = time.perf_counter()
    sft = train_sft(data, args.model, root / "sft", sampling=sampling, max_steps=args.sft_steps,
                    learning_rate=5e-4, device=args.device)  # fmt: skip
    times["sft"] = time.perf_counter() - t0
    rows["sft"] = score(sft.checkpoint, held, root, "sft", sampling)
    rewards = [TemporalIoUReward(), FormatReward()]
    t0 = time.perf_counter()
    grpo = train_grpo(data, sft.checkpoint, root / "grpo", rewards, sampling=sampling, num_generations=8,
                      max_steps=args.grpo_steps, learning_rate=1e-5, max_completion_length=20,
                      device=args.device)  # fmt: skip
    times["grpo"] = time.perf_counter() - t0
    rows["grpo"] = score(grpo.checkpoint, held, root, "grpo", sampling)
    t0 = time.perf_counter()
    subset = write_trl_jsonl(examples[: args.pair_prompts], root / "pair-prompts.jsonl")
    stats = make_pairs(subset, grpo.checkpoint, root / "pairs.jsonl", rewards, sampling=sampling,
                       num_samples=8, temperature=1.0, max_completion_length=20,
                       device=args.device)  # fmt: skip
    if stats.pairs:
        simpo = train_simpo(root / "pairs.jsonl", grpo.checkpoint, root / "simpo", sampling=sampling,
                            max_steps=args.simpo_steps, learning_rate=1e-6, device=args.device)  # fmt: skip
        times["simpo"] = time.perf_counter() - t0
        rows["simpo"] = score(simpo.checkpoint, held, root, "simpo", sampling)
    print(f"held-out: {len(held)} clips; train: {len(train)}; pairs: {stats}")
    print("| stage | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | train time |")
    print("|---|---:|---:|---:|---:|---:|")
    for stage, m in rows.items():
        cells = " | ".join(f"{m[k]:.1f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"))
        print(f"| {stage} | {cells} | {times.get(stage, 0):.0f} s |")
    for row in reference_rows("charades-timelens"):
        if row.model.startswith("Marlin-2B"):
            cells = " | ".join(f"{row.metrics[k]:.2f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"))
            print(f"| {row.model} (Charades-TimeLens, published) | {cells} | |")


if __name__ == "__main__":
    main()
