"""``vidspan eval``: run benchmarks, score prediction files, compare runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import ProgressPrinter
from vidspan.errors import VidspanError

HELP = {"help_option_names": ["-h", "--help"]}


@click.group("eval", context_settings=HELP)
def eval_group() -> None:
    """Evaluate models on temporal-grounding benchmarks with the official metrics.

    \b
    Example:
        vidspan eval grounding --bench charades-timelens --annotations charades-timelens.json \\
            --videos videos/charades --model marlin-2b --out runs/marlin-charades
        vidspan eval compare runs/marlin-charades runs/qwen3vl-charades
    """


def _bench_options(f: Any) -> Any:
    f = click.option("--durations", type=click.Path(dir_okay=False), default=None,
                     help="Charades-STA only: JSON of video durations ({vid: seconds}).")(f)  # fmt: skip
    f = click.option("--subset", default=None,
                     help="Subset name for a TimeLens file with an unusual name.")(f)  # fmt: skip
    f = click.option("--videos", type=click.Path(file_okay=False), default=None,
                     help="Folder holding the videos (directly or one subfolder deep).")(f)  # fmt: skip
    f = click.option("--annotations", type=click.Path(dir_okay=False), required=True,
                     help="The benchmark's annotation file.")(f)  # fmt: skip
    f = click.option("--bench", "bench", required=True,
                     help="charades-timelens, activitynet-timelens, qvhighlights-timelens, timelens, "
                          "charades-sta, activitynet, qvhighlights, timechat-coco (Charades-STA and "
                          "ActivityNet also read TimeChat's COCO-style JSON).")(f)  # fmt: skip
    return f


@eval_group.command("grounding", context_settings=HELP)
@_bench_options
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING, options.MAX_NEW_TOKENS)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Run directory (an existing run there is resumed).")  # fmt: skip
@click.option(
    "--round-to-seconds",
    is_flag=True,
    help="Round predictions to whole seconds before scoring (TimeLens' inference script does).",
)
@click.option("--limit", type=int, default=None, help="Only the first N samples (smoke runs).")
@options.apply(options.RAY, options.NO_PROGRESS, options.JSON)
def grounding_command(bench: str, annotations: str, videos: str | None, subset: str | None,
                      durations: str | None, model: str, out_dir: str, as_json: bool, no_progress: bool,
                      **params: Any) -> None:  # fmt: skip
    """Run MODEL over a grounding benchmark into a resumable run directory.

    \b
    Example:
        vidspan eval grounding --bench qvhighlights-timelens --annotations qvhighlights-timelens.json \\
            --videos videos/qvhighlights -m qwen3-vl-8b --out runs/qwen3vl-qvh
    """
    from vidspan.eval.grounding.report import write_reports
    from vidspan.eval.grounding.run import run_grounding

    ray = options.ray_options(params)
    benchmark = _load(bench, annotations, videos, subset, durations)
    if benchmark.missing_videos:
        click.echo(
            f"warning: {len(benchmark.missing_videos)} video(s) missing, e.g. "
            f"{', '.join(benchmark.missing_videos[:3])}; their samples are listed as failed",
            err=True,
        )
    given = {k: v for k, v in params.items() if v is not None and k != "round_to_seconds"}
    run = run_grounding(benchmark, model, out_dir, round_to_seconds=params["round_to_seconds"],
                        progress=ProgressPrinter(not no_progress), ray=ray, **given)  # fmt: skip
    md: Path | None
    try:
        md, _png = write_reports(run.directory)
    except (VidspanError, OSError) as exc:  # a report is a convenience: the run itself is complete
        click.echo(f"warning: report not written ({exc})", err=True)
        md = None
    if as_json:
        click.echo(json.dumps(run.metrics, indent=2))
    else:
        click.echo(md.read_text() if md else json.dumps(run.metrics["lenient"], indent=2))


@eval_group.command("score", context_settings=HELP)
@click.argument("predictions", type=click.Path(exists=False))
@_bench_options
@click.option(
    "--format",
    "prediction_format",
    type=click.Choice(["timelens", "timechat", "qvhighlights", "vidspan-run"]),
    default=None,
    help="Prediction format (detected when omitted).",
)
@click.option("--round-to-seconds", is_flag=True, help="Round predictions to whole seconds before scoring.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def score_command(predictions: str, bench: str, annotations: str, videos: str | None, subset: str | None,
                  durations: str | None, prediction_format: str | None, round_to_seconds: bool,
                  as_json: bool) -> None:  # fmt: skip
    """Score PREDICTIONS (a TimeLens, TimeChat/VTG-LLM or QVHighlights file, or a vidspan run).

    Example:

        vidspan eval score preds.jsonl --bench qvhighlights --annotations highlight_val_release.jsonl
        vidspan eval score fmt_charades_test_f96_result.json --bench charades-sta \
            --annotations test.caption_coco_format.json
    """
    from vidspan.eval.grounding.score import score_predictions

    if not Path(predictions).exists():
        raise click.ClickException(f"Cannot read predictions {predictions}: no such file or directory.")
    benchmark = _load(bench, annotations, videos, subset, durations)
    result = score_predictions(predictions, benchmark, prediction_format=prediction_format,
                               round_to_seconds=round_to_seconds)  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(render_scores(result))


def _load(bench: str, annotations: str, videos: str | None, subset: str | None, durations: str | None) -> Any:
    from vidspan.eval.grounding.datasets import load_benchmark

    extra = {k: v for k, v in (("subset", subset), ("durations", durations)) if v is not None}
    return load_benchmark(bench, annotations, videos, **extra)


def render_scores(result: dict[str, Any]) -> str:
    """Readable tables for :func:`vidspan.eval.grounding.score.score_predictions`."""
    label = result.get("protocol_label", "TimeLens protocol")
    lines = [f"{result['benchmark']} ({result['format']}), {label}, "
             f"rounding to seconds: {'on' if result.get('round_to_seconds') else 'off'}"]  # fmt: skip
    window = f", {result['gt_window']} GT window" if result.get("num_multi_window_samples") else ""
    missing = result.get("num_without_prediction") or result.get("num_failed") or 0
    if missing:
        lines.append(f"{missing} of {result['num_samples']} samples have no usable prediction")
    for mode in ("lenient", "strict"):
        block = result.get(mode) or {}
        lines += ["", f"{mode} (TimeLens protocol{window}):",
                  "| subset | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | samples | unparsed % |",
                  "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for subset, m in block.items():
            r1 = " | ".join(f"{m[k]:.2f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"))
            lines.append(f"| {subset} | {r1} | {m['num_samples']} | {m['parse_failure_rate']:.1f} |")
    if "qvhighlights" in result:
        lines += ["", "QVHighlights official metrics (MR R1 scores the best-matching GT window):"]
        lines += [f"  {k}: {v}" for k, v in result["qvhighlights"]["brief"].items()]
    return "\n".join(lines)


@eval_group.command("compare", context_settings=HELP)
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--no-reference", is_flag=True, help="Leave out the published reference rows.")
@click.option(
    "--out",
    "out_prefix",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write OUT.md and OUT.png (leaderboard chart).",
)
def compare_command(runs: tuple[str, ...], no_reference: bool, out_prefix: str | None) -> None:
    """Put RUNS beside the published reference rows (TimeLens Table 1, Marlin-2B) in one table.

    Example:

        vidspan eval compare runs/marlin-charades runs/qwen3vl-charades --out leaderboard
    """
    from vidspan.eval.grounding.compare import compare

    comparison = compare(list(runs), include_reference=not no_reference)
    click.echo(comparison.markdown)
    if out_prefix:
        Path(out_prefix + ".md").write_text(comparison.markdown)
        comparison.plot(out_prefix + ".png")
        click.echo(f"wrote {out_prefix}.md and {out_prefix}.png", err=True)
