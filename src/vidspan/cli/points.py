"""``vidspan point``, ``vidspan count`` and ``vidspan track``: where, how many, and where over time."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import ProgressPrinter, _check_video, _warn, format_seconds

POINT_MODEL = click.option(
    "-m", "--model", envvar="VIDSPAN_POINT_MODEL", default="molmo2", show_default=True,
    help="Model name or alias (see 'vidspan models'), hub id, or checkpoint directory.",
)  # fmt: skip

point_options = options.apply(
    POINT_MODEL,
    options.BACKEND,
    options.SAMPLING,
    options.MAX_NEW_TOKENS,
    click.option("--prompt", default=None,
                 help="Replace the model's prompt ({label}: the query, {fps}: the rate)."),
    click.option("--strict", is_flag=True, help="Fail when the model's answer breaks the expected format."),
    click.option("--draw", "draw_path", type=click.Path(dir_okay=False), default=None,
                 help="Also write the video with the points drawn, as MP4."),
    click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False), default=None,
                 help="Also write a PNG contact sheet of the frames with points."),
    click.option("--coco", "coco_path", type=click.Path(dir_okay=False), default=None,
                 help="Also write COCO-style keypoints (JSON)."),
    click.option("--mot", "mot_path", type=click.Path(dir_okay=False), default=None,
                 help="Also write MOTChallenge-style CSV."),
    click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
                 help="Also write the timeline page with the points drawn over the player."),
    options.JSON,
    options.NO_PROGRESS,
)  # fmt: skip


def _kwargs(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("fps", "min_frames", "max_frames", "max_pixels", "window_seconds", "overlap_seconds",
            "max_new_tokens", "strict", "prompt")
    kwargs: dict[str, Any] = {k: params[k] for k in keys}
    kwargs["progress"] = ProgressPrinter(not params["no_progress"])
    for key in ("device", "dtype", "base_url", "api_key", "input_mode", "family"):
        if params.get(key) is not None:
            kwargs[key] = params[key]
    return kwargs


def _run(task: str, video: str, query: str, model: str, as_json: bool, params: dict[str, Any]) -> Any:
    from vidspan.points.ask import ask_points

    _check_video(video)
    if not query.strip():
        raise click.ClickException("Invalid query: ''. It must name an object, e.g. \"person\".")
    outputs = [params.pop(k) for k in ("draw_path", "sheet_path", "coco_path", "mot_path", "html_path")]
    if not params["no_progress"]:
        click.echo(f"Asking {model} to {task} {query!r} in {video}...", err=True)
    answer = ask_points(task, video, query, model, **_kwargs(params))  # type: ignore[arg-type]
    _warn(answer.violations)
    _write_outputs(answer, *outputs)
    if as_json:
        payload = answer.to_dict() | {"settings": answer.settings}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(render(answer))
    return answer


def _write_outputs(answer: Any, draw: str | None, sheet: str | None, coco: str | None,
                   mot: str | None, html: str | None) -> None:  # fmt: skip
    from vidspan.points.results import to_coco, to_mot_csv
    from vidspan.video import probe

    fps = probe(answer.video).fps or 1.0
    if draw:
        from vidspan.points.draw import draw_video

        click.echo(f"wrote {draw_video(answer, draw)}", err=True)
    if sheet:
        from vidspan.points.draw import contact_sheet

        click.echo(f"wrote {contact_sheet(answer, sheet)}", err=True)
    if coco:
        _atomic_text(Path(coco), json.dumps(to_coco(answer, fps), indent=2))
    if mot:
        _atomic_text(Path(mot), to_mot_csv(answer, fps, header=True))
    if html:
        from vidspan.server.html import points_to_html

        _atomic_text(Path(html), points_to_html(answer, answer.video, relative_to=Path(html).parent))


def _atomic_text(out: Path, text: str) -> None:
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {out}", err=True)


def render(answer: Any) -> str:
    """Readable text for a pointing, counting or tracking answer."""
    from vidspan.points.results import Counting, Tracking

    if isinstance(answer, Tracking):
        lines = [f"{answer.query}: {len(answer)} track(s)"]
        for track in answer.tracks:
            lines.append(f"  #{track.object_id} {track.label}  {format_seconds(track.start)} - "
                         f"{format_seconds(track.end)}  {len(track.positions)} position(s)")  # fmt: skip
            lines.extend(f"      {format_seconds(p.t)}  x {p.x:.0f}  y {p.y:.0f}" for p in track.positions)
        return "\n".join(lines)
    counted = isinstance(answer, Counting)
    lines = [f"{answer.query}: {answer.count}" if counted else f"{answer.query}: {len(answer)} point(s)"]
    if counted and not answer.valid:
        lines[0] += "  (the model gave no count, points or 'none')"
    for p in answer:
        lines.append(f"  {format_seconds(p.t)}  x {p.x:.0f}  y {p.y:.0f}  #{p.object_id} {p.label}")
    return "\n".join(lines)


@click.command("point", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@click.argument("query")
@point_options
def point_command(video: str, query: str, model: str, as_json: bool, **params: Any) -> None:
    """Point at every QUERY object in VIDEO: times in seconds, pixels of the source frame.

    Exits 1 when nothing was pointed at.

    Example:

        vidspan point clip.mp4 "person" --draw people.mp4
    """
    if not len(_run("point", video, query, model, as_json, params)):
        sys.exit(1)


@click.command("count", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@click.argument("query")
@point_options
def count_command(video: str, query: str, model: str, as_json: bool, **params: Any) -> None:
    """Count the QUERY objects in VIDEO, with the points counted.

    Example:

        vidspan count clip.mp4 "cars" --json
    """
    _run("count", video, query, model, as_json, params)


@click.command("track", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@click.argument("query")
@point_options
def track_command(video: str, query: str, model: str, as_json: bool, **params: Any) -> None:
    """Track every QUERY object through VIDEO: object id -> timed positions.

    Exits 1 when nothing was tracked.

    Example:

        vidspan track clip.mp4 "dog" --fps 1 --draw dog.mp4 --mot dog.csv
    """
    if not len(_run("track", video, query, model, as_json, params)):
        sys.exit(1)
