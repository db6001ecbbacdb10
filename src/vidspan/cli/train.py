"""``vidspan train``: training data (and, as they land, the trainers) for the SFT -> GRPO -> SimPO recipe."""

from __future__ import annotations

import json

import click

from vidspan.cli.main import CONTEXT_SETTINGS


@click.group("train", context_settings=CONTEXT_SETTINGS)
def train_group() -> None:
    """Turn annotations into training sets in a model family's exact format (more commands to come)."""


@train_group.command("data")
@click.option(
    "--bench", default=None, help="A grounding benchmark name (see 'vidspan eval grounding --help')."
)
@click.option("--annotations", type=click.Path(dir_okay=False), default=None, help="The benchmark's file.")
@click.option("--jsonl", "jsonl", type=click.Path(dir_okay=False), default=None,
              help="A plain JSONL of {video, start, end, text} instead of a benchmark.")  # fmt: skip
@click.option(
    "--caption-run",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A 'vidspan eval generate-captions' run (with --videos).",
)
@click.option(
    "--annotate-run",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A 'vidspan annotate' run.",
)
@click.option("--videos", type=click.Path(file_okay=False), default=None, help="Folder holding the videos.")
@click.option("--family", default="marlin", show_default=True, help="marlin, timelens, qwen3-vl, ...")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--split", "split", default="train=0.9,val=0.1", show_default=True, help="Split fractions by video."
)
@click.option("--format", "formats", default="trl,swift,hf", show_default=True, help="trl, swift, hf.")
@click.option("--seed", type=int, default=0, show_default=True)
def data_command(bench: str | None, annotations: str | None, jsonl: str | None, caption_run: str | None,
                 annotate_run: str | None, videos: str | None, family: str, out_dir: str, split: str,
                 formats: str, seed: int) -> None:  # fmt: skip
    """Write a training set from a benchmark, a plain JSONL, a caption run or an annotate run (summary: JSON).

    Example:

        vidspan train data --jsonl labels.jsonl --videos clips/ --family marlin --out data/
    """
    from vidspan.train.build import write_dataset
    from vidspan.train.sources import examples_from_benchmark, examples_from_caption_run, examples_from_jsonl

    sources = [x for x in (bench, jsonl, caption_run, annotate_run) if x is not None]
    if len(sources) != 1:
        raise click.UsageError(
            "Give one source: --bench with --annotations, --jsonl, --caption-run or --annotate-run."
        )
    from vidspan.models.families import FAMILIES

    fam = FAMILIES.get(family.strip().lower())
    if fam is None:
        raise click.BadParameter(f"Unknown family {family!r}. Choose one of: {', '.join(FAMILIES)}.")
    if jsonl is not None:
        examples, bad = examples_from_jsonl(jsonl, fam, videos)
    elif caption_run is not None:
        if videos is None:
            raise click.UsageError("--caption-run needs --videos (the benchmark's video folder).")
        examples, bad = examples_from_caption_run(caption_run, fam, videos)
    elif annotate_run is not None:
        from vidspan.train.annotate import examples_from_annotations

        examples, bad = examples_from_annotations(annotate_run, fam)
    else:
        if annotations is None or videos is None:
            raise click.UsageError("--bench needs --annotations and --videos.")
        from vidspan.eval.grounding.datasets import load_benchmark

        examples, bad = examples_from_benchmark(load_benchmark(bench, annotations, videos), fam)
    fractions = {}
    for part in split.split(","):
        name, _, value = part.partition("=")
        try:
            fractions[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"Invalid split part {part!r}. It must be NAME=FRACTION.") from None
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    summary = write_dataset(examples, bad, out_dir, family=fam, fractions=fractions, formats=chosen,
                            seed=seed)  # fmt: skip
    for row in bad[:20]:
        click.echo(f"skipped {row.id} ({row.video or '-'}): {row.reason}", err=True)
    if len(bad) > 20:
        click.echo(f"... and {len(bad) - 20} more rows skipped (see bad_rows.jsonl)", err=True)
    click.echo(json.dumps(summary, indent=2))


def _sampling(fps: float | None, max_frames: int | None, max_pixels: int | None) -> object:
    from vidspan.video import SamplingConfig

    options = {k: v for k, v in (("fps", fps), ("max_frames", max_frames), ("max_pixels", max_pixels)) if v}
    return SamplingConfig(**options)


def _common(f: object) -> object:
    for option in reversed((
        click.option("-m", "--model", "model", required=True, help="Start checkpoint directory."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                     help="Run directory; the trained checkpoint is saved here."),
        click.option("--fps", type=float, default=None, help="Sampling rate [default: 2.0]."),
        click.option("--max-frames", type=int, default=None, help="Most frames per video [default: 240]."),
        click.option("--max-pixels", type=int, default=None, help="Pixels per frame [default: 200704]."),
        click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate."),
        click.option("--max-steps", type=int, default=100, show_default=True),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: the backend's choice)."),
    )):  # fmt: skip
        f = option(f)
    return f


@train_group.command("sft")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@_common
def sft_command(data: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                max_pixels: int | None, learning_rate: float | None, max_steps: int,
                device: str | None) -> None:  # fmt: skip
    """Supervised fine-tuning on a TRL JSONL from 'vidspan train data' (TRL's SFTTrainer)."""
    from vidspan.train.sft import train_sft

    result = train_sft(data, model, out_dir, sampling=_sampling(fps, max_frames, max_pixels),
                       max_steps=max_steps, learning_rate=learning_rate or 2e-4, device=device)  # fmt: skip
    click.echo(json.dumps({"checkpoint": str(result.checkpoint), "final_loss": result.losses[-1]}))


