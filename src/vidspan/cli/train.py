"""``vidspan train`` and ``vidspan annotate``: data, teacher captions and the three trainers of the recipe."""

from __future__ import annotations

import json
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.main import CONTEXT_SETTINGS


@click.group("train", context_settings=CONTEXT_SETTINGS)
def train_group() -> None:
    """The SFT -> GRPO -> SimPO recipe: training sets, sample selection, pairs and the three trainers."""


@train_group.command("data")
@click.option(
    "--bench", default=None,
    help="A grounding benchmark (find rows) or caption benchmark (dream1k, carebench: reward-only caption "
         "rows for GRPO/pairs with --reward caption).",
)  # fmt: skip
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
        from vidspan.eval.benchmark import benchmark_specs, load_benchmark
        from vidspan.train.sources import examples_from_caption_benchmark

        if bench in benchmark_specs("captions"):  # DREAM-1K, CaReBench: reward-only caption rows
            loaded = load_benchmark(bench, annotations, videos, kind="captions")
            examples, bad = examples_from_caption_benchmark(loaded, fam)
        else:
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


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--config FILE``: YAML or JSON option values become the command's defaults (the command line wins)."""
    if value is None:
        return
    from pathlib import Path

    text = Path(value).read_text(encoding="utf-8")
    kind = "YAML" if value.endswith((".yaml", ".yml")) else "JSON"
    try:
        if kind == "YAML":
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError: one readable line either way
        raise click.BadParameter(f"{value} is not valid {kind} ({str(exc).splitlines()[0]}).") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{value} must hold a mapping of option names to values.")
    names = {}
    for option in ctx.command.params:
        if option.name is None or option.name == "config":
            continue
        names[option.name] = option.name
        for flag in option.opts:
            names[flag.lstrip("-").replace("-", "_")] = option.name
    unknown = sorted(k for k in data if str(k).replace("-", "_") not in names)
    if unknown:
        raise click.BadParameter(f"{value}: unknown option(s) {', '.join(map(str, unknown))}.")
    ctx.default_map = {names[str(k).replace("-", "_")]: v for k, v in data.items()}


def _progress(no_progress: bool) -> object:
    from vidspan.cli.ask import ProgressPrinter

    return ProgressPrinter(not no_progress)


