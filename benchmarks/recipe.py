"""The recipe, measured: base -> SFT -> GRPO -> SimPO on a synthetic grounding task, scored by vidspan eval.

The task: 8 s black clips in which a red square is visible for one whole-second span; the find query
names the square, and the caption answer is one Scene line and one timed event. Clips are split by video
into train and held-out. Each stage is scored on the held-out clips with ``run_grounding`` (the TimeLens
protocol, as ``vidspan eval grounding``), and the table is printed beside Marlin-2B's published SFT and
GRPO rows on Charades-TimeLens (a real benchmark: the comparison shows the shape of the recipe, not
comparable numbers). With ``--walkthrough`` the final checkpoint then runs the product from the command
line, in fresh processes: caption (and its HTML page) -> index -> search -> the served timeline page.

    python benchmarks/recipe.py                       # tiny random Marlin-shaped start, CPU
    python benchmarks/recipe.py --walkthrough         # ... then caption -> index -> search -> page
    python benchmarks/recipe.py --model DIR --device cuda
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/support: tiny checkpoints and the squares task
SCENE = "A black frame."
EVENT = "A red square is visible."


def make_task(root: Path, n_clips: int, held: int, seed: int) -> tuple[list, list]:
    """``n_clips`` clips with their spans, the last ``held`` of them held out."""
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
    return clips[:-held], clips[-held:]


def score(checkpoint: Path, held: list, root: Path, name: str, sampling, device: str | None) -> dict:
    """The held-out grounding metrics of ``checkpoint`` (``vidspan eval grounding``'s run, lenient)."""
    from support.squares import QUERY
    from vidspan.eval.grounding.datasets import load_benchmark
    from vidspan.eval.grounding.run import run_grounding

    annotations = root / "squares-timelens.json"
    if not annotations.exists():
        data = {p.stem: {"duration": 8.0, "spans": [[s, e]], "queries": [QUERY]} for p, s, e in held}
        annotations.write_text(json.dumps(data))
    bench = load_benchmark("charades-timelens", annotations, root / "clips")
    options = {"device": device} if device else {}
    run = run_grounding(bench, str(checkpoint), root / "runs" / name, sampling=sampling, max_new_tokens=20,
                        **options)  # fmt: skip
    return run.metrics["lenient"]["all"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Start checkpoint (default: a tiny random Marlin)")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: the backend's choice)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vidspan-recipe"))
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--sft-steps", type=int, default=1200)
    parser.add_argument("--sft-lr", type=float, default=5e-4)
    parser.add_argument("--grpo-steps", type=int, default=100)
    parser.add_argument("--grpo-lr", type=float, default=1e-4)
    parser.add_argument("--grpo-prompts", type=int, default=2, help="Groups per GRPO update")
    parser.add_argument("--grpo-find-only", action="store_true",
                        help="GRPO on the find rows only (captions then drift: see docs/training.md)")
    parser.add_argument("--simpo-steps", type=int, default=100)
    parser.add_argument("--simpo-lr", type=float, default=1e-5)
    parser.add_argument("--pair-prompts", type=int, default=64, help="Train prompts sampled for SimPO pairs")
    parser.add_argument("--walkthrough", action="store_true", help="Then run the product on the result")
    args = parser.parse_args()

    from support.squares import QUERY
    from vidspan.eval.grounding.published import reference_rows
    from vidspan.models import families
    from vidspan.train.data import TrainExample, caption_answer, find_example, write_trl_jsonl
    from vidspan.train.grpo import train_grpo
    from vidspan.train.rewards import FormatReward, TemporalIoUReward
    from vidspan.train.sft import train_sft
    from vidspan.train.simpo import make_pairs, train_simpo
    from vidspan.video import SamplingConfig

    root = args.out
    sampling = SamplingConfig(fps=2.0, max_frames=16, max_pixels=64 * 64, min_pixels=32 * 32)
    train, held = make_task(root, args.clips, args.held_out, seed=0)
    if args.model is None:
        from support.tiny_models import build_tiny_model

        args.model = str(build_tiny_model("marlin", root / "base"))
    finds = [find_example(families.MARLIN, id=str(i), video=p, query=QUERY, start=s, end=e, duration=8.0)
             for i, (p, s, e) in enumerate(train)]  # fmt: skip
    prompt = families.MARLIN.caption_prompt
    captions = [TrainExample(id=f"{i}#caption", video=str(p), task="caption", duration=8.0, prompt=prompt,
                             answer=caption_answer(SCENE, [(s, e, EVENT)]))
                for i, (p, s, e) in enumerate(train)]  # fmt: skip
    sft_data = write_trl_jsonl([x for pair in zip(finds, captions, strict=True) for x in pair],
                               root / "sft.jsonl")  # fmt: skip
    find_data = write_trl_jsonl(finds, root / "find.jsonl")
    rows, times = {}, {}
    rows["base"] = score(Path(args.model), held, root, "base", sampling, args.device)
    t0 = time.perf_counter()
    sft = train_sft(sft_data, args.model, root / "sft", sampling=sampling, max_steps=args.sft_steps,
                    learning_rate=args.sft_lr, device=args.device)  # fmt: skip
    times["SFT"] = time.perf_counter() - t0
    rows["SFT"] = score(sft.checkpoint, held, root, "sft", sampling, args.device)
    rewards = [TemporalIoUReward(), FormatReward()]
    t0 = time.perf_counter()
    grpo = train_grpo(find_data if args.grpo_find_only else sft_data, sft.checkpoint, root / "grpo", rewards,
                      sampling=sampling, num_generations=8, prompts_per_step=args.grpo_prompts,
                      max_steps=args.grpo_steps, learning_rate=args.grpo_lr,
                      max_completion_length=20 if args.grpo_find_only else 80,
                      device=args.device)  # fmt: skip
    times["GRPO"] = time.perf_counter() - t0
    rows["GRPO"] = score(grpo.checkpoint, held, root, "grpo", sampling, args.device)
    final = grpo.checkpoint
    t0 = time.perf_counter()
    subset = write_trl_jsonl(finds[: args.pair_prompts], root / "pair-prompts.jsonl")
    stats = make_pairs(subset, grpo.checkpoint, root / "pairs.jsonl", rewards, sampling=sampling,
                       num_samples=8, temperature=1.0, max_completion_length=20,
                       device=args.device)  # fmt: skip
    if stats.pairs:
        simpo = train_simpo(root / "pairs.jsonl", grpo.checkpoint, root / "simpo", sampling=sampling,
                            max_steps=args.simpo_steps, learning_rate=args.simpo_lr,
                            device=args.device)  # fmt: skip
        times["SimPO"] = time.perf_counter() - t0
        rows["SimPO"] = score(simpo.checkpoint, held, root, "simpo", sampling, args.device)
        final = simpo.checkpoint
    table = render_table(rows, times, reference_rows("charades-timelens"))
    summary = {"train_clips": len(train), "held_out_clips": len(held), "pairs": stats.pairs,
               "ties": stats.ties, "all_failed": stats.all_failed, "stages": rows,
               "seconds": times, "final": str(final)}  # fmt: skip
    (root / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"held-out: {len(held)} clips; train: {len(train)} clips (find + caption examples); pairs: "
          f"{stats.pairs} made, {stats.ties} ties, {stats.all_failed} all failed")
    print(table)
    if args.walkthrough:
        walkthrough(final, held, root)


