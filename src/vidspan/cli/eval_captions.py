"""``vidspan eval generate-captions | captions | audit | compare-captions``: dense-caption evaluation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import ProgressPrinter

HELP = {"help_option_names": ["-h", "--help"]}
F = Callable[..., Any]

BENCH = options.apply(
    click.option("--bench", required=True, help="dream1k, carebench, or jsonl ({video, caption[, events]})."),
    click.option("--annotations", type=click.Path(dir_okay=False), required=True,
                 help="The benchmark's annotation file."),
    click.option("--videos", type=click.Path(file_okay=False), default=None,
                 help="Folder holding the videos (directly or one subfolder deep)."),
)  # fmt: skip

JUDGE = options.apply(
    click.option("--judge", "judge_spec", envvar="VIDSPAN_JUDGE", default="openai:gpt-4.1", show_default=True,
                 help="Judge as BACKEND:MODEL: openai:MODEL (any OpenAI-compatible API) or gemini:MODEL."),
    click.option("--judge-base-url", default=None,
                 help="Judge endpoint (e.g. a vLLM server); keys from OPENAI_API_KEY / GEMINI_API_KEY."),
)  # fmt: skip

FRAMES_OPTION = click.option("--frames", "num_frames", type=int, default=16, show_default=True,
                             help="Frames shown to the judge.")  # fmt: skip
OUT = click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                   help="Run directory (an existing run there is resumed).")  # fmt: skip


def _judge(spec: str, base_url: str | None) -> Any:
    from vidspan.judge import get_judge

    return get_judge(spec, **({"base_url": base_url} if base_url else {}))


def _benchmark(bench: str, annotations: str, videos: str | None) -> Any:
    from vidspan.eval.captions.datasets import load_caption_benchmark

    benchmark = load_caption_benchmark(bench, annotations, videos)
    if videos is not None and benchmark.missing_videos:
        shown = ", ".join(benchmark.missing_videos[:3])
        click.echo(f"warning: {len(benchmark.missing_videos)} video(s) missing, e.g. {shown}", err=True)
    return benchmark


def _print(run_dir: Any, payload: dict[str, Any], as_json: bool) -> None:
    report = run_dir / "report.md"
    if as_json or not report.exists():
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(report.read_text())


@click.command("generate-captions", context_settings=HELP)
@BENCH
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING, options.MAX_NEW_TOKENS)
@OUT
@click.option("--limit", type=int, default=None, help="Only the first N samples.")
@options.apply(options.RAY, options.RAY_VLLM, options.NO_PROGRESS)
def generate_command(bench: str, annotations: str, videos: str | None, model: str, out_dir: str,
                     limit: int | None, no_progress: bool, **params: Any) -> None:  # fmt: skip
    """Caption every benchmark video with MODEL into OUT/captions.jsonl (resumable).

    \b
    Example:
        vidspan eval generate-captions --bench dream1k --annotations DREAM-1k.jsonl \\
            --videos dream1k/videos -m marlin-2b --out runs/marlin-dream
    """
    from vidspan.eval.captions.generate import generate_captions

    if videos is None:
        raise click.UsageError("--videos is required to generate captions.")
    ray = options.ray_options(params)
    benchmark = _benchmark(bench, annotations, videos)
    result = generate_captions(benchmark, model, out_dir, limit=limit,
                               progress=ProgressPrinter(not no_progress), ray=ray, **params)  # fmt: skip
    click.echo(json.dumps(result, indent=2))


@click.command("captions", context_settings=HELP)
@BENCH
@click.option("--candidates", type=click.Path(exists=True), required=True,
              help="Captions to score: a generate-captions run directory or a JSONL of {id|video, caption}.")
@JUDGE
@click.option("--video-judge", "video_judge_spec", default=None,
              help="Video-aware judge (BACKEND:MODEL) for the side-by-side video-aware scores.")
@click.option("--video-judge-base-url", default=None, help="Endpoint for the video-aware judge.")
@OUT
@click.option("--objects", is_flag=True, help="Also score object facts (CaReBench CapST).")
@click.option("--consensus", type=int, default=1, show_default=True, help="Ask each judge question k times.")
@click.option("--frames", "num_frames", type=int, default=16, show_default=True,
              help="Frames shown to the video-aware judge.")
@click.option("--audit", "audit_dir", type=click.Path(file_okay=False), default=None,
              help="An audit run to apply to the references (see --audit-mode).")
@click.option("--audit-mode", type=click.Choice(["exclude", "correct"]), default="exclude", show_default=True,
              help="exclude: drop references every audit run scored <= 5; correct: drop contradicted events.")
@click.option("--workers", type=int, default=4, show_default=True, help="Judge calls in flight.")
@options.apply(options.NO_PROGRESS, options.JSON)
def captions_command(bench: str, annotations: str, videos: str | None, candidates: str, judge_spec: str,
                     judge_base_url: str | None, video_judge_spec: str | None,
                     video_judge_base_url: str | None, out_dir: str, objects: bool, consensus: int,
                     num_frames: int, audit_dir: str | None, audit_mode: str, workers: int, no_progress: bool,
                     as_json: bool) -> None:  # fmt: skip
    """Score candidate captions with AutoDQ: text-only judge, and a video-aware judge beside it.

    \b
    Example:
        vidspan eval captions --bench dream1k --annotations DREAM-1k.jsonl --videos dream1k/videos \\
            --candidates runs/marlin-dream --judge openai:gpt-4.1 --video-judge gemini:gemini-2.5-flash \\
            --out runs/marlin-dream-autodq
    """
    from vidspan.eval.captions.audit import load_audit
    from vidspan.eval.captions.autodq.run import evaluate_captions
    from vidspan.eval.captions.candidates import load_candidates
    from vidspan.eval.captions.datasets import apply_audit

    judge = _judge(judge_spec, judge_base_url)  # a bad judge fails before any file is read
    video_judge = _judge(video_judge_spec, video_judge_base_url) if video_judge_spec else None
    benchmark = _benchmark(bench, annotations, videos)
    if audit_dir:
        benchmark = apply_audit(benchmark, load_audit(audit_dir), mode=audit_mode)
    found = load_candidates(candidates, benchmark)
    run = evaluate_captions(
        benchmark, found, judge, out_dir=out_dir, video_judge=video_judge,
        frames_per_video=num_frames, consensus=consensus, objects=objects,
        max_workers=workers, progress=ProgressPrinter(not no_progress),
    )  # fmt: skip
    _print(run.directory, run.metrics, as_json)


@click.command("audit", context_settings=HELP)
@BENCH
@JUDGE
@OUT
@click.option("--runs", type=int, default=3, show_default=True, help="Independent judge runs per item.")
@FRAMES_OPTION
@click.option("--workers", type=int, default=4, show_default=True, help="Judge calls in flight.")
@options.apply(options.NO_PROGRESS, options.JSON)
def audit_command(bench: str, annotations: str, videos: str | None, judge_spec: str,
                  judge_base_url: str | None, out_dir: str, runs: int, num_frames: int, workers: int,
                  no_progress: bool, as_json: bool) -> None:  # fmt: skip
    """Audit the benchmark's reference captions against the video with a video-aware judge.

    \b
    Example:
        vidspan eval audit --bench dream1k --annotations DREAM-1k.jsonl --videos dream1k/videos \\
            --judge gemini:gemini-2.5-pro --runs 3 --out runs/dream-audit
    """
    from vidspan.eval.captions.audit import audit_references

    if videos is None:
        raise click.UsageError("--videos is required: the judge must see the videos.")
    judge = _judge(judge_spec, judge_base_url)  # a bad judge fails before any file is read
    benchmark = _benchmark(bench, annotations, videos)
    run = audit_references(benchmark, judge, out_dir=out_dir, runs=runs,
                           num_frames=num_frames, max_workers=workers,
                           progress=ProgressPrinter(not no_progress))  # fmt: skip
    _print(run.directory, run.summary, as_json)


@click.command("compare-captions", context_settings=HELP)
@click.argument("run_a", type=click.Path(exists=True))
@click.argument("run_b", type=click.Path(exists=True))
@BENCH
@JUDGE
@OUT
@FRAMES_OPTION
@click.option("--workers", type=int, default=4, show_default=True, help="Judge calls in flight.")
@options.apply(options.NO_PROGRESS, options.JSON)
def compare_captions_command(run_a: str, run_b: str, bench: str, annotations: str, videos: str | None,
                             judge_spec: str, judge_base_url: str | None, out_dir: str, num_frames: int,
                             workers: int, no_progress: bool, as_json: bool) -> None:  # fmt: skip
    """Judge RUN_A's captions against RUN_B's with the video, in both orders (wins, ties, losses).

    \b
    Example:
        vidspan eval compare-captions runs/marlin-dream runs/qwen-dream --bench dream1k \\
            --annotations DREAM-1k.jsonl --videos dream1k/videos --judge gemini:gemini-2.5-pro --out runs/pair
    """
    from pathlib import Path

    from vidspan.eval.captions.candidates import load_candidates
    from vidspan.eval.captions.pairwise import compare_captions

    if videos is None:
        raise click.UsageError("--videos is required: the judge must see the videos.")
    judge = _judge(judge_spec, judge_base_url)  # a bad judge fails before any file is read
    benchmark = _benchmark(bench, annotations, videos)
    name_a, name_b = Path(run_a).resolve().name, Path(run_b).resolve().name
    if name_a == name_b:  # e.g. runs/x/captions vs runs/y/captions
        name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
    run = compare_captions(
        benchmark, load_candidates(run_a, benchmark), load_candidates(run_b, benchmark),
        judge, out_dir=out_dir, name_a=name_a, name_b=name_b,
        num_frames=num_frames, max_workers=workers, progress=ProgressPrinter(not no_progress),
    )  # fmt: skip
    _print(run.directory, run.summary, as_json)


def register(group: click.Group) -> None:
    """Add the caption commands to ``vidspan eval``."""
    for command in (generate_command, captions_command, audit_command, compare_captions_command):
        group.add_command(command)
