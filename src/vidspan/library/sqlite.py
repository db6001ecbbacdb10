"""``VideoIndex``: a library of captioned videos in one SQLite file, searched by words and by meaning.

Tables (see :mod:`vidspan.library.migrations`): ``videos``, ``events`` (cascade-deleted with their video),
``event_embeddings`` (little-endian float32 blobs), ``events_fts`` (FTS5 over event descriptions, kept in
sync by triggers) and ``_vidspan_migrations``. Search fuses an FTS5 BM25 ranking with a vector ranking by
reciprocal rank fusion (RRF, k = 60). Vectors are searched through
:class:`~vidspan.library.vectors.LibraryVectors`: a FAISS checkpoint in ``<db>.vectors/`` beside the file,
plus the rows written since, so a new process opens a large library without reading its embeddings.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidspan.errors import IndexNotFoundError, VidspanError
from vidspan.library.migrations import MIGRATIONS, migrate, schema_version
from vidspan.library.sql import SqlReads, event_vectors, video_row
from vidspan.library.types import SearchHit
from vidspan.library.vectors import LibraryVectors
from vidspan.types import Caption

if TYPE_CHECKING:
    from vidspan.library.embed import TextEmbedder

logger = logging.getLogger(__name__)

RRF_K = 60
"""Reciprocal rank fusion constant: a hit at rank r (from 1) in one ranking scores 1 / (RRF_K + r)."""

_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the then this to was with".split()
)


def default_index_path() -> Path:
    """``$VIDSPAN_INDEX``, else ``$VIDSPAN_USER_PATH/index.sqlite`` (``VIDSPAN_USER_PATH`` defaults to
    ``~/.cache/vidspan``): one library per user, found from any working directory."""
    if os.environ.get("VIDSPAN_INDEX"):
        return Path(os.environ["VIDSPAN_INDEX"]).expanduser()
    root = os.environ.get("VIDSPAN_USER_PATH") or "~/.cache/vidspan"
    return Path(root).expanduser() / "index.sqlite"


def to_blob(vector: np.ndarray) -> bytes:
    """A vector as a little-endian float32 blob."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int | None = None) -> np.ndarray:
    """Inverse of :func:`to_blob` (a float32 array in native order)."""
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if dim is not None and vector.size != dim:
        raise ValueError(f"Invalid embedding blob: {vector.size} values. It must hold {dim}.")
    return vector


COMMON_FLOOR = 50_000
"""Query words found in more than half of the events, and in more than this many, are left out of the
BM25 query (see :meth:`VideoIndex._common_words`)."""


def query_words(text: str) -> list[str]:
    """The distinct lower-case words of ``text`` that a search matches (stopwords dropped when others
    remain)."""
    words = re.findall(r"\w+", text.lower())
    return list(dict.fromkeys([w for w in words if w not in _STOPWORDS] or words))


def fts_query(text: str, skip: frozenset[str] | set[str] = frozenset()) -> str | None:
    """User text as a safe FTS5 query: each word quoted, OR-ed (stopwords dropped when others remain,
    and the words in ``skip``)."""
    unique = [w for w in query_words(text) if w not in skip]
    if not unique:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)


def _glob_match(path: str, pattern: str) -> int:
    return int(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern))


def _filters(path_glob: str | None, start: float | None, end: float | None) -> tuple[str, list[Any]]:
    """``search``'s filters as SQL conditions on events ``e`` (each starting `` AND``) and their values."""
    where, params = "", []
    if path_glob is not None:
        where += " AND e.video_id IN (SELECT id FROM videos WHERE vidspan_glob(path, ?))"
        params.append(path_glob)
    if start is not None:
        where += ' AND e."end" > ?'
        params.append(start)
    if end is not None:
        where += " AND e.start < ?"
        params.append(end)
    return where, params


