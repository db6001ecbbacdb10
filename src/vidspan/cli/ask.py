"""``vidspan caption`` and ``vidspan find``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vidspan.cli import options
from vidspan.types import Caption, Grounding

F = Callable[..., Any]


def format_seconds(seconds: float) -> str:
    """``75.25`` → ``01:15.2``; hours are added when needed (``1:02:03.0``)."""
    tenths = int(round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    secs = rest / 10
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes:02d}:{secs:04.1f}"


model_options = options.apply(
    options.MODEL,
    options.BACKEND,
    options.SAMPLING,
    options.MAX_NEW_TOKENS,
    click.option("--strict", is_flag=True, help="Fail when the model's answer breaks the expected format."),
    options.JSON,
    options.NO_PROGRESS,
)
"""Options shared by every command that runs a model."""


class ProgressPrinter:
    """Progress with an ETA on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, message: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        eta = f", ETA {elapsed / done * (total - done):.0f} s" if 0 < done < total else ""
        click.echo(f"[{done}/{total}] {message} ({elapsed:.1f} s elapsed{eta})", err=True)


def _library_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "fps": params["fps"],
        "min_frames": params["min_frames"],
        "max_frames": params["max_frames"],
        "max_pixels": params["max_pixels"],
        "window_seconds": params["window_seconds"],
        "overlap_seconds": params["overlap_seconds"],
        "max_new_tokens": params["max_new_tokens"],
        "strict": params["strict"],
        "progress": ProgressPrinter(not params["no_progress"]),
    }
    for key in ("device", "dtype", "base_url", "api_key", "input_mode", "family"):
        if params.get(key) is not None:
            kwargs[key] = params[key]
    return kwargs


def _check_video(video: str) -> None:
    if not Path(video).exists():
        raise click.ClickException(f"Cannot read video {video}: no such file.")


@click.command("caption", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@model_options
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the timeline as one self-contained HTML page to this file.")  # fmt: skip
def caption_command(video: str, model: str, as_json: bool, html_path: str | None, **params: Any) -> None:
    """Describe VIDEO: a scene paragraph and a timeline of events.

    Example:

        vidspan caption clip.mp4 --json

        vidspan caption clip.mp4 --html clip.html
    """
    from vidspan.caption import caption

    _check_video(video)
    if not params["no_progress"]:
        click.echo(f"Captioning {video} with {model}...", err=True)
    result = caption(video, model, **_library_kwargs(params))
    _warn(result.violations)
    if html_path is not None:
        _write_html(result, video, Path(html_path))
    if as_json:
        payload = {"video": video, "model": result.model} | result.to_dict()
        payload |= {
            "format_ok": result.format_ok,
            "violations": list(result.violations),
            "windows": [w.to_tuple() for w in result.windows],
            "settings": result.settings,
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
        return
    click.echo(render_caption(result))


def _write_html(result: Caption, video: str, out: Path) -> None:
    from vidspan.server.html import caption_to_html

    page = caption_to_html(result, video, relative_to=out.parent)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)


def render_caption(result: Caption) -> str:
    """Readable text for a caption."""
    lines = [f"Scene: {result.scene or '(none)'}", "", "Events:"]
    if not result.events:
        lines.append("  (none)")
    for event in result.events:
        lines.append(f"  {format_seconds(event.start)} - {format_seconds(event.end)}  {event.description}")
    return "\n".join(lines)


@click.command("find", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@click.argument("queries", nargs=-1, required=True)
@model_options
def find_command(video: str, queries: tuple[str, ...], model: str, as_json: bool, **params: Any) -> None:
    """Find when each QUERY happens in VIDEO (several queries decode the video once).

    Example:

        vidspan find clip.mp4 "a person opens the door" "a car drives away"
    """
    from vidspan.find import find

    _check_video(video)
    if not params["no_progress"]:
        click.echo(f"Searching {video} with {model}...", err=True)
    results = find(video, list(queries), model, **_library_kwargs(params))
    for r in results:
        _warn(r.violations, prefix=f"{r.query!r}: ")
    if as_json:
        payload = [
            {"query": r.query}
            | r.to_dict()
            | {"score": r.score, "window": r.window.to_tuple() if r.window else None, "model": r.model}
            for r in results
        ]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, ensure_ascii=False))
        return
    click.echo("\n".join(render_grounding(r) for r in results))
    if all(r.span is None for r in results):
        sys.exit(1)


def render_grounding(result: Grounding) -> str:
    """Readable text for one grounding answer."""
    if result.span is None:
        return f"{result.query}: not found (model said: {' '.join(result.raw.split())[:200]!r})"
    s = result.span
    score = f"  score {result.score:.2f}" if result.score is not None else ""
    clock = f"({format_seconds(s.start)} - {format_seconds(s.end)})"
    return f"{result.query}: {s.start:.1f} - {s.end:.1f} s  {clock}{score}"


def _warn(violations: tuple[str, ...], prefix: str = "") -> None:
    for v in violations:
        click.echo(f"warning: {prefix}{v}", err=True)
