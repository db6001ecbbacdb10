"""Other vector stores for benchmarks/search.py: LanceDB, sqlite-vec and pgvector behind one interface.

Each peer stores rows ``id`` (int64, 0..n-1), ``vector`` (float32, unit length) and ``caption`` text in a
folder, builds the approximate-nearest-neighbour index its store recommends, and answers top-k by inner
product (= cosine on unit vectors):

- **lancedb**: an embedded table under ``workdir/lancedb`` with an ``IVF_HNSW_SQ`` index (LanceDB's pick for
  the best recall/latency trade-off; one partition up to ~1M rows by default), distance ``dot``; the query
  knobs ``ef``, ``refine_factor`` and ``nprobes`` are constructor arguments. Rows from :meth:`add` are
  searched exhaustively beside the index until the table is ``optimize()``d.
- **sqlite-vec**: a ``vec0`` virtual table (``float[d]``) in ``workdir/sqlite-vec.db``, captions in a plain
  table, each batch in one transaction. sqlite-vec 0.1 has no ANN index: a query scans every vector (L2,
  which on unit vectors ranks exactly like cosine). Where Python's ``sqlite3`` cannot load extensions (built
  without ``--enable-loadable-sqlite-extensions``, like this pyenv Python), ``pysqlite3`` is used instead.
- **pgvector**: PostgreSQL started by ``pgserver`` on ``workdir/pg``; table ``events (id bigint primary key,
  caption text, embedding vector(d))`` loaded with one binary ``COPY``, then ``CREATE INDEX ... USING hnsw
  (embedding vector_ip_ops)``; queries ``ORDER BY embedding <#> q LIMIT k`` under ``hnsw.ef_search``. The
  cold number excludes the server start: the warm peer keeps the server up and the cold process only
  connects, as a client of a database server that stays up would.

:meth:`cold_command` is the argv of a fresh process (``python benchmarks/peers.py cold NAME WORKDIR QUERY
K``) that opens the store from disk with the settings the build recorded in ``workdir/peers-NAME.json``,
runs one query and prints the ids as JSON; call it before :meth:`close` (which stops pgvector's server).
``python benchmarks/peers.py selftest`` checks all three on 20,000 random vectors.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np


class Peer(Protocol):
    name: str
    settings: str

    def build(self, workdir: Path, vectors: np.ndarray, captions: list[str]) -> None: ...
    def search(self, query: np.ndarray, k: int) -> np.ndarray: ...
    def add(self, vectors: np.ndarray, first_id: int, captions: list[str]) -> None: ...
    def cold_command(self, workdir: Path, query_file: Path, k: int) -> list[str]: ...
    def close(self) -> None: ...


def _f32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


class _Base:
    """What the peers share: the settings file a build leaves for the cold process, and its argv."""

    name: ClassVar[str] = ""

    def _record(self, workdir: Path, **extra: Any) -> None:
        """Write the constructor arguments (and ``extra``, such as a connection URI) to the workdir."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.init}  # type: ignore[arg-type]
        (Path(workdir) / f"peers-{self.name}.json").write_text(json.dumps({"kwargs": kwargs, **extra}))

    def cold_command(self, workdir: Path, query_file: Path, k: int) -> list[str]:
        """argv of a new process that opens the store in ``workdir``, runs one query and prints the ids."""
        here, work = str(Path(__file__).resolve()), str(Path(workdir).resolve())
        return [sys.executable, here, "cold", self.name, work, str(Path(query_file).resolve()), str(k)]


