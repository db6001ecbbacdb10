"""``index_paths``: caption every new or changed video under some paths into a :class:`VideoIndex`.

Indexing is incremental (a file whose path and content hash are already stored is skipped) and
crash-safe: each video is committed in its own transaction once captioned and embedded, so an interrupted
run loses at most the video in progress and the next run picks up the rest.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidspan.errors import ModelError, ParseError, VideoError
from vidspan.library.embed import TextEmbedder
from vidspan.library.open import open_index
from vidspan.library.sqlite import VideoIndex
from vidspan.models.base import VideoModel
from vidspan.scale.ray import RayOptions
from vidspan.windows import SAMPLING_KEYS, ModelLike, load_model

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm", ".avi")
_CAPTION_KEYS = frozenset({"sampling", "prompt", "max_new_tokens", "strict", "progress"})

IndexProgress = Callable[["IndexReport", str], None]
"""``progress(report, message)``: called before each file is processed and once at the end."""


@dataclass(slots=True)
class IndexFailure:
    """A file that could not be indexed."""

    path: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"path": self.path, "error": self.error}


@dataclass(slots=True)
class IndexReport:
    """What an indexing run did (updated while it runs, so progress callbacks can read it)."""

    total: int = 0
    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[IndexFailure] = field(default_factory=list)
    num_events: int = 0
    seconds: float = 0.0

    @property
    def done(self) -> int:
        """Files handled so far (indexed, skipped or failed)."""
        return len(self.indexed) + len(self.skipped) + len(self.failed)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "total": self.total,
            "indexed": list(self.indexed),
            "skipped": list(self.skipped),
            "failed": [f.to_dict() for f in self.failed],
            "num_events": self.num_events,
            "seconds": self.seconds,
        }


def find_videos(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> list[Path]:
    """Video files named by ``paths``: files as given, folders searched by extension; sorted, unique.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    suffixes = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            candidates = path.rglob("*") if recursive else path.glob("*")
            for candidate in sorted(candidates):
                if candidate.is_file() and candidate.suffix.lower() in suffixes:
                    found[candidate.resolve()] = None
        else:
            raise FileNotFoundError(f"Invalid path: {raw}. It must be an existing video file or folder.")
    return sorted(found)


