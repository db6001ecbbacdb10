"""``vidspan eval points | counts | tracks``: Molmo2's *where* benchmarks with its metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import ProgressPrinter

HELP = {"help_option_names": ["-h", "--help"]}

common = options.apply(
    click.option("--annotations", type=click.Path(dir_okay=False), required=True,
                 help="The set's rows as JSON or JSONL (datasets' to_json)."),
    click.option("--videos", type=click.Path(file_okay=False), required=True,
                 help="Folder holding the videos (directly or one subfolder deep)."),
    click.option("-m", "--model", envvar="VIDSPAN_POINT_MODEL", default="molmo2", show_default=True,
                 help="Model name, hub id or checkpoint directory."),
    click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                 help="Run directory (an existing run there is resumed)."),
    click.option("--limit", type=int, default=None, help="Only the first N samples."),
    options.BACKEND,
    options.SAMPLING,
    options.JSON,
    options.NO_PROGRESS,
)  # fmt: skip


def _run(bench: str, params: dict[str, Any], **extra: Any) -> None:
    from vidspan.eval.points.run import run_points_eval

    model_keys = ("device", "dtype", "base_url", "api_key", "input_mode", "family")
    sampling_keys = ("fps", "min_frames", "max_frames", "max_pixels", "window_seconds", "overlap_seconds")
    kwargs = {k: params[k] for k in model_keys + sampling_keys if params.get(k) is not None}
    where = (params["annotations"], params["videos"], params["model"], params["out_dir"])
    progress = ProgressPrinter(not params["no_progress"])
    result = run_points_eval(bench, *where, limit=params["limit"], progress=progress,
                             **extra, **kwargs)  # fmt: skip
    if params["as_json"]:
        click.echo(json.dumps(result.metrics, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo((Path(result.directory) / "report.md").read_text().rstrip())


@click.command("points", context_settings=HELP)
@click.option("--bench", type=click.Choice(["molmo2-video-points"]), default="molmo2-video-points",
              show_default=True, help="The pointing set.")  # fmt: skip
@click.option(
    "--tolerance",
    type=float,
    default=0.25,
    show_default=True,
    help="Seconds within which a point's time is snapped to an annotated time (0: exact only).",
)
@common
def points_command(bench: str, tolerance: float, **params: Any) -> None:
    """Video pointing precision, recall and F1 (point inside the object's mask), Molmo2's definition.

    Example:

        vidspan eval points --annotations point_eval.jsonl --videos videos/ -m molmo2 --out runs/points
    """
    _run(bench, params, tolerance=tolerance)


@click.command("counts", context_settings=HELP)
@click.option("--bench", type=click.Choice(["molmo2-video-count", "burst-vc"]), default="molmo2-video-count",
              show_default=True, help="The counting set.")  # fmt: skip
@common
def counts_command(bench: str, **params: Any) -> None:
    """Counting accuracy, close count and validity, per subset and count bin.

    Example:

        vidspan eval counts --bench burst-vc --annotations burst.jsonl --videos TAO/ --out runs/burst
    """
    _run(bench, params)


@click.command("tracks", context_settings=HELP)
@click.option("--bench", type=click.Choice(["molmo2-video-track"]), default="molmo2-video-track",
              show_default=True, help="The tracking set.")  # fmt: skip
@click.option(
    "--masks-model",
    default=None,
    help="A SAM2 video checkpoint (facebook/sam2.1-hiera-large) for J, F and J&F from the tracks.",
)
@common
def tracks_command(bench: str, masks_model: str | None, **params: Any) -> None:
    """Tracking point-in-mask precision, recall and F1 per frame (at 1 fps unless --fps), and J&F.

    Example:

        vidspan eval tracks --annotations track.jsonl --videos clips/ --out runs/track --masks-model sam2/
    """
    _run(bench, params, masks_model=masks_model)


def register(group: click.Group) -> None:
    """Add the *where* commands to ``vidspan eval``."""
    for command in (points_command, counts_command, tracks_command):
        group.add_command(command)
