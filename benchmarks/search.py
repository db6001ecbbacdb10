"""Library search at scale: IVF vs exact search in numpy, and ingest into IVF and into SQLite.

For each size (100k and 1M events by default) the script generates synthetic event embeddings, then measures:

- **IVF build** (events/s): :meth:`vidspan.library.vectors.IVFIndex.build` (k-means on a sample + filing every
  vector under its nearest centroid);
- **SQLite ingest** (events/s): a real file with one ``events`` table (id, video_id, start, end, caption text,
  embedding as a little-endian float32 blob), all rows in one transaction with ``executemany`` (stdlib
  ``sqlite3``), committed;
- **query latency** p50 / p95 over single queries (default 200), for :class:`ExactIndex` and for IVF at its
  default ``nprobe``, and IVF's recall@10 against the exact top 10.

The generator mimics sentence embeddings (d = 384, unit length): every vector is a shared direction (sentence
embeddings are anisotropic: unrelated captions still have a positive cosine), weight 0.35, plus one of
``n / 1000`` topic centroids (weight 0.6), plus one of ``n / 100`` sub-topic centroids, each belonging to a
random topic (weight 0.4), plus isotropic Gaussian noise of expected norm ``--noise`` (1.0), normalised;
queries are fresh draws from the same distribution (not indexed). At 1M and noise 1.0 a query's mean cosine
to the library is 0.07, to its nearest neighbour 0.48 and to its 10th 0.44; ``--noise 1.5`` is a harder,
flatter variant (0.34 and 0.29) where the top 10 spread over many IVF lists.

Run ``python benchmarks/search.py`` (``--help`` for options); it needs about 8 GB of memory and 2 GB of disk
for 1M events.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidspan.library.vectors import ExactIndex, IVFIndex

DIM = 384
NOISE = 1.0
SUBTOPIC_WEIGHT = 0.4


@dataclass
class Row:
    size: int
    nlist: int
    nprobe: int
    ivf_build_s: float
    sqlite_s: float
    sqlite_mb: float
    exact_p50: float
    exact_p95: float
    ivf_p50: float
    ivf_p95: float
    recall: float


def generate(n: int, num_queries: int, noise: float = NOISE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` event embeddings and ``num_queries`` queries, float32 unit vectors (see the module docstring)."""
    rng = np.random.default_rng(seed)
    num_topics, num_subtopics = max(10, n // 1000), max(100, n // 100)
    common = _unit(rng.standard_normal(DIM).astype(np.float32))
    topics = _unit(rng.standard_normal((num_topics, DIM)).astype(np.float32))
    subtopics = _unit(rng.standard_normal((num_subtopics, DIM)).astype(np.float32))
    topic_of = rng.integers(0, num_topics, num_subtopics)
    total = n + num_queries
    out = np.empty((total, DIM), dtype=np.float32)
    for start in range(0, total, 100_000):
        m = min(100_000, total - start)
        sub = rng.integers(0, num_subtopics, m)
        x = 0.35 * common + 0.6 * topics[topic_of[sub]] + SUBTOPIC_WEIGHT * subtopics[sub]
        x += rng.standard_normal((m, DIM), dtype=np.float32) * np.float32(noise / np.sqrt(DIM))
        out[start : start + m] = _unit(x)
    return out[:n], out[n:]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def sqlite_ingest(path: Path, vectors: np.ndarray, batch: int = 10_000) -> float:
    """Seconds to insert every vector with a caption into a fresh SQLite file, in one transaction."""
    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, video_id INTEGER NOT NULL, start REAL NOT NULL, "
        '"end" REAL NOT NULL, caption TEXT NOT NULL, embedding BLOB NOT NULL)'
    )
    le = vectors.astype("<f4", copy=False)
    with con:  # one transaction
        for first in range(0, len(le), batch):
            rows = [
                (i, i // 100, (i % 100) * 4.0, (i % 100) * 4.0 + 4.0,
                 f"event {i}: a person does thing {i % 977}", le[i].tobytes())
                for i in range(first, min(first + batch, len(le)))
            ]  # fmt: skip
            con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return time.perf_counter() - started


