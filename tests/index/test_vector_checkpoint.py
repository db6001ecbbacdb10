"""The persisted vector index of a SQLite library (vidspan.library.vectors / .ann): recall against exact
search, exact filters, catching up and folding in new rows, deletions, damaged files, re-embedding, and
kill -9 at any moment of a write."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vidspan.library import ann
from vidspan.library.sqlite import VideoIndex, from_blob
from vidspan.types import Caption, Event, Span

DIM = 32


def clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """Unit vectors around n / 50 centres with noise: neighbours are close but not trivially so."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(2, n // 50), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Words:
    """A fixed-vector embedder for queries: ``embed([text])`` returns the vector registered for text."""

    name = "all-minilm-l6-v2"
    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def embed(self, texts):
        return np.stack([self.table[t] for t in texts])


def caption_of(n: int, video: int) -> Caption:
    return Caption(
        scene="s",
        events=tuple(Event(Span(float(i), i + 1.0), f"clip{video} moment{i}") for i in range(n)),
        raw="r",
        model="mock",
    )


def fill(index: VideoIndex, vectors: np.ndarray, per_video: int, first_video: int = 0) -> None:
    for v, start in enumerate(range(0, len(vectors), per_video), start=first_video):
        chunk = vectors[start : start + per_video]
        digest = hashlib.sha256(str(v).encode()).hexdigest()
        index.add_video(
            f"/lib/{v % 3}/video{v}.mp4", digest, caption_of(len(chunk), v), chunk, duration_seconds=99
        )


def table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT event_id, vector FROM event_embeddings ORDER BY event_id").fetchall()
    return np.array([r[0] for r in rows]), np.stack([from_blob(r[1]) for r in rows])


def agrees_with_rows(index: VideoIndex, path: Path) -> None:
    """The index's searchable rows are exactly the table's, with the same vectors."""
    vectors = index.vectors
    with index._lock:
        vectors.refresh()
    seg = vectors.segment
    alive = np.ones(len(seg), dtype=bool) if vectors.alive is None else vectors.alive
    ids = np.concatenate([np.asarray(seg.ids)[alive], vectors.delta_ids])
    got = np.concatenate([np.asarray(seg.vectors)[alive], vectors.delta_vectors.reshape(-1, seg.dim)])
    want_ids, want = table(path)
    assert ids.tolist() == want_ids.tolist()
    np.testing.assert_array_equal(got, want)


@pytest.fixture
def small_ivf(monkeypatch):
    monkeypatch.setattr(ann, "EXACT_BELOW", 1000)  # the IVF-PQ path on a few thousand vectors


def test_ivf_recall_against_exact_search(small_ivf):
    data, queries = clustered(6000, 0), clustered(100, 1)
    ids = np.arange(10, 6010, dtype=np.int64)
    segment = ann.in_memory(ids, data)
    assert segment.kind.startswith("IVF") and segment.ivf.ntotal == 6000
    recall = []
    for q in queries:
        got, sims = segment.search(q, 10)
        exact = ids[np.argsort(-(data @ q))[:10]]
        recall.append(len(set(got) & set(exact)) / 10)
        np.testing.assert_allclose(sims, data[got - 10] @ q, rtol=1e-5)  # re-ranked: exact cosines
    assert np.mean(recall) >= 0.95


def test_a_library_searches_its_checkpoint_and_the_rows_since(tmp_path, small_ivf, caplog):
    path = tmp_path / "lib.sqlite"
    data = clustered(3000, 2)
    with VideoIndex(path) as index:
        fill(index, data, 100)
        index.sync_vectors()
        status = index.status()
        assert status["vector_index"].startswith("IVF") and status["vector_checkpoint"] == 3000
        files = sorted(p.name for p in (tmp_path / "lib.sqlite.vectors").iterdir())
        assert sorted(f.rsplit(".", 1)[-1] for f in files) == ["f32", "faiss", "ids", "lock"]
        agrees_with_rows(index, path)

    extra = clustered(50, 3)
    with caplog.at_level(logging.INFO, logger="vidspan.library.vectors"), VideoIndex(path) as index:
        fill(index, extra, 50, first_video=30)  # a new process adds a video: no rebuild, found at once
        words = {"q": extra[7]}
        index._embedder = Words(words)
        assert index.search("q", limit=1)[0].caption == "clip30 moment7"
        assert index.status()["vector_pending"] == 50
        fill(index, clustered(100, 4), 100, first_video=5)  # re-index video 5: its old rows are deleted
        agrees_with_rows(index, path)
        old = set(range(501, 601))  # video 5's first events
        words["q"] = data[520]
        assert all(h.event_id not in old for h in index.search("q", limit=50))
        index.sync_vectors()
        assert index.status()["vector_pending"] == 0 and index.status()["vector_checkpoint"] == 3150
        agrees_with_rows(index, path)
    assert "Building the vector index" not in caplog.text
    assert len(list((tmp_path / "lib.sqlite.vectors").glob("*.faiss"))) == 1  # the old checkpoint's is gone


