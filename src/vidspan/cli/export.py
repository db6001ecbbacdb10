"""``vidspan export``: subtitles, chapters and editor timelines of a caption or an indexed video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vidspan.errors import VidspanError

FORMATS = ("vtt", "srt", "chapters", "ffmetadata", "otio", "otio-clips")
_BY_SUFFIX = {".vtt": "vtt", ".srt": "srt", ".otio": "otio", ".otioz": "otio"}
_NEEDS_VIDEO = {"otio", "otio-clips"}
_NEEDS_DURATION = {"chapters", "ffmetadata"}


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path())
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="What to write [default: from the -o extension: .vtt, .srt, .otio].",
)
@click.option(
    "-o",
    "--output",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="File to write [default: stdout].",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read SOURCE, a video path, from this library [default: $VIDSPAN_INDEX or "
    "$VIDSPAN_USER_PATH/index.sqlite when SOURCE is not a .json file].",
)
@click.option(
    "--video",
    type=click.Path(dir_okay=False),
    default=None,
    help="The video file [default: the caption's \"video\", or the library's path].",
)
@click.option(
    "--mux-into",
    "mux_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --format chapters or ffmetadata: also write a copy of the video with the chapters.",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT and the --mux-into file if they exist.")
def export_command(
    source: str, fmt: str | None, out_path: str | None, db: str | None, video: str | None,
    mux_path: str | None, overwrite: bool,
) -> None:  # fmt: skip
    """Export the events of SOURCE as subtitles, chapters or an OpenTimelineIO timeline.

    SOURCE is the JSON of 'vidspan caption --json', or (with --db, or any SOURCE that is not a .json file)
    a video in the library. Formats: vtt and srt subtitles; chapters, a YouTube chapter list (at least 3
    chapters of 10 s or more, so short events are merged); ffmetadata, the same chapters for FFmpeg; otio,
    one clip of the video with a marker per event; otio-clips, one clip per event.

    Example:

        vidspan caption talk.mp4 --json > talk.json

        vidspan export talk.json -o talk.vtt

        vidspan export talk.mp4 --format chapters --mux-into talk-chapters.mp4
    """
    if fmt is None:
        fmt = _BY_SUFFIX.get(Path(out_path).suffix.lower()) if out_path else None
        if fmt is None:
            raise click.UsageError("Missing option '--format' (it cannot be told from the -o extension).")
    if mux_path is not None and fmt not in _NEEDS_DURATION:
        raise click.UsageError("--mux-into needs --format chapters or --format ffmetadata.")
    try:
        _export(source, fmt, out_path, db, video, mux_path, overwrite)
    except (VidspanError, ValueError, OSError) as exc:
        raise click.ClickException(" ".join(str(exc).split()) or type(exc).__name__) from None


def _export(
    source: str, fmt: str, out_path: str | None, db: str | None, video: str | None, mux_path: str | None,
    overwrite: bool,
) -> None:  # fmt: skip
    from vidspan import export

    loaded = _load(source, db)
    video = video or loaded.video
    info = None
    if fmt in _NEEDS_VIDEO or mux_path is not None:
        info = _probe(video, fmt, mux_path)
    elif fmt in _NEEDS_DURATION and (loaded.duration_seconds is None or (video and Path(video).is_file())):
        info = _probe(video, fmt, mux_path)
    duration = info.duration_seconds if info is not None else loaded.duration_seconds
    if fmt == "vtt":
        text = export.to_webvtt(loaded.events)
    elif fmt == "srt":
        text = export.to_srt(loaded.events)
    elif fmt in _NEEDS_DURATION:
        assert duration is not None
        chapters = export.chapters_from_events(loaded.events, duration)
        if fmt == "chapters":
            text = export.to_youtube_chapters(chapters, duration_seconds=duration)
        else:
            text = export.to_ffmetadata(chapters, duration)
        if mux_path is not None:
            assert video is not None
            export.mux_chapters(video, chapters, mux_path, duration_seconds=duration, overwrite=overwrite)
            click.echo(f"wrote {mux_path}", err=True)
    else:
        assert info is not None and video is not None
        kind = "clips" if fmt == "otio-clips" else "markers"
        timeline = export.to_otio(video, loaded.events, duration_seconds=duration, fps=info.fps, kind=kind)
        if out_path is not None:
            if Path(out_path).exists() and not overwrite:
                raise FileExistsError(f"Output {out_path} already exists. Pass --overwrite to replace it.")
            export.write_otio(timeline, out_path)
            click.echo(f"wrote {out_path}", err=True)
            return
        text = export.otio_to_string(timeline) + "\n"
    if out_path is None:
        click.echo(text, nl=False)
        return
    from vidspan.video.outputs import write_text_atomically

    write_text_atomically(text, out_path, overwrite=overwrite)
    click.echo(f"wrote {out_path}", err=True)


def _load(source: str, db: str | None) -> Any:
    from vidspan.export import ExportSource

    if db is None and Path(source).suffix.lower() == ".json":
        return ExportSource.from_caption_json(source)
    from vidspan.library.sqlite import default_index_path

    return ExportSource.from_library(db or str(default_index_path()), source)


def _probe(video: str | None, fmt: str, mux_path: str | None) -> Any:
    if video is None:
        need = "--mux-into" if mux_path is not None else f"--format {fmt}"
        raise click.UsageError(f"{need} needs the video: pass --video (the caption file names none).")
    if not Path(video).is_file():
        raise click.ClickException(f"Cannot read video {video}: no such file. Pass --video.")
    from vidspan.video import probe

    return probe(video)


def register(cli: click.Group) -> None:
    """Add ``vidspan export`` to ``cli``."""
    cli.add_command(export_command)