@dataclass
class LanceDBPeer(_Base):
    """LanceDB embedded table with an IVF_HNSW_SQ (or IVF_PQ) index, distance ``dot``.

    ``num_partitions`` None is LanceDB's default (for HNSW one partition per ~1M rows); ``ef`` (HNSW beam,
    at least k), ``refine_factor`` (re-rank ``k * refine_factor`` candidates on the full vectors) and
    ``nprobes`` (None: LanceDB's own) are the query knobs.
    """

    name: ClassVar[str] = "lancedb"
    index_type: str = "IVF_HNSW_SQ"
    num_partitions: int | None = None
    m: int = 20
    ef_construction: int = 300
    ef: int | None = 100
    refine_factor: int | None = 2
    nprobes: int | None = None
    _table: Any = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> str:
        parts = "default" if self.num_partitions is None else self.num_partitions
        build = f"{self.index_type}, dot, num_partitions={parts}"
        if self.index_type == "IVF_HNSW_SQ":
            build += f", m={self.m}, ef_construction={self.ef_construction}"
        knobs = {"ef": self.ef, "refine_factor": self.refine_factor, "nprobes": self.nprobes}
        query = ", ".join(f"{key}={'default' if v is None else v}" for key, v in knobs.items())
        return f"{build}; query {query}; added rows brute-force until optimize()"

    @staticmethod
    def _connect(workdir: Path) -> Any:
        os.environ.setdefault("LANCEDB_LOG", "error")  # before the first import: else Rust warns on stderr
        import lancedb

        return lancedb.connect(str(Path(workdir) / "lancedb"))

    @staticmethod
    def _arrow(vectors: np.ndarray, first_id: int, captions: list[str]) -> Any:
        import pyarrow as pa

        x = _f32(vectors)
        ids = pa.array(np.arange(first_id, first_id + len(x), dtype=np.int64))
        vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        return pa.table({"id": ids, "vector": vec, "caption": pa.array(captions, type=pa.string())})

    def build(self, workdir: Path, vectors: np.ndarray, captions: list[str]) -> None:
        db = self._connect(workdir)
        from lancedb.index import HnswSq, IvfPq

        table = db.create_table("events", data=self._arrow(vectors, 0, captions), mode="overwrite")
        if self.index_type == "IVF_HNSW_SQ":
            config: Any = HnswSq(
                distance_type="dot",
                num_partitions=self.num_partitions,
                m=self.m,
                ef_construction=self.ef_construction,
            )
        elif self.index_type == "IVF_PQ":
            config = IvfPq(distance_type="dot", num_partitions=self.num_partitions)
        else:
            raise ValueError(f"index_type must be IVF_HNSW_SQ or IVF_PQ, not {self.index_type!r}")
        table.create_index("vector", config=config)
        self._record(workdir)
        self._table = table

    def open(self, workdir: Path, recorded: dict[str, Any]) -> None:
        """Open the table that :meth:`build` wrote (the cold path)."""
        self._table = self._connect(workdir).open_table("events")

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        q = self._table.search(_f32(query), vector_column_name="vector").distance_type("dot").limit(k)
        if self.ef is not None:
            q = q.ef(max(self.ef, k))
        if self.refine_factor is not None:
            q = q.refine_factor(self.refine_factor)
        if self.nprobes is not None:
            q = q.nprobes(self.nprobes)
        return q.select(["id", "_distance"]).to_arrow()["id"].to_numpy().astype(np.int64)

    def add(self, vectors: np.ndarray, first_id: int, captions: list[str]) -> None:
        """Append a fragment (one commit); new rows are found by an exhaustive scan beside the index."""
        self._table.add(self._arrow(vectors, first_id, captions))

    def close(self) -> None:
        self._table = None


def _sqlite_connect(path: Path) -> Any:
    """A connection with sqlite-vec loaded: stdlib ``sqlite3`` if it can load extensions, else pysqlite3."""
    import sqlite3

    import sqlite_vec

    module: Any = sqlite3
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        try:
            import pysqlite3 as module  # type: ignore[no-redef]
        except ImportError as err:
            raise RuntimeError(
                "this Python's sqlite3 cannot load extensions (built without "
                "--enable-loadable-sqlite-extensions): pip install pysqlite3-binary for sqlite-vec"
            ) from err
    conn = module.connect(str(path))
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.enable_load_extension(False)
    return conn