def test_filters_stay_exact(tmp_path, small_ivf, monkeypatch):
    path = tmp_path / "lib.sqlite"
    data = clustered(3000, 5)
    with VideoIndex(path) as index:
        fill(index, data, 100)
        index.sync_vectors()
        ids, vectors = table(path)
        q = clustered(1, 6)[0]
        index._embedder = Words({"zzz": q})
        with index._lock:
            rows = index._conn.execute(
                'SELECT e.id, v.path, e.start, e."end" FROM events e JOIN videos v ON v.id = e.video_id'
            ).fetchall()
        meta = {r[0]: r[1:] for r in rows}
        for kwargs, keep in (
            ({"path_glob": "*/1/*"}, lambda p, s, e: "/1/" in p),
            ({"start": 10.0, "end": 20.0}, lambda p, s, e: e > 10.0 and s < 20.0),
            (
                {"path_glob": "video2*.mp4", "start": 50.0},
                lambda p, s, e: p.split("/")[-1].startswith("video2") and e > 50,
            ),
        ):
            allowed = np.array([i for i in ids if keep(*meta[i])])
            sims = vectors[np.isin(ids, allowed)] @ q
            exact = allowed[np.argsort(-sims, kind="stable")[:20]]
            got = [h.event_id for h in index.search("zzz", limit=20, **kwargs)]
            assert got == exact.tolist() and all(keep(*meta[i]) for i in got)
        monkeypatch.setattr("vidspan.library.vectors.EXACT_FILTER", 10)  # the IVF path with a selector
        got = [h.event_id for h in index.search("zzz", limit=10, path_glob="*/1/*")]
        assert len(got) == 10 and all("/1/" in meta[i][0] for i in got)


def test_damaged_files_are_rebuilt_from_the_rows(tmp_path, small_ivf, caplog):
    path = tmp_path / "lib.sqlite"
    with VideoIndex(path) as index:
        fill(index, clustered(1500, 7), 100)
        index.sync_vectors()
    (f32,) = (tmp_path / "lib.sqlite.vectors").glob("*.f32")
    with open(f32, "r+b") as f:
        f.truncate(1000)
    with caplog.at_level(logging.WARNING), VideoIndex(path) as index:
        agrees_with_rows(index, path)
    assert "does not match the library" in caplog.text and "rebuilding it from the rows" in caplog.text


def test_reembedding_retires_the_checkpoint(tmp_path, caplog):
    path = tmp_path / "lib.sqlite"
    with VideoIndex(path) as index:
        fill(index, clustered(200, 8), 100)
        index.sync_vectors()
        before = index.vectors.checkpoint

        class Flipped(Words):
            def embed(self, texts):
                return -clustered(len(texts), 9)

        index.reembed(Flipped({}))
        with caplog.at_level(logging.INFO, logger="vidspan.library.vectors"):
            agrees_with_rows(index, path)  # the new vectors, not the checkpoint's
        assert index.vectors.checkpoint.segment != before.segment


WRITER = textwrap.dedent(
    """
    import hashlib, sys, numpy as np
    from vidspan.library import ann, vectors
    from vidspan.library.sqlite import VideoIndex
    from vidspan.types import Caption, Event, Span
    ann.EXACT_BELOW = 400
    vectors.compact_after = lambda count: 30
    rng = np.random.default_rng(int(sys.argv[2]))
    with VideoIndex(sys.argv[1]) as index:
        for v in range(10_000):
            n = int(rng.integers(5, 40))
            x = rng.standard_normal((n, 16)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            cap = Caption(scene="s", events=tuple(Event(Span(i, i + 1.0), f"e{v}.{i}") for i in range(n)),
                          raw="r", model="m")
            name = f"/v/{int(rng.integers(0, 25))}.mp4"  # re-indexing a name deletes its old rows
            index.add_video(name, hashlib.sha256(f"{v}".encode()).hexdigest(), cap, x, duration_seconds=50)
            if v % 3 == 0:
                index.sync_vectors()
            print(v, flush=True)
    """
)


def test_kill_9_at_any_moment_leaves_index_and_rows_agreeing(tmp_path):
    path = tmp_path / "lib.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(0)
    for round_ in range(10):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), str(round_)], stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        child.stdout.readline()  # it has written at least once
        time.sleep(float(rng.uniform(0.05, 1.0)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with VideoIndex(path) as index:
            agrees_with_rows(index, path)
    with VideoIndex(path) as index:
        assert index.status()["num_events"] > 100 and index.vectors.segment.ivf is not None


def test_a_folder_that_cannot_be_written_keeps_the_index_in_memory(tmp_path, caplog):
    path = tmp_path / "lib.sqlite"
    data = clustered(300, 10)
    with VideoIndex(path) as index:
        fill(index, data, 100)
    (tmp_path / "lib.sqlite.vectors").write_text("not a folder")  # mkdir and every file write fail
    with caplog.at_level(logging.WARNING), VideoIndex(path) as index:
        index._embedder = Words({"q": data[42]})
        assert index.search("q", limit=1)[0].event_id == 43
        fill(index, clustered(100, 11), 100, first_video=9)
        index.sync_vectors()  # logged, not raised: the rows are safe
        agrees_with_rows(index, path)
    assert "Cannot save the vector index" in caplog.text and "kept in memory" in caplog.text


def test_an_earlier_vidspans_ivf_file_is_rebuilt_as_fastscan(small_ivf, tmp_path, caplog):
    import faiss

    path = str(tmp_path / "lib.sqlite")
    data = clustered(1500, 3)
    with VideoIndex(path) as index:
        fill(index, data, 100)
        index.sync_vectors()
    (old,) = (tmp_path / "lib.sqlite.vectors").glob("*.faiss")
    earlier = faiss.index_factory(DIM, "IVF16,PQ8np", faiss.METRIC_INNER_PRODUCT)  # the 8-bit layout
    earlier.train(data)
    earlier.add(data)
    faiss.write_index(earlier, str(old))
    with caplog.at_level(logging.WARNING, logger="vidspan.library.vectors"), VideoIndex(path) as index:
        got = index.vectors.search(data[7], 1)
        assert got[0][0] == 8 and index.status()["vector_index"].endswith("x4fs")
    assert "IndexIVFPQ of an earlier vidspan" in caplog.text and "rebuilding it from the rows" in caplog.text