def render_table(rows: dict, times: dict, published: list) -> str:
    """The stages' held-out metrics (percent) beside Marlin-2B's published Charades-TimeLens rows."""
    lines = ["| stage | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | wall time |", "|---|---:|---:|---:|---:|---:|"]
    for stage, m in rows.items():
        cells = " | ".join(f"{m[k]:.1f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"))
        seconds = f"{times[stage]:.0f} s" if stage in times else ""
        lines.append(f"| {stage} (squares, held-out) | {cells} | {seconds} |")
    for row in published:
        if row.model.startswith("Marlin-2B"):
            cells = " | ".join(f"{row.metrics[k]:.2f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"))
            lines.append(f"| {row.model} (Charades-TimeLens, published) | {cells} | |")
    return "\n".join(lines)


def walkthrough(checkpoint: Path, held: list, root: Path) -> None:
    """The product with the trained checkpoint, each step a fresh ``vidspan`` process, as a user runs it."""
    frames = ["--fps", "2", "--max-frames", "16", "--max-pixels", str(64 * 64), "--no-progress"]
    clip, start, end = held[0]
    library = root / "library.sqlite"
    library.unlink(missing_ok=True)
    folder = root / "walkthrough-clips"
    folder.mkdir(exist_ok=True)
    for path, _, _ in held[:5]:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path)
    steps = [
        ["caption", str(clip), "-m", str(checkpoint), *frames, "--html", str(root / "caption.html")],
        ["find", str(clip), "a red square is visible", "-m", str(checkpoint), *frames],
        ["index", str(folder), "--db", str(library), "-m", str(checkpoint), *frames],
        ["search", "red square", "--db", str(library), "--limit", "3"],
    ]
    print(f"\nwalkthrough on {clip.name} (the square is visible from {start:.0f} s to {end:.0f} s):")
    for step in steps:
        shown = shlex.join(["vidspan", *(Path(a).name if a.startswith(str(root)) else a for a in step)])
        out = subprocess.run([sys.executable, "-m", "vidspan", *step], capture_output=True, text=True)
        print(f"\n$ {shown}\n{out.stdout.rstrip()}")
        if out.returncode != 0:
            raise SystemExit(f"vidspan {step[0]} failed: {out.stderr.strip().splitlines()[-1]}")
    shot = screenshot_page(library, root / "timeline.png")
    if shot is not None:
        print(f"\nthe timeline page of the library (vidspan serve --db library.sqlite): {shot}")


def screenshot_page(library: Path, out: Path) -> Path | None:
    """Serve ``library`` with ``vidspan serve`` and screenshot its timeline page in headless Chromium."""
    import shutil
    import socket

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:  # scripts/install.sh installs it (Debian's package)
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "vidspan", "serve", "--db", str(library), "--port",
                               str(port), "--host", "127.0.0.1"], stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            for _ in range(100):
                try:
                    page.goto(f"http://127.0.0.1:{port}/#t=2")
                    break
                except Exception:  # the server is still starting
                    time.sleep(0.2)
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#search", "red square")
            page.press("#search", "Enter")
            page.wait_for_selector(".hit")
            page.wait_for_timeout(500)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return out


if __name__ == "__main__":
    main()