class VideoIndex(SqlReads):
    """A searchable library of captioned videos in one SQLite file (implements ``Library``).

    Args:
        path: The database file (created with its folder unless ``create`` is false), or ``":memory:"``
            (default: :func:`default_index_path`).
        create: Create a missing file; when false a missing file raises :class:`IndexNotFoundError`.
        embedder: Embeds search queries (default: the embedder the library's vectors record, else the
            bundled all-MiniLM-L6-v2, loaded lazily).

    Example:
        >>> with VideoIndex("library.sqlite") as index:  # doctest: +SKIP
        ...     hits = index.search("a hand lifts a bottle", limit=5)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        embedder: TextEmbedder | None = None,
    ):
        path = default_index_path() if path is None else path
        self.path = str(path) if str(path) == ":memory:" else str(Path(path).expanduser().resolve())
        if self.path != ":memory:":
            if not Path(self.path).exists():
                if not create:
                    raise IndexNotFoundError(path)
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._embedder = embedder
        self._vocab_ready = False
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.create_function("vidspan_glob", 2, _glob_match, deterministic=True)
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise VidspanError(f"Cannot open index {self.path}: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise
        self.vectors = LibraryVectors(self._conn, self._lock, self.path)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> VideoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ writing

    def add_video(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        caption: Caption,
        embeddings: np.ndarray | Sequence[Sequence[float]],
        *,
        duration_seconds: float | None = None,
        size: int | None = None,
        mtime: float | None = None,
        embedding_model: str = "all-minilm-l6-v2",
    ) -> int:
        """Store a captioned video and its event embeddings in one transaction; returns the video id.

        An older entry for the same path (and its events) is replaced.

        Args:
            path: The video file (stored as an absolute path).
            sha256: Hex digest of the file's content.
            caption: The caption; each event becomes a searchable row.
            embeddings: One vector per event, in the caption's event order (``(len(caption), dim)``).
            duration_seconds: Video length (default: the end of the caption's last window or event).
            size: File size in bytes (default: read from the file when it exists).
            mtime: File modification time (default: read from the file when it exists).
            embedding_model: Name recorded with the vectors.
        """
        vectors = event_vectors(caption, embeddings, 0)
        self.check_embedder(embedding_model, writing=True)
        stored = self._query_one("SELECT dim FROM event_embeddings LIMIT 1", ())
        if stored and vectors.size and stored[0] != vectors.shape[1]:
            raise ValueError(
                f"Invalid embeddings: {vectors.shape[1]} values per vector. It must be {stored[0]}, "
                "as for the vectors already in this index."
            )
        row = video_row(path, sha256, caption, duration_seconds, size, mtime)
        abspath = row[0]
        with self._transaction() as conn:
            conn.execute("DELETE FROM videos WHERE path = ?", (abspath,))
            video_id = conn.execute(
                "INSERT INTO videos (path, sha256, size, mtime, duration, scene, model, indexed_at, raw,"
                " settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).lastrowid  # fmt: skip
            for event, vector in zip(caption.events, vectors, strict=True):
                event_id = conn.execute(
                    'INSERT INTO events (video_id, start, "end", description) VALUES (?, ?, ?, ?)',
                    (video_id, event.start, event.end, event.description),
                ).lastrowid
                conn.execute(
                    "INSERT INTO event_embeddings (event_id, model, dim, vector) VALUES (?, ?, ?, ?)",
                    (event_id, embedding_model, int(vector.size), to_blob(vector)),
                )
        logger.info("Indexed %s: %d events", abspath, len(caption.events))
        assert video_id is not None
        return int(video_id)

    def reembed(self, embedder: Any, *, batch_size: int = 256, progress: Any = None) -> int:
        """Replace every event's vector with ``embedder``'s (any size) in one write transaction, so a
        crash leaves the library as it was and no event added meanwhile keeps an old vector. Returns the
        number of events re-embedded."""
        with self._transaction() as conn:
            # retires the vector checkpoint even when none is recorded yet (a build may be under way)
            conn.execute("UPDATE _vidspan_state SET value = value + 1 WHERE name = 'vectors_epoch'")
            rows = conn.execute("SELECT id, description FROM events ORDER BY id").fetchall()
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                vectors = embedder.embed([r[1] for r in chunk])
                conn.executemany(
                    "INSERT OR REPLACE INTO event_embeddings (model, dim, vector, event_id) "
                    "VALUES (?, ?, ?, ?)",
                    [(embedder.name, int(v.size), to_blob(v), r[0])
                     for r, v in zip(chunk, vectors, strict=True)],
                )  # fmt: skip
                if progress is not None:
                    progress(min(start + batch_size, len(rows)), len(rows))
            self._write_embedder(conn, embedder.name, embedder.dim)
        self._embedder = embedder
        return len(rows)

    def sync_vectors(self) -> None:
        """Save the rows added since the vector checkpoint into a new one (``vidspan index`` calls this at
        the end of a run; a search catches up on its own, and saves once many rows are pending)."""
        self.vectors.sync()

    # ------------------------------------------------------------------ reading

    def status(self) -> dict[str, Any]:
        """Counts and settings, for ``vidspan library`` and the server's health page."""
        with self._lock:
            num_videos, num_events, num_vectors = (
                self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("videos", "events", "event_embeddings")
            )
            models = [r[0] for r in self._conn.execute("SELECT DISTINCT model FROM event_embeddings")]
            version = schema_version(self._conn)
        size = os.path.getsize(self.path) if self.path != ":memory:" and os.path.exists(self.path) else 0
        return {
            "path": self.path,
            "num_videos": num_videos,
            "num_events": num_events,
            "num_embeddings": num_vectors,
            "embedding_models": models,
            "schema_version": version,
            "schema_latest": len(MIGRATIONS),
            "vector_backend": "faiss",
            **self.vectors.describe(),
            "size_bytes": size,
        }

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        path_glob: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[SearchHit]:
        """Events matching ``query`` by words (BM25) and by meaning (embeddings), fused by RRF.

        Args:
            query: Free text; FTS5 syntax characters are quoted, so any text is safe.
            limit: Most hits returned.
            path_glob: Only videos whose absolute path (or file name) matches this fnmatch pattern.
            start: Only events ending after this time (seconds).
            end: Only events starting before this time (seconds).

        Returns:
            Hits, best first; ``score`` is the RRF score (sum over rankings of ``1 / (60 + rank)``).
        """
        if limit < 1:
            raise ValueError(f"Invalid limit: {limit}. It must be >= 1.")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"Invalid time range: start={start}, end={end}. It must satisfy start < end.")
        depth = max(50, 5 * limit)
        text_ranked = self._text_ranking(query, depth, path_glob, start, end)
        vector_ranked = self._vector_ranking(query, depth, path_glob, start, end)
        scores: dict[int, float] = {}
        for ranking in (text_ranked, vector_ranked):
            for rank, event_id in enumerate(ranking, start=1):
                scores[event_id] = scores.get(event_id, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        if not best:
            return []
        ids = [event_id for event_id, _ in best]
        with self._lock:
            rows = self._conn.execute(
                'SELECT e.id, e.video_id, e.start, e."end", e.description, v.path FROM events e '
                f"JOIN videos v ON v.id = e.video_id WHERE e.id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        by_id = {row[0]: row for row in rows}
        return [
            SearchHit(
                video=r[5], start=r[2], end=r[3], score=score, caption=r[4], video_id=r[1], event_id=r[0]
            )
            for event_id, score in best
            if (r := by_id.get(event_id)) is not None
        ]

    def _text_ranking(
        self, query: str, depth: int, path_glob: str | None, start: float | None, end: float | None
    ) -> list[int]:
        match = fts_query(query, self._common_words(query_words(query)))
        if match is None:
            return []
        where, params = _filters(path_glob, start, end)
        sql = (
            "SELECT e.id FROM events_fts JOIN events e ON e.id = events_fts.rowid WHERE events_fts MATCH ?"
            + where + " ORDER BY bm25(events_fts), e.id LIMIT ?"
        )  # fmt: skip
        with self._lock:
            return [row[0] for row in self._conn.execute(sql, [match, *params, depth])]

    def _common_words(self, words: list[str]) -> set[str]:
        """The ``words`` in more than half of the events (and more than :data:`COMMON_FLOOR`).

        FTS5's BM25 gives such a term an idf of ``log((N - n + 0.5) / (n + 0.5)) <= 0``, clamped to 1e-6, so
        it adds nothing to any score, yet ranking it means reading its whole posting list: 1.2 s of a cold
        search at 1M events whose captions all say "a person". Leaving it out keeps the order of the rows
        that match the other words. Words are stemmed by FTS5 itself (a temporary table with the index's
        tokenizer) and counted in its vocabulary.
        """
        with self._lock:
            total = self._conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            if total <= COMMON_FLOOR or not words:
                return set()
            conn = self._conn
            if not self._vocab_ready:  # temporary tables: nothing is written to the library
                for sql in (
                    "temp.vidspan_words USING fts5(w, tokenize='porter unicode61')",
                    "temp.vidspan_stems USING fts5vocab(temp, vidspan_words, 'instance')",
                    "temp.vidspan_vocab USING fts5vocab(main, events_fts, 'row')",
                ):
                    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS " + sql)
                self._vocab_ready = True
            conn.execute("DELETE FROM temp.vidspan_words")
            conn.executemany("INSERT INTO temp.vidspan_words (rowid, w) VALUES (?, ?)", enumerate(words))
            stems = dict(conn.execute("SELECT doc, term FROM temp.vidspan_stems").fetchall())
            counts = dict(conn.execute(
                f"SELECT term, doc FROM temp.vidspan_vocab WHERE term IN ({','.join('?' * len(stems))})",
                list(stems.values()),
            ).fetchall())  # fmt: skip
        limit = max(COMMON_FLOOR, total // 2)
        return {w for i, w in enumerate(words) if counts.get(stems.get(i), 0) > limit}

    def _vector_ranking(
        self, query: str, depth: int, path_glob: str | None, start: float | None, end: float | None
    ) -> list[int]:
        if not query.strip():
            return []
        self.check_embedder(self.embedder.name)
        allowed: np.ndarray | None = None
        where, params = _filters(path_glob, start, end)
        if where:
            with self._lock:
                sql = f"SELECT e.id FROM events e WHERE 1{where} ORDER BY e.id"
                rows = self._conn.execute(sql, params).fetchall()
            allowed = np.array([r[0] for r in rows], dtype=np.int64)
            if not len(allowed):
                return []
        vector = self.embedder.embed([query])[0]
        return [event_id for event_id, _ in self.vectors.search(vector, depth, allowed)]
