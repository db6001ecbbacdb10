"""Library search at scale: vidspan's persisted FAISS index beside LanceDB, sqlite-vec and pgvector.

For each data set every store gets the same rows (id, caption text, 384-d unit vector) and the same queries:

- **build**: vidspan ingests through :meth:`VideoIndex.add_video` (100 events a video, one transaction each,
  with the FTS5 and vector-checkpoint triggers) and then checkpoints its vector index
  (:meth:`VideoIndex.sync_vectors`: IVF-PQ training and filing); the peers load in bulk and build the ANN
  index they recommend (``benchmarks/peers.py``);
- **warm p50 / p95** (ms): one query vector at a time through the open store, after one warm-up query, and
  **recall@10** against the exact top 10 (numpy);
- **add 1,000** (s): 10 videos of 100 events added to the built store, durable, and then searchable (vidspan:
  the ``add_video`` calls and the first search after them, which catches the new rows up);
- **cold** (s, and peak RSS): a new process that opens the store from disk and answers one query. For
  vidspan that is the real CLI, ``python -m vidspan search TEXT --db LIB`` (imports, the text embedder, BM25
  and the vector index: the user's wall time); for the peers a one-query script with a precomputed vector.
  pgvector's cold number excludes starting the server, which stays up.

Data sets: ``synthetic`` is the generator below (``--noise``, default 1.0; 1.5 is the harder, flatter
variant where the top 10 barely stand out), ``captions`` is real caption text: the sentences of DREAM-1K's
1,000 reference descriptions (``../shared/data/dream1k``), embedded with vidspan's all-MiniLM-L6-v2, with
held-out sentences as queries.

The synthetic generator mimics sentence embeddings (d = 384, unit length): a shared direction (weight 0.35;
sentence embeddings are anisotropic), one of ``n / 1000`` topic centroids (0.6), one of ``n / 100``
sub-topic centroids (0.4), plus isotropic Gaussian noise of expected norm ``--noise``, normalised. Queries are
fresh draws from the same distribution.

Run ``python benchmarks/search.py --sizes 1000000`` (``--help`` for options; ``pip install
'vidspan[bench]'`` for the peers; about 15 GB of disk and 10 GB of memory at 1M).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from peers import PEERS  # noqa: E402

DIM = 384
NOISE = 1.0
SUBTOPIC_WEIGHT = 0.4
PER_VIDEO = 100
MEMMAP_FROM = 2_000_000
"""Synthetic sets this large are generated into a file in ``--workdir`` and memory-mapped."""
DREAM = Path(__file__).resolve().parents[2] / "shared" / "data" / "dream1k" / "DREAM-1k.jsonl"


@dataclass
class Result:
    data: str
    size: int
    store: str
    settings: str
    build_s: float
    warm_p50: float
    warm_p95: float
    recall: float
    add_s: float
    cold_s: float
    cold_rss_mb: float
    disk_mb: float


def generate(
    n: int, num_queries: int, noise: float = NOISE, seed: int = 0, into: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` event embeddings and ``num_queries`` queries, float32 unit vectors (see the module docstring).

    With ``into`` the rows are written to that ``.npy`` file and returned memory-mapped, so a 10M-row set
    (15 GB) does not sit in this process's memory: the stores' own files then get the page cache."""
    rng = np.random.default_rng(seed)
    num_topics, num_subtopics = max(10, n // 1000), max(100, n // 100)
    common = _unit(rng.standard_normal(DIM).astype(np.float32))
    topics = _unit(rng.standard_normal((num_topics, DIM)).astype(np.float32))
    subtopics = _unit(rng.standard_normal((num_subtopics, DIM)).astype(np.float32))
    topic_of = rng.integers(0, num_topics, num_subtopics)
    total = n + num_queries
    if into is None:
        out = np.empty((total, DIM), dtype=np.float32)
    else:
        out = np.lib.format.open_memmap(into, mode="w+", dtype=np.float32, shape=(total, DIM))
    for start in range(0, total, 100_000):
        m = min(100_000, total - start)
        sub = rng.integers(0, num_subtopics, m)
        x = 0.35 * common + 0.6 * topics[topic_of[sub]] + SUBTOPIC_WEIGHT * subtopics[sub]
        x += rng.standard_normal((m, DIM), dtype=np.float32) * np.float32(noise / np.sqrt(DIM))
        out[start : start + m] = _unit(x)
    if into is not None:
        out.flush()
    return out[:n], np.array(out[n:])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def synthetic_captions(n: int, first: int = 0) -> list[str]:
    return [f"event {i}: a person does thing {i % 977}" for i in range(first, first + n)]


def dream_sentences(num_queries: int) -> tuple[list[str], list[str]]:
    """DREAM-1K's reference sentences (deduplicated): the library's captions and held-out queries."""
    sentences: list[str] = []
    for line in DREAM.read_text().splitlines():
        record = json.loads(line)
        for message in record["messages"]:
            for part in message["content"]:
                if part.get("reference"):
                    sentences += [
                        s.strip() for s in re.split(r"(?<=[.!?])\s+", part["reference"]) if s.strip()
                    ]
    unique = list(dict.fromkeys(sentences))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(unique))
    queries = [unique[i] for i in order[:num_queries]]
    return [unique[i] for i in order[num_queries:]], queries


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Row numbers of each query's exact top ``k`` (by cosine), read in blocks of ``vectors`` (one pass, so a
    memory-mapped set is read once)."""
    best = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.zeros((len(queries), k), dtype=np.int64)
    block = max(k, 200_000_000 // (4 * max(len(queries), 1)))  # about 200 MB of scores a block
    for first in range(0, len(vectors), block):
        sims = queries @ np.asarray(vectors[first : first + block]).T
        kk = min(k, sims.shape[1])
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        scores = np.concatenate([best, np.take_along_axis(sims, top, axis=1)], axis=1)
        ids = np.concatenate([rows, top + first], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best, rows = np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)
    return rows


def timed_queries(search, queries: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """p50, p95 (ms) and recall@10 of ``search(query) -> ids``, one query at a time after a warm-up."""
    search(queries[0])
    times, recall = [], []
    for q, want in zip(queries, truth, strict=True):
        started = time.perf_counter()
        got = search(q)
        times.append((time.perf_counter() - started) * 1000)
        recall.append(len(set(np.asarray(got)[:10].tolist()) & set(want.tolist())) / 10)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), float(np.mean(recall))


def run_cold(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of a new process (the median-wall of three runs)."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = child.communicate()
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"{argv[:4]} failed: {err.decode()[-800:]}")
        runs.append((wall, out.decode()))
    wall, out = sorted(runs)[1]
    rss = _child_peak_rss_mb(argv, env)
    return wall, rss, out


def _child_peak_rss_mb(argv: list[str], env: dict[str, str] | None) -> float:
    # measured by a small wrapper process: a child's ru_maxrss on Linux starts from its parent's image at
    # fork, which would count this benchmark's own arrays
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL, check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    argv = [sys.executable, "-c", wrapper, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip()) / 1024


def disk_mb(*paths: Path) -> float:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total / 1e6


def bench_vidspan(work: Path, vectors, captions, queries, truth, extra, extra_captions, text: str, data: str):
    from vidspan.library.sqlite import VideoIndex
    from vidspan.types import Caption, Event, Span

    def add(index, first_video: int, vecs, caps) -> None:
        for v, first in enumerate(range(0, len(vecs), PER_VIDEO), start=first_video):
            chunk = slice(first, first + PER_VIDEO)
            events = tuple(Event(Span(i * 4.0, i * 4.0 + 4.0), c) for i, c in enumerate(caps[chunk]))
            caption = Caption(scene="A scene.", events=events, raw="", model="bench")
            digest = hashlib.sha256(f"{data}{v}".encode()).hexdigest()
            index.add_video(
                f"/bench/{v // 1000}/v{v}.mp4", digest, caption, vecs[chunk], duration_seconds=400
            )

    db = work / "vidspan.sqlite"
    started = time.perf_counter()
    with VideoIndex(db) as index:
        add(index, 0, vectors, captions)
        index.sync_vectors()
    build_s = time.perf_counter() - started
    with VideoIndex(db) as index:
        # event ids are 1.. in insertion order, so id - 1 is the row in `vectors`
        p50, p95, recall = timed_queries(
            lambda q: np.array([i - 1 for i, _ in index.vectors.search(q, 10)]), queries, truth
        )
        kind = index.status()["vector_index"]
        segment = index.vectors.segment
        coverage = list_coverage(segment, vectors, queries, truth)
        started = time.perf_counter()
        add(index, len(vectors) // PER_VIDEO + 1, extra, extra_captions)
        index.vectors.search(queries[0], 10)
        add_s = time.perf_counter() - started
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cold_s, rss, out = run_cold(
        [sys.executable, "-m", "vidspan", "search", text, "--db", str(db), "--json"], env
    )
    assert json.loads(out), "the cold search found nothing"
    settings = "exact scan"
    if segment is not None and segment.ivf is not None:
        from vidspan.library.ann import RERANK, nprobe_for

        nprobe = nprobe_for(segment.ivf.nlist, len(segment))
        settings = f"FAISS {kind}, nprobe {nprobe}, top {RERANK} re-ranked exactly"
        print(f"[{data} {len(vectors):,}] share of the true top 10 in the query's nearest IVF lists: "
              + ", ".join(f"{p:,} lists {c:.3f}" for p, c in coverage.items()), flush=True)  # fmt: skip
    return Result(data, len(vectors), "vidspan", settings, build_s, p50, p95, recall, add_s, cold_s, rss,
                  disk_mb(db, work / "vidspan.sqlite-wal", work / "vidspan.sqlite.vectors"))  # fmt: skip


def list_coverage(segment, vectors, queries, truth) -> dict[int, float]:
    """The share of each query's true top 10 that lie in its nearest 1, 16, 64, ... IVF lists (each row
    in the list of its nearest centroid, as FAISS files it): the recall an IVF scan of that many lists
    could reach with exact codes."""
    if segment is None or segment.ivf is None:
        return {}
    centroids = segment.ivf.quantizer.reconstruct_n(0, segment.ivf.nlist)
    ranks = []
    for q, want in zip(queries, truth, strict=True):
        order = np.empty(len(centroids), dtype=np.int64)
        order[np.argsort(-(centroids @ q))] = np.arange(len(centroids))
        rows = np.sort(want)
        ranks.append(order[np.argmax(np.asarray(vectors[rows]) @ centroids.T, axis=1)])
    ranks = np.concatenate(ranks)
    probes = [p for p in (1, 16, 64, 256, 1024, 2048) if p <= len(centroids)]
    return {p: float(np.mean(ranks < p)) for p in probes}


def bench_peer(
    name, work: Path, vectors, captions, queries, truth, extra, extra_captions, data: str
) -> Result:
    peer = PEERS[name]()
    folder = work / name
    folder.mkdir()
    try:
        started = time.perf_counter()
        peer.build(folder, vectors, captions)
        build_s = time.perf_counter() - started
        p50, p95, recall = timed_queries(lambda q: peer.search(q, 10), queries, truth)
        started = time.perf_counter()
        peer.add(extra, len(vectors), extra_captions)
        add_s = time.perf_counter() - started
        query_file = work / "query.npy"
        np.save(query_file, queries[0])
        cold_s, rss, out = run_cold(peer.cold_command(folder, query_file, 10))
        assert json.loads(out), f"{name}'s cold query found nothing"
        return Result(data, len(vectors), name, peer.settings, build_s, p50, p95, recall, add_s, cold_s, rss,
                      disk_mb(folder))  # fmt: skip
    finally:
        peer.close()


def bench(
    data: str, vectors, captions, queries, extra, extra_captions, text: str, stores, workdir
) -> list[Result]:
    print(f"[{data} {len(vectors):,}] exact top 10", file=sys.stderr, flush=True)
    truth = exact_top(vectors, queries)
    results = []
    for store in stores:
        print(f"[{data} {len(vectors):,}] {store}", file=sys.stderr, flush=True)
        work = Path(tempfile.mkdtemp(dir=workdir))
        try:
            if store == "vidspan":
                r = bench_vidspan(work, vectors, captions, queries, truth, extra, extra_captions, text, data)
            else:
                r = bench_peer(store, work, vectors, captions, queries, truth, extra, extra_captions, data)
            results.append(r)
            print(table([r]).splitlines()[-1], file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| data | events | store | index | build s | warm p50 / p95 ms | recall@10 | add 1,000 s "
        "| cold s | cold peak RSS MB | disk MB |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.data} | {r.size:,} | {r.store} | {r.settings} | {r.build_s:.1f} | {r.warm_p50:.2f} / "
            f"{r.warm_p95:.2f} | {r.recall:.3f} | {r.add_s:.2f} | {r.cold_s:.2f} | {r.cold_rss_mb:,.0f} "
            f"| {r.disk_mb:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", nargs="+", default=["synthetic", "captions"], choices=["synthetic", "captions"]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="Synthetic library sizes.")
    parser.add_argument(
        "--noise", type=float, nargs="+", default=[NOISE, 1.5], help="Noise norms of the generator."
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stores", nargs="+", default=["vidspan", *PEERS], choices=["vidspan", *PEERS])
    parser.add_argument("--workdir", type=Path, default=None, help="Where the stores go (default: temp).")
    args = parser.parse_args(argv)
    import faiss

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, FAISS {faiss.__version__}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    results: list[Result] = []
    if "synthetic" in args.data:
        for n, noise in ((n, noise) for n in args.sizes for noise in args.noise):
            print(f"[synthetic {n:,}] generating", file=sys.stderr, flush=True)
            into = None
            if n >= MEMMAP_FROM:
                into = Path(tempfile.mkdtemp(dir=args.workdir)) / "vectors.npy"
            vectors, rest = generate(n, args.queries + 1000, noise, into=into)
            queries, extra = rest[: args.queries], rest[args.queries :]
            label = f"synthetic, noise {noise:g}"
            captions, more = synthetic_captions(n), synthetic_captions(1000, n)
            text = "a person does thing 5"
            results += bench(label, vectors, captions, queries, extra, more, text, args.stores, args.workdir)
            if into is not None:
                del vectors
                shutil.rmtree(into.parent, ignore_errors=True)
    if "captions" in args.data:
        from vidspan.library.embed import default_embedder

        captions, held_out = dream_sentences(args.queries + 1000)
        print(f"[captions] embedding {len(captions) + len(held_out):,} DREAM-1K sentences", file=sys.stderr)
        embedder = default_embedder()
        vectors, rest = embedder.embed(captions), embedder.embed(held_out)
        queries, extra = rest[: args.queries], rest[args.queries :]
        results += bench("DREAM-1K sentences", vectors, captions, queries, extra, held_out[args.queries :],
                         held_out[0], args.stores, args.workdir)  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()