def latencies_ms(search, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query wall time in ms and the hit ids, one query at a time (after one warm-up query)."""
    search(queries[0])
    times, hits = [], []
    for q in queries:
        started = time.perf_counter()
        ids, _ = search(q)
        times.append((time.perf_counter() - started) * 1000)
        hits.append(ids)
    return np.asarray(times), np.asarray(hits)


def bench(n: int, num_queries: int, noise: float, nprobes: list[int], workdir: Path) -> list[Row]:
    """One row per ``nprobe`` (the index default first) for ``n`` events."""
    print(f"[{n:,}] generating", file=sys.stderr, flush=True)
    vectors, queries = generate(n, num_queries, noise)
    ids = np.arange(n, dtype=np.int64)

    print(f"[{n:,}] sqlite ingest", file=sys.stderr, flush=True)
    db = workdir / f"events-{n}.sqlite"
    sqlite_s = sqlite_ingest(db, vectors)
    sqlite_mb = sum(p.stat().st_size for p in workdir.glob(f"events-{n}.sqlite*")) / 1e6
    for p in workdir.glob(f"events-{n}.sqlite*"):
        p.unlink()

    print(f"[{n:,}] IVF build", file=sys.stderr, flush=True)
    started = time.perf_counter()
    ivf = IVFIndex.build(vectors, ids)
    ivf_build_s = time.perf_counter() - started

    exact = ExactIndex(vectors, ids)
    del vectors
    print(f"[{n:,}] queries", file=sys.stderr, flush=True)
    exact_ms, truth = latencies_ms(lambda q: exact.search(q, 10), queries)
    rows = []
    for nprobe in [ivf.nprobe, *(p for p in nprobes if p != ivf.nprobe)]:
        ivf_ms, found = latencies_ms(lambda q, nprobe=nprobe: ivf.search(q, 10, nprobe=nprobe), queries)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))
        rows.append(Row(
            size=n, nlist=ivf.nlist, nprobe=nprobe, ivf_build_s=ivf_build_s, sqlite_s=sqlite_s,
            sqlite_mb=sqlite_mb, exact_p50=float(np.percentile(exact_ms, 50)),
            exact_p95=float(np.percentile(exact_ms, 95)), ivf_p50=float(np.percentile(ivf_ms, 50)),
            ivf_p95=float(np.percentile(ivf_ms, 95)), recall=recall,
        ))  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| events | IVF build events/s | SQLite ingest events/s | SQLite file | nlist / nprobe "
        "| exact p50 / p95 ms | IVF p50 / p95 ms | speed-up (exact p50 / IVF p50) | IVF recall@10 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size:,} | {r.size / r.ivf_build_s:,.0f} ({r.ivf_build_s:.1f} s) "
            f"| {r.size / r.sqlite_s:,.0f} ({r.sqlite_s:.1f} s) | {r.sqlite_mb:,.0f} MB "
            f"| {r.nlist} / {r.nprobe} | {r.exact_p50:.1f} / {r.exact_p95:.1f} "
            f"| {r.ivf_p50:.2f} / {r.ivf_p95:.2f} | {r.exact_p50 / r.ivf_p50:.1f}x | {r.recall:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Where the SQLite files go (default: temp)."
    )
    parser.add_argument("--noise", type=float, default=NOISE, help="Noise norm of the generator.")
    parser.add_argument("--nprobe", type=int, nargs="*", default=[], help="Extra nprobe values to measure.")
    args = parser.parse_args(argv)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"noise {args.noise}"
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        rows = [r for n in args.sizes for r in bench(n, args.queries, args.noise, args.nprobe, Path(tmp))]
    print(table(rows))


if __name__ == "__main__":
    main()