@dataclass
class SqliteVecPeer(_Base):
    """sqlite-vec ``vec0`` table: exact brute-force KNN (sqlite-vec 0.1 has no ANN index)."""

    name: ClassVar[str] = "sqlite-vec"
    settings: ClassVar[str] = (
        "vec0 virtual table, embedding float[d], L2 on unit vectors (= cosine order); brute force "
        "(sqlite-vec has no ANN index); captions in a plain table; each batch in one transaction"
    )
    _conn: Any = field(default=None, init=False, repr=False)

    def build(self, workdir: Path, vectors: np.ndarray, captions: list[str]) -> None:
        path = Path(workdir) / "sqlite-vec.db"
        path.unlink(missing_ok=True)
        self._conn = _sqlite_connect(path)
        with self._conn:
            self._conn.execute("CREATE TABLE captions (id INTEGER PRIMARY KEY, caption TEXT NOT NULL)")
            self._conn.execute(
                f"CREATE VIRTUAL TABLE vec_events USING vec0(embedding float[{vectors.shape[1]}])"
            )
        self.add(vectors, 0, captions)
        self._record(workdir)

    def open(self, workdir: Path, recorded: dict[str, Any]) -> None:
        """Open the database file that :meth:`build` wrote (the cold path)."""
        self._conn = _sqlite_connect(Path(workdir) / "sqlite-vec.db")

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        rows = self._conn.execute(
            "SELECT rowid FROM vec_events WHERE embedding MATCH ? AND k = ? ORDER BY distance",
            (_f32(query).tobytes(), k),
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def add(self, vectors: np.ndarray, first_id: int, captions: list[str]) -> None:
        """Insert captions and vectors in one transaction, committed on return."""
        x = _f32(vectors)
        ids = range(first_id, first_id + len(x))
        with self._conn:
            self._conn.executemany("INSERT INTO captions VALUES (?, ?)", zip(ids, captions, strict=True))
            self._conn.executemany(
                "INSERT INTO vec_events (rowid, embedding) VALUES (?, ?)",
                ((i, row.tobytes()) for i, row in zip(ids, x, strict=True)),
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class PgVectorPeer(_Base):
    """PostgreSQL 16 + pgvector 0.6.2 (the pgserver wheel): HNSW index with ``vector_ip_ops``.

    :meth:`build` includes the server's first start (initdb) and one restart for ``shared_buffers``. Recall
    is set by ``ef_search``: on search.py's generator at 200k rows, recall@10 was 0.92 at 100, 0.95-0.97 at
    200 and 0.975 at 400 (m=16, ef_construction=64).
    """

    name: ClassVar[str] = "pgvector"
    m: int = 16
    ef_construction: int = 64
    ef_search: int = 200  # 100 gave recall@10 0.92 at 200k on search.py's generator; 200 about 0.95
    maintenance_work_mem: str = "4GB"
    max_parallel_maintenance_workers: int = 1
    shared_buffers: str = "2GB"
    _server: Any = field(default=None, init=False, repr=False)
    _conn: Any = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> str:
        return (
            f"hnsw vector_ip_ops, m={self.m}, ef_construction={self.ef_construction} "
            f"(maintenance_work_mem={self.maintenance_work_mem}, max_parallel_maintenance_workers="
            f"{self.max_parallel_maintenance_workers}, shared_buffers={self.shared_buffers}); query "
            f"hnsw.ef_search={self.ef_search}; binary COPY load; cold excludes server start (server stays up)"
        )

    def _start(self, pgdata: Path) -> str:
        """Start (or reuse) the pgserver instance with the configured shared_buffers; returns its URI."""
        import warnings

        import psycopg

        with warnings.catch_warnings():  # platformdirs warns on import where XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver

        self._server = pgserver.get_server(pgdata, cleanup_mode="stop")
        with psycopg.connect(self._server.get_uri(), autocommit=True) as conn:
            sql = "SELECT pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)"
            (same,) = conn.execute(sql, (self.shared_buffers,)).fetchone()
            if not same:
                conn.execute(f"ALTER SYSTEM SET shared_buffers = '{self.shared_buffers}'")
        if not same:  # shared_buffers takes a restart
            self._server.cleanup()
            self._server = pgserver.get_server(pgdata, cleanup_mode="stop")
        return self._server.get_uri()

    def _connect(self, uri: str) -> Any:
        import psycopg
        from pgvector.psycopg import register_vector

        conn = psycopg.connect(uri, autocommit=True)  # each query its own statement; COPY is atomic alone
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
        return conn

    def build(self, workdir: Path, vectors: np.ndarray, captions: list[str]) -> None:
        import psycopg

        uri = self._start(Path(workdir) / "pg")
        with psycopg.connect(uri, autocommit=True) as admin:
            sql = "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            if admin.execute(sql).fetchone() is None:
                raise RuntimeError(
                    "this pgserver build does not ship pgvector: CREATE EXTENSION vector fails"
                )
            admin.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self._conn = conn = self._connect(uri)  # register_vector needs the extension
        conn.execute("DROP TABLE IF EXISTS events")
        d = vectors.shape[1]
        conn.execute(
            f"CREATE TABLE events (id bigint PRIMARY KEY, caption text NOT NULL, embedding vector({d}))"
        )
        self.add(vectors, 0, captions)
        with conn.transaction():
            conn.execute(f"SET LOCAL maintenance_work_mem = '{self.maintenance_work_mem}'")
            conn.execute(
                f"SET LOCAL max_parallel_maintenance_workers = {int(self.max_parallel_maintenance_workers)}"
            )
            conn.execute(
                "CREATE INDEX events_embedding ON events USING hnsw (embedding vector_ip_ops) "
                f"WITH (m = {int(self.m)}, ef_construction = {int(self.ef_construction)})"
            )
        conn.execute("ANALYZE events")
        self._record(workdir, uri=uri)

    def open(self, workdir: Path, recorded: dict[str, Any]) -> None:
        """Connect to the running server whose URI :meth:`build` recorded (the cold path; no server start)."""
        self._conn = self._connect(recorded["uri"])

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        sql = "SELECT id FROM events ORDER BY embedding <#> %s LIMIT %s"
        rows = self._conn.execute(sql, (_f32(query), k), prepare=True).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def add(self, vectors: np.ndarray, first_id: int, captions: list[str]) -> None:
        """One binary COPY of the rows, committed on return (an HNSW index takes them as they come)."""
        x = np.ascontiguousarray(vectors, dtype=">f4")
        n, d = x.shape
        row_head = struct.Struct(">hiqi")  # 3 fields; int8 id (length 8); caption length
        vec_head = struct.pack(">ihh", 4 + 4 * d, d, 0)  # field length; pgvector dim, unused
        parts = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
        with self._conn.cursor() as cur, cur.copy("COPY events FROM STDIN (FORMAT BINARY)") as copy:
            for i in range(n):
                text = captions[i].encode()
                parts += (row_head.pack(3, 8, first_id + i, len(text)), text, vec_head, x[i].tobytes())
                if len(parts) >= 40_000:
                    copy.write(b"".join(parts))
                    parts = []
            copy.write(b"".join(parts) + b"\xff\xff")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._server is not None:
            self._server.cleanup()  # stops the server (cleanup_mode="stop"); the data folder stays
            self._server = None


PEERS: dict[str, Callable[[], Peer]] = {
    "lancedb": LanceDBPeer,
    "sqlite-vec": SqliteVecPeer,
    "pgvector": PgVectorPeer,
}


def cold(name: str, workdir: Path, query_file: Path, k: int) -> list[int]:
    """Open ``name``'s store in ``workdir`` with its recorded settings and run one query (a fresh process)."""
    recorded = json.loads((workdir / f"peers-{name}.json").read_text())
    peer: Any = PEERS[name](**recorded["kwargs"])
    peer.open(workdir, recorded)
    try:
        return [int(i) for i in peer.search(np.load(query_file), k)]
    finally:
        peer.close()


def selftest(n: int = 20_000, d: int = 384, num_queries: int = 50, k: int = 10) -> None:
    """Build every peer on ``n`` random unit vectors and print build, warm, recall, add and cold numbers."""
    import shutil
    import subprocess
    import tempfile
    import time

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n + num_queries + 1000, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    base, queries, extra = x[:n], x[n : n + num_queries], x[n + num_queries :]
    scores = queries @ base.T
    exact = np.argsort(-scores, axis=1)[:, :k]
    nth = -np.sort(-scores, axis=1)[:, [0, k - 1, 10 * k - 1]].mean(axis=0)
    captions = [f"event {i}" for i in range(n + len(extra))]
    print(f"{n} random unit vectors, d={d}, {num_queries} queries, k={k}; mean cosine of the 1st, {k}th,")
    print(f"{10 * k}th neighbour: {nth[0]:.2f}, {nth[1]:.2f}, {nth[2]:.2f} (isotropic: hard for ANN recall)")
    for name, make in PEERS.items():
        workdir = Path(tempfile.mkdtemp(prefix=f"peers-{name}-"))
        peer = make()
        try:
            t0 = time.perf_counter()
            peer.build(workdir, base, captions[:n])
            build_s = time.perf_counter() - t0
            peer.search(queries[0], k)  # warm-up
            times, hits = [], 0
            for q, truth in zip(queries, exact, strict=True):
                t0 = time.perf_counter()
                ids = peer.search(q, k)
                times.append(time.perf_counter() - t0)
                hits += len(set(ids.tolist()) & set(truth.tolist()))
            t0 = time.perf_counter()
            peer.add(extra, n, captions[n:])
            add_s = time.perf_counter() - t0
            found = int(peer.search(extra[-1], 1)[0]) == n + len(extra) - 1
            np.save(workdir / "query.npy", queries[1])
            t0 = time.perf_counter()
            argv = peer.cold_command(workdir, workdir / "query.npy", k)
            out = subprocess.run(argv, capture_output=True, text=True, check=True)
            cold_s = time.perf_counter() - t0
            same = json.loads(out.stdout) == peer.search(queries[1], k).tolist()
            print(
                f"{name:10s} build {build_s:6.2f} s  warm p50 {1000 * np.median(times):6.2f} ms  "
                f"recall@{k} {hits / (k * num_queries):.3f}  add-{len(extra)} {add_s:5.2f} s "
                f"(added row found: {found})  cold {cold_s:5.2f} s (same ids as warm: {same})"
            )
            print(f"{'':10s} {peer.settings}")
        finally:
            peer.close()
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "cold":
        print(json.dumps(cold(argv[1], Path(argv[2]), Path(argv[3]), int(argv[4]))))
        return 0
    if argv == ["selftest"]:
        selftest()
        return 0
    print("usage: peers.py cold NAME WORKDIR QUERY_NPY K | peers.py selftest", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
