"""A SQLite library's vectors: a persisted checkpoint segment, plus the rows written since, minus deletions.

The library's SQLite file is the source of truth; the segment files beside it (:mod:`vidspan.library.ann`,
``<db>.vectors/``) are a checkpoint of it. The schema (migration ``create_vector_checkpoint``) keeps what
the checkpoint covers in the same file:

- ``_vidspan_vector_index`` (one row): the segment's name and row count, ``covered`` (the largest event id
  in it), its dimension, embedder, kind and the ``vectors_epoch`` it was built in;
- ``_vidspan_vector_tombstones``: ids up to ``covered`` whose embedding was deleted after the checkpoint,
  written by a trigger inside the deleting transaction;
- ``_vidspan_state.vectors_epoch``: bumped when an embedding up to ``covered`` is rewritten
  (``index --reembed``), which retires the checkpoint.

Event ids are ``AUTOINCREMENT``, so the rows a checkpoint lacks are exactly those with a larger id; every
write of a video (rows and tombstones) is one SQLite transaction, and a checkpoint becomes current only by
committing its row after its files are on disk. So after a SIGKILL at any moment, *checkpoint + rows past
covered - tombstones* is exactly the table; a checkpoint whose files do not match its row is rebuilt from the
rows with a warning. Readers catch up the rows past ``covered`` (exact search over them) and
:meth:`LibraryVectors.sync` folds them into a new checkpoint once there are more than
:func:`compact_after` of them.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vidspan.errors import VidspanError
from vidspan.library import ann
from vidspan.library.ann import (
    Segment,
    SegmentFiles,
    add_rows,
    in_memory,
    merge_top,
    train_ivf,
)

logger = logging.getLogger(__name__)

EXACT_FILTER = 20_000
"""Filtered searches allowing at most this many events score them all exactly."""

_CHUNK = 65_536


def compact_after(count: int) -> int:
    """Rows past the checkpoint that trigger a new one: 2% of the checkpoint, at least 4,096."""
    return max(4096, count // 50)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The ``_vidspan_vector_index`` row."""

    segment: str
    count: int
    covered: int
    dim: int
    model: str
    kind: str
    trained_on: int
    epoch: int