def _common(f: object) -> object:
    for option in reversed((
        click.option("--config", type=click.Path(exists=True, dir_okay=False), is_eager=True,
                     expose_value=False, callback=_load_config,
                     help="YAML or JSON of option values (keys: option names, e.g. lr: 5e-4); the command "
                          "line wins. Every setting is recorded in OUT/header.json."),
        click.option("-m", "--model", "model", required=True, help="Start checkpoint directory."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                     help="Run directory; the trained checkpoint is saved here. Run again to resume."),
        click.option("--fps", type=float, default=None, help="Sampling rate [default: 2.0]."),
        click.option("--max-frames", type=int, default=None, help="Most frames per video [default: 240]."),
        click.option("--max-pixels", type=int, default=None, help="Pixels per frame [default: 200704]."),
        click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate."),
        click.option("--max-steps", type=int, default=100, show_default=True),
        click.option("--save-steps", type=int, default=50, show_default=True,
                     help="A resumable checkpoint every this many steps."),
        click.option("--freeze-vision/--train-vision", default=True, show_default=True,
                     help="Keep the vision tower's weights fixed."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: the backend's choice)."),
        click.option("--no-progress", is_flag=True, help="Do not print progress to stderr."),
    )):  # fmt: skip
        f = option(f)
    return f


def _rewards(names: tuple[str, ...], model: str, judge: str | None, judge_base_url: str | None) -> list:
    """The reward functions named on the command line, in the answer format of ``model``'s family."""
    from vidspan.models.registry import resolve
    from vidspan.train.rewards import CaptionQualityReward, FormatReward, TemporalIoUReward

    output_format = resolve(model).family.output_format
    rewards = []
    for name in names:
        if name == "iou":
            rewards.append(TemporalIoUReward(output_format))
        elif name == "format":
            rewards.append(FormatReward(output_format))
        else:
            if judge is None:
                raise click.UsageError("--reward caption needs --judge BACKEND:MODEL (the AutoDQ judge).")
            from vidspan.judge import get_judge

            options = {"base_url": judge_base_url} if judge_base_url else {}
            rewards.append(CaptionQualityReward(get_judge(judge, **options)))
    return rewards


REWARD = click.option("--reward", "reward_names", type=click.Choice(["iou", "format", "caption"]),
                      multiple=True, default=("iou", "format"), show_default=True,
                      help="Rewards to sum (repeat the option); caption: AutoDQ event F1 by --judge against "
                           "the rows' reference captions.")  # fmt: skip
JUDGE = click.option("--judge", default=None, help="The caption reward's judge, BACKEND:MODEL.")
JUDGE_URL = click.option("--judge-base-url", default=None, help="OpenAI-compatible server of the judge.")


@train_group.command("sft")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@_common
@click.option("--epochs", type=float, default=1.0, show_default=True, help="Used when --max-steps is -1.")
@click.option("--grad-accum", "gradient_accumulation_steps", type=int, default=1, show_default=True,
              help="Gradient accumulation steps (a batch holds one video).")  # fmt: skip
@click.option("--lora-r", type=int, default=None, help="Train LoRA adapters of this rank (merged on save).")
@click.option("--activation-checkpointing/--no-activation-checkpointing", default=None,
              help="Recompute activations to save memory [default: on for GPUs, off on CPU].")  # fmt: skip
def sft_command(data: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                max_pixels: int | None, learning_rate: float | None, max_steps: int, save_steps: int,
                freeze_vision: bool, seed: int, device: str | None, no_progress: bool, epochs: float,
                gradient_accumulation_steps: int, lora_r: int | None,
                activation_checkpointing: bool | None) -> None:  # fmt: skip
    """Supervised fine-tuning on a TRL JSONL from 'vidspan train data' (TRL's SFTTrainer).

    Example:

        vidspan train sft data/train.trl.jsonl -m /models/base --out runs/sft --lr 5e-4 --max-steps 3000
    """
    from vidspan.train.sft import train_sft

    result = train_sft(data, model, out_dir, sampling=_sampling(fps, max_frames, max_pixels),
                       max_steps=max_steps, learning_rate=learning_rate or 2e-4, save_steps=save_steps,
                       freeze_vision=freeze_vision, seed=seed, device=device, epochs=epochs,
                       gradient_accumulation_steps=gradient_accumulation_steps, lora_r=lora_r,
                       activation_checkpointing=activation_checkpointing,
                       progress=_progress(no_progress))  # fmt: skip
    click.echo(json.dumps({"checkpoint": str(result.checkpoint), "final_loss": result.losses[-1]}))


@train_group.command("grpo")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@_common
@click.option("--num-generations", type=int, default=8, show_default=True, help="Completions per prompt.")
@click.option("--prompts-per-step", type=int, default=1, show_default=True,
              help="Groups averaged into one update.")  # fmt: skip
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Rollout temperature.")
@click.option("--max-completion-length", type=int, default=32, show_default=True, help="Tokens per rollout.")
@REWARD
@JUDGE
@JUDGE_URL
def grpo_command(data: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                 max_pixels: int | None, learning_rate: float | None, max_steps: int, save_steps: int,
                 freeze_vision: bool, seed: int, device: str | None, no_progress: bool, num_generations: int,
                 prompts_per_step: int, temperature: float, max_completion_length: int,
                 reward_names: tuple[str, ...],
                 judge: str | None, judge_base_url: str | None) -> None:  # fmt: skip
    """GRPO with summed rewards (default: temporal IoU + format; TimeLens' thinking-free recipe, beta 0).

    Example:

        vidspan train grpo data/train.trl.jsonl -m runs/sft --out runs/grpo --num-generations 8
    """
    from vidspan.train.grpo import train_grpo

    result = train_grpo(data, model, out_dir, _rewards(reward_names, model, judge, judge_base_url),
                        sampling=_sampling(fps, max_frames, max_pixels), num_generations=num_generations,
                        prompts_per_step=prompts_per_step, temperature=temperature,
                        max_completion_length=max_completion_length,
                        max_steps=max_steps, learning_rate=learning_rate or 1e-6, save_steps=save_steps,
                        freeze_vision=freeze_vision, seed=seed, device=device,
                        progress=_progress(no_progress))  # fmt: skip
    click.echo(json.dumps({"checkpoint": str(result.checkpoint), "final_mean_reward": result.rewards[-1]}))


@train_group.command("pairs")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("-m", "--model", "model", required=True, help="The checkpoint that samples the completions.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="The pairs JSONL.")
@click.option("--num-samples", type=int, default=8, show_default=True, help="Completions sampled per prompt.")
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--max-completion-length", type=int, default=32, show_default=True)
@click.option("--fps", type=float, default=None, help="Sampling rate [default: 2.0].")
@click.option("--max-frames", type=int, default=None, help="Most frames per video [default: 240].")
@click.option("--max-pixels", type=int, default=None, help="Pixels per frame [default: 200704].")
@REWARD
@JUDGE
@JUDGE_URL
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: the backend's choice).")
@click.option("--no-progress", is_flag=True, help="Do not print progress to stderr.")
@options.apply(options.RAY)
def pairs_command(data: str, model: str, out_path: str, num_samples: int, temperature: float,
                  max_completion_length: int, fps: float | None, max_frames: int | None,
                  max_pixels: int | None, reward_names: tuple[str, ...], judge: str | None,
                  judge_base_url: str | None, seed: int, device: str | None,
                  no_progress: bool, **params: Any) -> None:  # fmt: skip
    """Sample completions, score them with the rewards and write chosen/rejected pairs (SimPO, DPO).

    Ties and groups in which every completion failed are dropped and counted. Each prompt is seeded by
    --seed and its position, so --ray (one policy per Ray actor) writes the same file. Example:

        vidspan train pairs data/train.trl.jsonl -m runs/grpo --out runs/pairs.jsonl
    """
    from vidspan.train.simpo import make_pairs

    stats = make_pairs(data, model, out_path, _rewards(reward_names, model, judge, judge_base_url),
                       sampling=_sampling(fps, max_frames, max_pixels), num_samples=num_samples,
                       temperature=temperature, max_completion_length=max_completion_length, seed=seed,
                       device=device, progress=_progress(no_progress),
                       ray=options.ray_options(params))  # fmt: skip
    click.echo(json.dumps({"pairs": stats.pairs, "ties": stats.ties, "all_failed": stats.all_failed,
                           "out": out_path}))  # fmt: skip


@train_group.command("simpo")
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False))
@_common
@click.option("--beta", type=float, default=2.0, show_default=True)
@click.option("--gamma", type=float, default=0.5, show_default=True)
def simpo_command(pairs: str, model: str, out_dir: str, fps: float | None, max_frames: int | None,
                  max_pixels: int | None, learning_rate: float | None, max_steps: int, save_steps: int,
                  freeze_vision: bool, seed: int, device: str | None, no_progress: bool, beta: float,
                  gamma: float) -> None:  # fmt: skip
    """SimPO on chosen/rejected pairs from 'vidspan train pairs' (length-normalised, no reference model).

    Example:

        vidspan train simpo runs/pairs.jsonl -m runs/grpo --out runs/simpo
    """
    from vidspan.train.simpo import train_simpo

    result = train_simpo(pairs, model, out_dir, sampling=_sampling(fps, max_frames, max_pixels), beta=beta,
                         gamma=gamma, learning_rate=learning_rate or 1e-6, max_steps=max_steps,
                         save_steps=save_steps, freeze_vision=freeze_vision, seed=seed, device=device,
                         progress=_progress(no_progress))  # fmt: skip
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
@click.option("--judge", default=None,
              help="Check every caption's events against the video with this judge (BACKEND:MODEL).")
