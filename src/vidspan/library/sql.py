"""What both library stores share: the reading side (the same SQL over SQLite and PostgreSQL) and the
video row they write."""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vidspan.library.types import IndexedEvent, IndexedVideo
from vidspan.types import Caption, Event, Span


def event_vectors(caption: Caption, embeddings: Any, empty_dim: int = 0) -> np.ndarray:
    """``embeddings`` as float32 ``(len(caption), dim)``, one vector per event; ``ValueError`` otherwise."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if not caption.events and vectors.size == 0:
        return np.zeros((0, empty_dim), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(caption.events) or vectors.shape[1] == 0:
        raise ValueError(
            f"Invalid embeddings: shape {vectors.shape}. It must be ({len(caption.events)}, dim), "
            "one vector per event."
        )
    return vectors


def video_row(
    path: str | os.PathLike[str],
    sha256: str,
    caption: Caption,
    duration_seconds: float | None,
    size: int | None,
    mtime: float | None,
) -> tuple[Any, ...]:
    """The ``videos`` row for ``add_video``: path, sha256, size, mtime, duration, scene, model, indexed_at,
    raw, settings (defaults read from the file and the caption); ``ValueError`` on a bad sha256."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"Invalid sha256: {sha256!r}. It must be 64 lowercase hex digits.")
    abspath = str(Path(path).expanduser().resolve())
    if duration_seconds is None:
        ends = [w.end for w in caption.windows] + [e.end for e in caption.events]
        duration_seconds = max(ends, default=0.0)
    if (size is None or mtime is None) and os.path.exists(abspath):
        stat = os.stat(abspath)
        size = stat.st_size if size is None else size
        mtime = stat.st_mtime if mtime is None else mtime
    settings = json.dumps(caption.settings, default=str, sort_keys=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (abspath, sha256, size or 0, mtime or 0.0, float(duration_seconds), caption.scene, caption.model,
            now, caption.raw, settings)  # fmt: skip


def video_from_row(row: tuple[Any, ...]) -> IndexedVideo:
    """An :class:`IndexedVideo` from a ``SqlReads.VIDEO_SQL`` row (driver types normalised)."""
    return IndexedVideo(int(row[0]), row[1], row[2], float(row[3]), row[4], row[5], int(row[6]), row[7])


class SqlReads:
    """Lookups and removal written once; a store sets ``PARAM`` (its driver's placeholder) and
    ``PATH_ORDER``, and provides ``_conn``, ``_lock`` and ``_transaction()``."""

    PARAM = "?"
    PATH_ORDER = " ORDER BY v.path"
    VIDEO_SQL = (
        "SELECT v.id, v.path, v.sha256, v.duration, v.scene, v.model, "
        "(SELECT count(*) FROM events e WHERE e.video_id = v.id), v.indexed_at FROM videos v"
    )
    _conn: Any
    _lock: threading.RLock | threading.Lock
    _embedder: Any

    EMBEDDER_SQL = "SELECT model, dim FROM event_embeddings LIMIT 1"
    """The embedder name and vector size of one stored vector (a library holds one embedder's)."""

    @property
    def embedder(self) -> Any:
        """The query embedder: the one given, else the library's own (recorded with its vectors), else
        the bundled all-MiniLM-L6-v2. Loaded on first use."""
        if self._embedder is None:
            from vidspan.library.embed import get_embedder

            stored = self.stored_embedder()
            self._embedder = get_embedder(stored[0] if stored else None)
        return self._embedder

    def stored_embedder(self) -> tuple[str, int] | None:
        """``(name, dim)`` of the embedder that made this library's vectors, else the one recorded when it
        was first indexed (:meth:`record_embedder`), else ``None``."""
        for sql in (self.EMBEDDER_SQL, "SELECT name, dim FROM _vidspan_embedder"):
            row = self._query_one(sql, ())
            if row and row[0] is not None:
                return str(row[0]), int(row[1])
        return None

    def record_embedder(self, name: str, dim: int) -> None:
        """Record ``name`` (``dim`` values a vector) as the library's embedder, so that a library without
        vectors yet keeps it (``vidspan index`` records it; a re-embed replaces it)."""
        with self._transaction() as conn:
            self._write_embedder(conn, name, dim)

    def _write_embedder(self, conn: Any, name: str, dim: int) -> None:
        """The upsert behind :meth:`record_embedder`, inside the caller's transaction ``conn``."""
        conn.execute(
            self._sql(
                "INSERT INTO _vidspan_embedder (id, name, dim) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, dim = excluded.dim"
            ),
            (name, int(dim)),
        )

    def check_embedder(self, name: str, *, writing: bool = False) -> None:
        """Refuse an embedder other than the library's own, in one sentence that says how to convert.

        Raises:
            EmbedderMismatchError: the library's vectors were made by another embedder.
        """
        from vidspan.errors import EmbedderMismatchError

        stored = self.stored_embedder()
        if stored is None or stored[0] == name:
            return
        action = "add vectors from" if writing else "search it with"
        raise EmbedderMismatchError(
            f"This library's vectors were made by the embedder {stored[0]} ({stored[1]}-d), so it cannot "
            f"{action} {name}: use --embedder {stored[0]}, or convert the library with "
            f"'vidspan index --reembed --embedder {name}'."
        )

    def _transaction(self) -> Any:  # pragma: no cover - provided by the store
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.PARAM)

    def _query_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            return self._conn.execute(self._sql(sql), params).fetchone()

    def remove_video(self, video: int | str | os.PathLike[str]) -> bool:
        """Remove a video (by id or path) and its events; returns whether it was there."""
        with self._transaction() as conn:
            if isinstance(video, int):
                cursor = conn.execute(self._sql("DELETE FROM videos WHERE id = ?"), (video,))
            else:
                cursor = conn.execute(
                    self._sql("DELETE FROM videos WHERE path = ?"), (str(Path(video).resolve()),)
                )
            return cursor.rowcount > 0

    def has_current(self, path: str | os.PathLike[str], sha256: str) -> bool:
        """True when ``path`` is indexed with this content hash."""
        row = self._query_one(
            "SELECT 1 FROM videos WHERE path = ? AND sha256 = ?", (str(Path(path).resolve()), sha256)
        )
        return row is not None

    def videos(self) -> list[IndexedVideo]:
        """Every indexed video, by path."""
        with self._lock:
            rows = self._conn.execute(self.VIDEO_SQL + self.PATH_ORDER).fetchall()
        return [video_from_row(row) for row in rows]

    def video(self, video_id: int) -> IndexedVideo | None:
        """One video by id, or None."""
        row = self._query_one(self.VIDEO_SQL + " WHERE v.id = ?", (video_id,))
        return video_from_row(row) if row else None

    def video_by_path(self, path: str | os.PathLike[str]) -> IndexedVideo | None:
        """One video by file path, or None."""
        row = self._query_one(self.VIDEO_SQL + " WHERE v.path = ?", (str(Path(path).resolve()),))
        return video_from_row(row) if row else None

    def events(self, video_id: int) -> list[IndexedEvent]:
        """The events of a video, by start time."""
        sql = (
            'SELECT id, video_id, start, "end", description FROM events WHERE video_id = ? ORDER BY start, id'
        )
        with self._lock:
            rows = self._conn.execute(self._sql(sql), (video_id,)).fetchall()
        return [IndexedEvent(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]

    def caption(self, video_id: int) -> Caption | None:
        """The stored caption of a video (scene, events and raw model text), or None."""
        row = self._query_one("SELECT scene, raw, model FROM videos WHERE id = ?", (video_id,))
        if row is None:
            return None
        events = tuple(Event(Span(e.start, e.end), e.description) for e in self.events(video_id))
        return Caption(scene=row[0], events=events, raw=row[1], model=row[2])