class LibraryVectors:
    """Nearest-neighbour search over one SQLite library's embeddings (see the module docstring).

    Args:
        conn: The library's connection (autocommit mode); used under ``lock``.
        lock: The library's lock, held around every use of ``conn``.
        path: The library file (``":memory:"`` keeps the segment in memory only).
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, path: str):
        self.conn, self.lock, self.path = conn, lock, path
        self.files = None if path == ":memory:" else SegmentFiles(Path(path + ".vectors"))
        self.segment: Segment | None = None
        self.checkpoint: Checkpoint | None = None
        self.alive: np.ndarray | None = None  # None: no tombstones in the segment
        self.delta_ids = np.zeros(0, dtype=np.int64)
        self.delta_vectors = np.zeros((0, 0), dtype=np.float32)
        self.generation: int | None = None
        self._writing = False

    # ------------------------------------------------------------------ search

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` ``(event_id, cosine)`` pairs, best first, among the event ids ``allowed`` (ascending)
        when given."""
        with self.lock:
            self.refresh()
            segment, alive = self.segment, self.alive
            delta_ids, delta_vectors = self.delta_ids, self.delta_vectors
        if k <= 0 or segment is None:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if (
            len(segment)
            and query.size != segment.dim
            or len(delta_ids)
            and query.size != delta_vectors.shape[1]
        ):
            raise VidspanError(
                f"The query vector has {query.size} values but the library {self.path} holds vectors of "
                f"{segment.dim if len(segment) else delta_vectors.shape[1]}."
            )
        parts = []
        if allowed is None:
            parts.append(segment.search(query, k, alive))
            parts.append(_exact(delta_ids, delta_vectors, query, k))
        else:
            rows = segment.positions(allowed)
            if len(rows) <= EXACT_FILTER:
                parts.append(_exact(segment.ids[rows], segment.rows(rows), query, k))
            else:
                keep = np.zeros(len(segment), dtype=bool)
                keep[rows] = True
                if alive is not None:
                    keep &= alive
                found = segment.search(query, k, keep)
                if len(found[0]) < k:  # a selective filter the probed lists barely reach: score them all
                    found = _exact(segment.ids[rows], segment.rows(rows), query, k)
                parts.append(found)
            inside = np.isin(delta_ids, allowed)
            parts.append(_exact(delta_ids[inside], delta_vectors[inside], query, k))
        return merge_top(parts, k)

    def describe(self) -> dict[str, Any]:
        """The checkpoint's state, for ``status()``."""
        with self.lock:
            self.refresh()
            return {
                "vector_index": self.segment.kind if self.segment is not None else "none",
                "vector_checkpoint": len(self.segment) if self.segment is not None else 0,
                "vector_pending": len(self.delta_ids),
            }

    # ------------------------------------------------------------------ catching up

    def refresh(self) -> None:
        """Catch up with the table: reload the checkpoint when it changed (rebuilding it when it is
        missing, stale or damaged), then the tombstones and the rows past it."""
        generation = self.conn.execute(
            "SELECT value FROM _vidspan_state WHERE name = 'embeddings_generation'"
        ).fetchone()[0]
        if generation == self.generation:
            return
        current = True
        with self._snapshot():
            generation, epoch, point = self._state()
            if point is None or point.epoch != epoch:
                if point is not None:
                    logger.info("The vectors of %s were rewritten: rebuilding its vector index", self.path)
                if self.conn.execute("SELECT 1 FROM event_embeddings LIMIT 1").fetchone():
                    current = self._rebuild(generation, epoch)
                else:
                    self.segment, self.checkpoint = None, None
            elif point != self.checkpoint:
                self._load_checkpoint(point, generation, epoch)
            self._load_delta()
            # a checkpoint another process retired while this one was built is searched once, then rebuilt
            self.generation = generation if current else None
        if self.checkpoint is not None and len(self.delta_ids) > compact_after(self.checkpoint.count):
            self.sync()

    def sync(self) -> None:
        """Fold the rows past the checkpoint into a new checkpoint on disk (appending them to the segment,
        or rebuilding it when it has outgrown its IVF training or holds many deletions). A folder that
        cannot be written is logged: the rows are safe, and searches score them from memory."""
        with self.lock:
            self.refresh()
            if self.files is None or self.checkpoint is None or not len(self.delta_ids):
                return
            before = self.generation
            try:
                self._fold()
            except OSError as exc:  # not retried until the library changes
                self.generation = before
                logger.warning("Cannot save the vector index of %s: %s", self.path, exc)

    def _fold(self) -> None:
        with self.lock:
            with self._writer_lock():
                self.generation = None
                with self._snapshot():
                    generation, epoch, point = self._state()
                    if point is None or point.epoch != epoch:
                        return  # retired meanwhile: the next refresh rebuilds it
                    if point != self.checkpoint:  # another process checkpointed meanwhile
                        self._load_checkpoint(point, generation, epoch)
                        self._load_delta()
                    if not len(self.delta_ids):
                        return
                    assert self.segment is not None
                    total = len(self.segment) + len(self.delta_ids)
                    dead = 0 if self.alive is None else int((~self.alive).sum())
                    ivf = self.segment.ivf
                    outgrown = total >= ann.EXACT_BELOW if ivf is None else total > 4 * point.trained_on
                    if outgrown or dead > len(self.segment) // 4:
                        self._rebuild(generation, epoch)
                    else:
                        self._append(point, generation, epoch)
                    self._load_delta()

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        self.conn.execute("BEGIN")  # one read snapshot for the checkpoint row and the rows
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """One writer of segment files at a time across processes (re-entrant within this object)."""
        if self.files is None or self._writing:
            yield
            return
        self.files.folder.mkdir(parents=True, exist_ok=True)
        with open(self.files.folder / "lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            self._writing = True
            try:
                yield
            finally:
                self._writing = False
                fcntl.flock(f, fcntl.LOCK_UN)

    def _state(self) -> tuple[int, int, Checkpoint | None]:
        generation, epoch = (
            self.conn.execute(f"SELECT value FROM _vidspan_state WHERE name = '{name}'").fetchone()[0]
            for name in ("embeddings_generation", "vectors_epoch")
        )
        row = self.conn.execute(
            "SELECT segment, count, covered, dim, model, kind, trained_on, epoch FROM _vidspan_vector_index"
        ).fetchone()
        return generation, epoch, Checkpoint(*row) if row else None

    def _load_checkpoint(self, point: Checkpoint, generation: int, epoch: int) -> None:
        """Open ``point``'s files; a checkpoint whose files do not match it is rebuilt from the rows."""
        if self.files is None:
            self.checkpoint = point
            return
        problem = self._open(point)
        if problem is None:
            return
        # another process may have just replaced this checkpoint (and removed its files): look again
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN")
        generation, epoch, newer = self._state()
        if newer is not None and newer != point and newer.epoch == epoch:
            problem = self._open(newer)
            if problem is None:
                return
        logger.warning(
            "The vector index of %s does not match the library (%s): rebuilding it from the rows",
            self.path,
            problem,
        )
        self._rebuild(generation, epoch)

    def _open(self, point: Checkpoint) -> Exception | None:
        """Make ``point`` the open checkpoint; the reason when its files do not hold it."""
        assert self.files is not None
        try:
            self.segment = self.files.open(
                point.segment, point.count, point.dim, point.kind != "exact", point.trained_on
            )
        except (OSError, ValueError, RuntimeError) as exc:
            return exc
        self.checkpoint = point
        return None

    def _load_delta(self) -> None:
        covered = self.checkpoint.covered if self.checkpoint is not None else 0
        rows = self.conn.execute(
            "SELECT event_id, vector FROM event_embeddings WHERE event_id > ? ORDER BY event_id", (covered,)
        ).fetchall()
        dim = self.checkpoint.dim if self.checkpoint is not None else 0
        self.delta_ids, self.delta_vectors = _decode(rows, dim)
        dead = np.array(
            [r[0] for r in self.conn.execute("SELECT event_id FROM _vidspan_vector_tombstones")],
            dtype=np.int64,
        )
        self.alive = None
        if len(dead) and self.segment is not None and len(self.segment):
            self.alive = np.ones(len(self.segment), dtype=bool)
            self.alive[self.segment.positions(np.sort(dead))] = False

    def _rebuild(self, generation: int, epoch: int) -> bool:
        """A new segment from every row of the open snapshot, persisted when the library is a file; false
        when the vectors were rewritten meanwhile (the segment is then searched once and rebuilt)."""
        dims = [r[0] for r in self.conn.execute("SELECT DISTINCT dim FROM event_embeddings")]
        if len(dims) > 1:
            raise VidspanError(
                f"The index {self.path} mixes embedding sizes {sorted(dims)}: re-index into a new file."
            )
        dim = dims[0]
        model = self.conn.execute("SELECT model FROM event_embeddings LIMIT 1").fetchone()[0]
        count = self.conn.execute("SELECT count(*) FROM event_embeddings").fetchone()[0]
        logger.info("Building the vector index of %s (%d events)", self.path, count)
        name = f"s{uuid.uuid4().hex[:12]}"
        try:
            with self._writer_lock():
                return self._build(name, dim, model, generation, epoch, persist=self.files is not None)
        except OSError as exc:  # a read-only folder, a full disk: search from memory this time
            logger.warning("Cannot save the vector index of %s (%s): it is kept in memory", self.path, exc)
            return self._build(name, dim, model, generation, epoch, persist=False)

    def _build(self, name: str, dim: int, model: str, generation: int, epoch: int, *, persist: bool) -> bool:
        segment = self._stream_rows(name, dim, persist=persist)
        covered = int(segment.ids[-1]) if len(segment) else 0
        point = Checkpoint(name, len(segment), covered, dim, model, segment.kind, segment.trained_on, epoch)
        self.segment, self.checkpoint = segment, point
        return self._commit(point, set(), generation) if persist else True

    def _stream_rows(self, name: str, dim: int, *, persist: bool) -> Segment:
        cursor = self.conn.execute("SELECT event_id, vector FROM event_embeddings ORDER BY event_id")
        if self.files is None or not persist:
            ids, vectors = _decode(cursor.fetchall(), dim)
            return in_memory(ids, vectors)
        written = 0
        while rows := cursor.fetchmany(_CHUNK):
            ids, vectors = _decode(rows, dim)
            self.files.write_rows(name, written, ids, vectors)
            written += len(ids)
        segment = self.files.open(name, written, dim, False, 0)
        if written >= ann.EXACT_BELOW:
            segment.ivf = train_ivf(segment.vectors)
            add_rows(segment.ivf, segment.vectors)
            segment.trained_on = written
            self.files.write_ivf(name, written, segment.ivf)
        return segment

    def _append(self, point: Checkpoint, generation: int, epoch: int) -> None:
        assert self.files is not None and self.segment is not None
        segment, count = self.segment, point.count
        self.files.write_rows(point.segment, count, self.delta_ids, self.delta_vectors)
        total = count + len(self.delta_ids)
        grown = self.files.open(point.segment, total, point.dim, False, point.trained_on)
        if segment.ivf is not None:
            grown.ivf = ann.clone(segment.ivf)  # other threads may be searching the current one
            add_rows(grown.ivf, self.delta_vectors)
            self.files.write_ivf(point.segment, total, grown.ivf)
        covered = int(self.delta_ids[-1])
        new = Checkpoint(
            point.segment, total, covered, point.dim, point.model, grown.kind, point.trained_on, epoch
        )
        dead = set() if self.alive is None else set(segment.ids[~self.alive].tolist())
        self.segment, self.checkpoint = grown, new
        if not self._commit(new, dead, generation):
            self.generation = None

    def _commit(self, point: Checkpoint, dead: set[int], generation: int) -> bool:
        """Make ``point`` the library's checkpoint (files already on disk), with the tombstones the rows
        call for; then delete the files no checkpoint names."""
        assert self.files is not None and self.segment is not None
        self.conn.execute("COMMIT")  # leave the read snapshot; the write below sees the latest rows
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # read-only file or long-held lock: stay in memory
            logger.warning("Cannot save the vector index of %s: %s", self.path, exc)
            self.conn.execute("BEGIN")
            return True
        try:
            now_generation, now_epoch, _ = self._state()
            if now_epoch != point.epoch:
                logger.info(
                    "The vectors of %s were rewritten while indexing them: not saving the index", self.path
                )
                self.conn.execute("COMMIT")
                self.conn.execute("BEGIN")
                return False
            else:
                if now_generation != generation:  # rows may have been deleted since the snapshot
                    live = np.array(
                        [r[0] for r in self.conn.execute(
                            "SELECT event_id FROM event_embeddings WHERE event_id <= ?", (point.covered,))],
                        dtype=np.int64,
                    )  # fmt: skip
                    dead = set(np.setdiff1d(np.asarray(self.segment.ids), live).tolist())
                self.conn.execute("DELETE FROM _vidspan_vector_tombstones")
                self.conn.executemany(
                    "INSERT INTO _vidspan_vector_tombstones VALUES (?)", [(i,) for i in sorted(dead)]
                )
                self.conn.execute("DELETE FROM _vidspan_vector_index")
                self.conn.execute(
                    "INSERT INTO _vidspan_vector_index (id, segment, count, covered, dim, model, kind,"
                    " trained_on, epoch, built_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (point.segment, point.count, point.covered, point.dim, point.model, point.kind,
                     point.trained_on, point.epoch, datetime.now(timezone.utc).isoformat(timespec="seconds")),
                )  # fmt: skip
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("BEGIN")  # back into a snapshot for the caller's context
        self.files.remove_others(point.segment, point.count)
        return True


def _decode(rows: list[tuple[int, bytes]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    flat = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4")
    if dim and flat.size != dim * len(rows):
        raise VidspanError(
            f"The library holds vectors of mixed sizes: re-index into a new file (expected {dim})."
        )
    return ids, flat.astype(np.float32).reshape(len(rows), -1)


def _exact(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not len(ids):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return Segment(None, np.asarray(ids), np.asarray(vectors)).search(query, k)