@click.option("--judge-base-url", default=None, help="OpenAI-compatible server of the judge.")
@click.option("--judge-runs", type=int, default=1, show_default=True,
              help="Judge runs per caption; an event is contradicted when all agree.")
@click.option("--on-contradicted", type=click.Choice(["drop", "flag"]), default="drop", show_default=True,
              help="Drop contradicted events, or keep them flagged (left out of find examples).")
@options.apply(options.RAY, options.RAY_VLLM)
def annotate_command(videos: str, model: str, base_url: str | None, family: str | None, out_dir: str,
                     attempts: int, max_frames: int | None, judge: str | None, judge_base_url: str | None,
                     judge_runs: int, on_contradicted: str, **params: Any) -> None:  # fmt: skip
    """Caption every video in VIDEOS (a folder or a file) with a teacher model, checked by the strict parser.

    Resumable: running again retries only the videos that failed. Example:

        vidspan annotate clips/ -m qwen3-vl-8b --base-url http://localhost:8000/v1 --out teacher/
    """
    from vidspan.train.annotate import annotate_videos

    ray = options.ray_options(params)
    checker = None
    if judge is not None:
        from vidspan.judge import get_judge

        checker = get_judge(judge, **({"base_url": judge_base_url} if judge_base_url else {}))
    summary = annotate_videos(videos, model, out_dir, attempts=attempts, base_url=base_url, family=family,
                              max_frames=max_frames, judge=checker, judge_runs=judge_runs,
                              on_contradicted=on_contradicted, ray=ray)  # fmt: skip
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


@train_group.command("swift-plugin")
def swift_plugin_command() -> None:
    """Print the path of vidspan's ms-swift reward plugin, for ``swift rlhf --external_plugins``."""
    import vidspan.train.swift_plugin as plugin

    click.echo(plugin.__file__)