def file_sha256(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def index_paths(
    paths: Iterable[str | os.PathLike[str]],
    model: ModelLike | None,
    db: VideoIndex | str | os.PathLike[str],
    *,
    recursive: bool = True,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    progress: IndexProgress | None = None,
    embedder: TextEmbedder | None = None,
    ray: RayOptions | None = None,
    **caption_options: Any,
) -> IndexReport:
    """Caption and embed every new or changed video under ``paths`` into the index ``db``.

    Args:
        paths: Video files and folders.
        model: What :func:`vidspan.caption` runs: a model name or a loaded :class:`VideoModel`.
        db: An open :class:`VideoIndex` or the path of its file (created when missing).
        recursive: Search folders recursively.
        extensions: File suffixes that count as videos inside folders.
        progress: ``progress(report, message)`` before each file and once at the end.
        embedder: Embeds event descriptions (default: the library's own, else the bundled all-MiniLM-L6-v2);
            another embedder than the library's is refused before any captioning.
        ray: Caption on a Ray cluster: decode tasks, model actors that embed and write their videos' rows
            themselves, so ``db`` must be a PostgreSQL library (SQLite has one writer).
        **caption_options: Passed to :func:`vidspan.caption` (sampling options, ``strict``, backend options).

    Returns:
        An :class:`IndexReport`; files that failed (unreadable videos, model errors) are listed in
        ``failed`` and do not stop the run.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: ``ray`` with a SQLite library.
    """
    from vidspan.caption import caption

    if ray is not None and not _is_postgres(db):
        raise ValueError(
            "Indexing on Ray needs a PostgreSQL library (--db postgresql://...): a SQLite file has one "
            "writer, and every Ray worker writes its own videos."
        )
    started = time.monotonic()
    files = find_videos(paths, recursive=recursive, extensions=extensions)
    report = IndexReport(total=len(files))
    index = open_index(db) if isinstance(db, (str, os.PathLike)) else db
    embed = embedder or index.embedder  # the library's own embedder
    if index.stored_embedder() is None:  # a new library keeps its embedder even before it has vectors
        index.record_embedder(embed.name, embed.dim)
    else:
        index.check_embedder(embed.name, writing=True)  # before any captioning
    # model options (device, base_url...) load the model once, on the first video that needs captioning;
    # a model or embedder that cannot load stops the run instead of failing every file
    model_options = {
        k: caption_options.pop(k)
        for k in list(caption_options)
        if k not in SAMPLING_KEYS and k not in _CAPTION_KEYS and caption_options[k] is not None
    }
    loaded: VideoModel | None = None
    try:
        if ray is not None:
            options = caption_options | model_options
            _index_on_ray(files, model, index, report, progress, embed.name, ray, options)
            files = []
        for path in files:
            name = str(path)
            sha256 = _changed(path, index, report, progress)
            if sha256 is None:
                continue
            _notify(progress, report, f"captioning {path.name}")
            if loaded is None:
                loaded = load_model(model, **model_options)
                embed.embed(["warm up"])
            try:
                result = caption(path, loaded, **caption_options)
            except (VideoError, ParseError, ModelError, OSError) as exc:  # one bad file must not stop the run
                _fail(report, name, exc)
                continue
            vectors = embed.embed([e.description for e in result.events])
            index.add_video(path, sha256, result, vectors, embedding_model=embed.name)
            report.indexed.append(name)
            report.num_events += len(result.events)
        if report.indexed and hasattr(index, "sync_vectors"):  # SQLite: checkpoint its vector index
            index.sync_vectors()
    finally:
        report.seconds = time.monotonic() - started
        if index is not db:
            index.close()
    _notify(progress, report, "done")
    return report


def _index_on_ray(
    files: list[Path],
    model: ModelLike | None,
    index: Any,
    report: IndexReport,
    progress: IndexProgress | None,
    embedder: str,
    ray: RayOptions,
    options: dict[str, Any],
) -> None:
    """The new or changed files captioned by Ray's model actors, which embed them and write their rows."""
    from vidspan.scale.captions import caption_videos
    from vidspan.scale.ray import ItemFailed
    from vidspan.windows import prepare

    hashes = {str(path): sha256 for path in files if (sha256 := _changed(path, index, report, progress))}
    todo = [Path(p) for p in hashes]
    caption_options = {k: options.pop(k) for k in list(options) if k in _CAPTION_KEYS - {"progress"}}
    vm, settings = prepare(model, caption_options.pop("sampling", None), options, remote=True)
    _notify(progress, report, f"captioning {len(todo)} video(s) on Ray")
    write = functools.partial(_WriteToLibrary, index.url, hashes, embedder)
    for key, result in caption_videos(vm, settings, todo, ray, job=write, **caption_options):
        name = str(todo[key])
        if isinstance(result, ItemFailed):
            logger.warning("Cannot index %s: %s", name, result.reason)
            report.failed.append(IndexFailure(name, " ".join(result.reason.split())))
        else:
            report.indexed.append(name)
            report.num_events += result
        _notify(progress, report, f"indexed {todo[key].name}")


class _WriteToLibrary:
    """In a model actor: its own connection and embedder; embeds each caption and writes its rows."""

    def __init__(self, url: str, hashes: dict[str, str], embedder: str):
        from vidspan.library.embed import get_embedder

        self.index = open_index(url)
        self.hashes = hashes
        self.embed = get_embedder(embedder)  # by name: a loaded model does not travel

    def __call__(self, path: Path, run: Callable[..., Any]) -> int:
        result = run()
        vectors = self.embed.embed([e.description for e in result.events])
        self.index.add_video(path, self.hashes[str(path)], result, vectors, embedding_model=self.embed.name)
        return len(result.events)


def _is_postgres(db: Any) -> bool:
    from vidspan.library.open import is_postgres_url

    return is_postgres_url(db) or is_postgres_url(getattr(db, "url", None))


def _changed(path: Path, index: Any, report: IndexReport, progress: IndexProgress | None) -> str | None:
    """The content hash of a file that needs captioning, or ``None`` once it is recorded as unreadable or
    unchanged (same path and hash already in the library)."""
    try:
        sha256 = file_sha256(path)
    except OSError as exc:
        _fail(report, str(path), exc)
        return None
    if index.has_current(path, sha256):
        report.skipped.append(str(path))
        _notify(progress, report, f"unchanged {path.name}")
        return None
    return sha256


def _fail(report: IndexReport, name: str, exc: BaseException) -> None:
    logger.warning("Cannot index %s: %s", name, exc)
    report.failed.append(IndexFailure(name, " ".join(str(exc).split()) or type(exc).__name__))


def _notify(progress: IndexProgress | None, report: IndexReport, message: str) -> None:
    if progress is not None:
        progress(report, message)
