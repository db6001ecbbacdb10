"""``vidspan clip``: cut a moment out of a video."""

from __future__ import annotations

import click

from vidspan.parse import parse_time


@click.command("clip", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video", type=click.Path())
@click.argument("start")
@click.argument("end")
@click.option(
    "-o",
    "--output",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Clip to write; its extension picks the container (.mp4, .mkv, ...).",
)
@click.option(
    "--precise",
    is_flag=True,
    help="Re-encode (H.264 + AAC) for a frame-exact start instead of copying from the keyframe before START.",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def clip_command(video: str, start: str, end: str, out_path: str, precise: bool, overwrite: bool) -> None:
    """Cut VIDEO from START to END into OUTPUT and print its path.

    START and END are seconds (12.5) or clock times (1:05, 1:02:03.5); an END past the video means "to the
    end". Without --precise the packets are copied: instant and lossless, but the clip begins at the keyframe
    at or before START, so it may start up to one keyframe interval early.

    Example:

        vidspan clip match.mp4 1:05 1:20 -o goal.mp4 --precise
    """
    from vidspan.video.cut import cut_clip

    start_seconds = _seconds("START", start)
    end_seconds = _seconds("END", end)
    if end_seconds <= start_seconds:
        raise click.ClickException(f"Invalid END: {end}. It must be after START ({start}).")
    out = cut_clip(video, start_seconds, end_seconds, out_path, precise=precise, overwrite=overwrite)
    click.echo(str(out))


def _seconds(name: str, token: str) -> float:
    try:
        return parse_time(token)
    except ValueError:
        raise click.ClickException(
            f"Invalid {name}: {token!r}. It must be seconds (12.5) or mm:ss / hh:mm:ss (1:05, 1:02:03)."
        ) from None
