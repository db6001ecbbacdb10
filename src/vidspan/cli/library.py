"""``vidspan index``, ``vidspan search`` and ``vidspan library``: a searchable library of captioned videos.

The library file is ``--db``, else ``$VIDSPAN_INDEX``, else ``$VIDSPAN_USER_PATH/index.sqlite``
(``VIDSPAN_USER_PATH`` defaults to ``~/.cache/vidspan``), so every command finds the same library from any
working directory.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import format_seconds

DB = click.option(
    "--db", type=click.Path(dir_okay=False), default=None,
    help="Index file [default: $VIDSPAN_INDEX or $VIDSPAN_USER_PATH/index.sqlite].",
)  # fmt: skip
CONTEXT = {"help_option_names": ["-h", "--help"]}


def _db_path(db: str | None) -> str:
    from vidspan.library.sqlite import default_index_path

    return db or str(default_index_path())


class IndexProgressPrinter:
    """``[done/total] message`` with elapsed time and an ETA (from the videos captioned so far) on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()

    def __call__(self, report: Any, message: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        captioned = len(report.indexed) + len(report.failed)
        remaining = report.total - report.done
        eta = ""
        if captioned and remaining:
            eta = f", ETA {elapsed / captioned * remaining:.0f} s"
        step = min(report.done + (message != "done"), report.total)
        click.echo(f"[{step}/{report.total}] {message} ({elapsed:.1f} s elapsed{eta})", err=True)


@click.command("index", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@DB
@click.option("--no-recursive", is_flag=True, help="Do not look inside sub-folders.")
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING, options.MAX_NEW_TOKENS, options.RAY,
               options.RAY_VLLM, options.JSON, options.NO_PROGRESS)  # fmt: skip
def index_command(
    paths: tuple[str, ...], db: str | None, no_recursive: bool, model: str, as_json: bool, **params: Any
) -> None:
    """Caption every new or changed video under PATHS and add it to the library.

    Unchanged files (same path and content hash) are skipped, so re-running is cheap; each video is saved
    as soon as it is done, so an interrupted run keeps its work.

    Example:

        vidspan index ~/footage --fps 1

        vidspan search "someone opens the door"
    """
    from vidspan.library.indexer import index_paths

    show_progress = not params.pop("no_progress")
    ray = options.ray_options(params)
    caption_options = {k: v for k, v in params.items() if v is not None}
    path = _db_path(db)
    if show_progress:
        click.echo(f"Indexing into {path} with {model}...", err=True)
    report = index_paths(
        list(paths), model, path, recursive=not no_recursive,
        progress=IndexProgressPrinter(show_progress), ray=ray, **caption_options,
    )  # fmt: skip
    for failure in report.failed:
        click.echo(f"warning: skipped {failure.path}: {failure.error}", err=True)
    if as_json:
        click.echo(json.dumps({"db": path} | report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(
            f"Indexed {len(report.indexed)} video(s) ({report.num_events} events), "
            f"{len(report.skipped)} unchanged, {len(report.failed)} failed, in {report.seconds:.1f} s: {path}"
        )
    if report.failed and not report.indexed and not report.skipped:
        raise SystemExit(1)


@click.command("search", context_settings=CONTEXT)
@click.argument("query")
@DB
@click.option("-n", "--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Most hits.")
@click.option(
    "--path", "path_glob", default=None, help="Only videos whose path or file name matches this glob."
)
@click.option(
    "--start", type=click.FloatRange(min=0), default=None, help="Only events ending after S seconds."
)
@click.option(
    "--end", type=click.FloatRange(min=0), default=None, help="Only events starting before E seconds."
)
@click.option("--ground", is_flag=True,
              help="Second stage: ask the model (-m) where QUERY happens around each of the best hits.")
@click.option("--ground-top", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many of the best hits --ground refines.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Cut every hit into this folder with FFmpeg.")
@click.option("--precise", is_flag=True, help="With --export: frame-exact re-encode instead of stream copy.")
@click.option("--reel", "reel_path", type=click.Path(dir_okay=False), default=None,
              help="Join every hit, best first, into one H.264 MP4 highlight reel (replaced if it exists).")
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING)
@options.JSON
def search_command(
    query: str, db: str | None, limit: int, path_glob: str | None, start: float | None, end: float | None,
    ground: bool, ground_top: int, export_dir: str | None, precise: bool, reel_path: str | None, model: str,
    as_json: bool, **model_params: Any,
) -> None:  # fmt: skip
    """Find the moments in the library that match QUERY (by words and by meaning).

    Example:

        vidspan search "a hand lifts a bottle" --limit 5 --path "*.mp4" --json

        vidspan search "a goal is scored" --limit 8 --reel goals.mp4
    """
    from vidspan.library.open import open_index

    started = time.perf_counter()
    with open_index(_db_path(db), create=False) as index:
        hits = index.search(query, limit=limit, path_glob=path_glob, start=start, end=end)
    if ground and hits:
        from vidspan.library.refine import ground_hits

        hits = ground_hits(hits, query, model, top=ground_top, **model_params)
    took_ms = round((time.perf_counter() - started) * 1000)
    if export_dir is not None and hits:
        from vidspan.library.refine import export_hits

        for path in export_hits(hits, export_dir, precise=precise):
            click.echo(f"wrote {path}", err=True)
    if reel_path is not None and hits:
        from vidspan.export.reel import make_reel

        reel = make_reel(hits, reel_path, overwrite=True)
        click.echo(f"wrote {reel.path}", err=True)
    elif reel_path is not None:
        click.echo(f"No matches for {query!r}: no reel written.", err=True)
    if as_json:
        payload = {"query": query, "took_ms": took_ms, "hits": [hit.to_dict() for hit in hits]}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if not hits:
        click.echo(f"No matches for {query!r}.")
        return
    for hit in hits:
        clock = f"{format_seconds(hit.start)} - {format_seconds(hit.end)}"
        click.echo(f"{hit.score:.4f}  {hit.video}  {clock}  {hit.caption}")


@click.command("library", context_settings=CONTEXT)
@DB
@options.JSON
def library_command(db: str | None, as_json: bool) -> None:
    """List the videos in the library.

    Example:

        vidspan library --json
    """
    from vidspan.library.open import open_index

    with open_index(_db_path(db), create=False) as index:
        videos = index.videos()
        status = index.status()
    if as_json:
        payload = {"status": status, "videos": [v.to_dict() for v in videos]}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for v in videos:
        click.echo(
            f"{v.id:>5}  {format_seconds(v.duration_seconds)}  {v.num_events:>4} events  {v.model}  {v.path}"
        )
    click.echo(f"{status['num_videos']} video(s), {status['num_events']} events in {status['path']}")


def register(cli: click.Group) -> None:
    """Add the library commands to ``cli``."""
    cli.add_command(index_command)
    cli.add_command(search_command)
    cli.add_command(library_command)