@train_group.command("grpo")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@_common
@click.option("--num-generations", type=int, default=8, show_default=True)
def grpo_command(data: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                 max_pixels: int | None, learning_rate: float | None, max_steps: int, device: str | None,
                 num_generations: int) -> None:  # fmt: skip
    """GRPO with the temporal-IoU and format rewards (TimeLens' thinking-free recipe, beta 0)."""
    from vidspan.train.grpo import train_grpo
    from vidspan.train.rewards import FormatReward, TemporalIoUReward

    result = train_grpo(data, model, out_dir, [TemporalIoUReward(), FormatReward()],
                        sampling=_sampling(fps, max_frames, max_pixels), num_generations=num_generations,
                        max_steps=max_steps, learning_rate=learning_rate or 1e-6, device=device)  # fmt: skip
    click.echo(json.dumps({"checkpoint": str(result.checkpoint), "final_mean_reward": result.rewards[-1]}))


@train_group.command("pairs")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@_common
@click.option("--num-samples", type=int, default=8, show_default=True, help="Completions sampled per prompt.")
def pairs_command(data: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                  max_pixels: int | None, learning_rate: float | None, max_steps: int, device: str | None,
                  num_samples: int) -> None:  # fmt: skip
    """Sample completions, score them (IoU + format) and write chosen/rejected pairs to OUT/pairs.jsonl."""
    from pathlib import Path

    from vidspan.train.rewards import FormatReward, TemporalIoUReward
    from vidspan.train.simpo import make_pairs

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    stats = make_pairs(data, model, Path(out_dir) / "pairs.jsonl", [TemporalIoUReward(), FormatReward()],
                       sampling=_sampling(fps, max_frames, max_pixels), num_samples=num_samples,
                       device=device)  # fmt: skip
    click.echo(json.dumps({"pairs": stats.pairs, "ties": stats.ties, "all_failed": stats.all_failed}))


@train_group.command("simpo")
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False))
@_common
@click.option("--beta", type=float, default=2.0, show_default=True)
@click.option("--gamma", type=float, default=0.5, show_default=True)
def simpo_command(pairs: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                  max_pixels: int | None, learning_rate: float | None, max_steps: int, device: str | None,
                  beta: float, gamma: float) -> None:  # fmt: skip
    """SimPO on chosen/rejected pairs from 'vidspan train pairs' (length-normalised, no reference model)."""
    from vidspan.train.simpo import train_simpo

    result = train_simpo(pairs, model, out_dir, sampling=_sampling(fps, max_frames, max_pixels), beta=beta,
                         gamma=gamma, learning_rate=learning_rate or 1e-6, max_steps=max_steps,
                         device=device)  # fmt: skip
    click.echo(json.dumps({"checkpoint": str(result.checkpoint), "final_loss": result.losses[-1]}))


@click.command("annotate", context_settings=CONTEXT_SETTINGS)
@click.argument("videos", type=click.Path(exists=True))
@click.option(
    "-m", "--model", "model", required=True, help="The teacher: model name, checkpoint or served model."
)
@click.option("--base-url", default=None, help="An OpenAI-compatible server for the teacher (vLLM, ...).")
@click.option("--family", default=None, help="The teacher's family when served (marlin, qwen3-vl, ...).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--attempts", type=int, default=3, show_default=True, help="Asks per video before it fails.")
@click.option("--max-frames", type=int, default=None, help="Most frames per window [default: 240].")
def annotate_command(videos: str, model: str, base_url: str | None, family: str | None, out_dir: str,
                     attempts: int, max_frames: int | None) -> None:  # fmt: skip
    """Caption every video in VIDEOS (a folder or a file) with a teacher model, checked by the strict parser.

    Resumable: running again retries only the videos that failed. Example:

        vidspan annotate clips/ -m qwen3-vl-8b --base-url http://localhost:8000/v1 --out teacher/
    """
    from vidspan.train.annotate import annotate_videos

    summary = annotate_videos(videos, model, out_dir, attempts=attempts, base_url=base_url, family=family,
                              max_frames=max_frames)  # fmt: skip
    click.echo(json.dumps({"directory": str(summary.directory), "annotated": summary.annotated,
                           "already_done": summary.already_done, "failed": summary.failed}))  # fmt: skip
    if summary.failed:
        click.echo(f"{summary.failed} video(s) failed; run again to retry them", err=True)


@train_group.command("select")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="A grounding run of the model over the same samples (the offline pass).")  # fmt: skip
@click.option("--count", type=int, required=True, help="How many rows to keep.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="The selected rows.")
@click.option("--mean", type=float, default=0.05, show_default=True, help="Centre of the Gaussian over IoU.")
@click.option("--std", type=float, default=0.2, show_default=True, help="Width of the Gaussian over IoU.")
@click.option("--seed", type=int, default=0, show_default=True)
def select_command(data: str, run_dir: str, count: int, out_path: str, mean: float, std: float,
                   seed: int) -> None:  # fmt: skip
    """Keep the hard samples (TimeLens): a Gaussian over the run's IoU, balanced over 30 s buckets."""
    from vidspan.train.select import select_from_run

    kept = select_from_run(data, run_dir, out_path, count, mean=mean, std=std, seed=seed)
    click.echo(json.dumps({"selected": kept, "out": out_path}))
