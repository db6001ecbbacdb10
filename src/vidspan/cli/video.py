"""``vidspan probe``: what a file holds and what a model will be shown."""

from __future__ import annotations

import json
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import format_seconds


@click.command("probe", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@options.apply(options.MODEL, options.FAMILY, options.SAMPLING, options.JSON)
def probe_command(video: str, model: str, family: str | None, as_json: bool, **params: Any) -> None:
    """Show what VIDEO holds and how it would be sampled: windows, frames, frame size, video tokens.

    Example:

        vidspan probe clip.mp4 -m qwen2.5-vl-7b --json
    """
    from vidspan.models.registry import resolve
    from vidspan.windows import plan_video, sampling_for

    spec = resolve(model, family=family)
    settings = sampling_for(spec.family.patch_factor, **params)
    info, plans = plan_video(video, settings)
    if as_json:
        payload = {
            "video": info.to_dict(),
            "family": spec.family.name,
            "settings": settings.to_dict(),
            "windows": [p.to_dict() for p in plans],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    vfr = ", variable frame rate" if info.is_vfr else ""
    rotation = f", rotated {info.rotation}°" if info.rotation else ""
    click.echo(
        f"{info.path}: {info.container}/{info.codec} {info.width}x{info.height}{rotation}, "
        f"{info.duration_seconds:.2f} s, {info.num_frames} frames at {info.fps:.3f} fps{vfr}"
    )
    click.echo(
        f"{spec.name} ({spec.family.name}, patch factor {spec.family.patch_factor}): {len(plans)} window(s)"
    )
    for p in plans:
        click.echo(
            f"  {format_seconds(p.window.start)} - {format_seconds(p.window.end)}  "
            f"{p.num_frames} frames at {p.width}x{p.height}, {p.video_tokens} video tokens"
        )
