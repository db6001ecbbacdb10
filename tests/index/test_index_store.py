"""VideoIndex: schema, transactions, hybrid search (BM25 + vectors, RRF), filters, the embedder."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from vidspan.library.embed import EMBEDDING_DIM, TextEmbedder, default_embedder
from vidspan.library.migrations import MIGRATIONS
from vidspan.library.sqlite import (
    RRF_K,
    IndexNotFoundError,
    VideoIndex,
    from_blob,
    fts_query,
    to_blob,
)
from vidspan.library.types import Library
from vidspan.types import Caption, Event, Span

LIBRARY = {
    "/videos/kitchen/bottle.mp4": [
        (2.0, 6.0, "A hand lifts a bottle from the table."),
        (8.0, 12.0, "The hand puts the bottle back down."),
    ],
    "/videos/parking/cars.mp4": [
        (1.0, 5.0, "A car drives through the lot."),
        (10.0, 14.0, "A white van turns at the corner."),
    ],
    "/videos/office/people.mkv": [
        (3.0, 9.0, "A man walks in and stands at the table."),
        (20.0, 26.0, "A woman leaves the room through the door."),
    ],
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_caption(events: list[tuple[float, float, str]], scene: str = "A scene.") -> Caption:
    return Caption(
        scene=scene,
        events=tuple(Event(Span(s, e), d) for s, e, d in events),
        raw="Scene: " + scene + "\nEvents:\n" + "\n".join(f"<{s} - {e}> {d}" for s, e, d in events),
        model="mock",
    )


def add(index: VideoIndex, path: str, events: list[tuple[float, float, str]], digest: str | None = None):
    caption = make_caption(events)
    vectors = default_embedder().embed([e.description for e in caption.events])
    return index.add_video(path, digest or sha(path), caption, vectors, duration_seconds=30.0)


@pytest.fixture(scope="module")
def library_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("index") / "library.sqlite"
    with VideoIndex(path) as index:
        for video, events in LIBRARY.items():
            add(index, video, events)
    return path


@pytest.fixture
def index(library_db):
    with VideoIndex(library_db, create=False) as idx:
        yield idx


def test_embedder_gives_unit_float32_vectors_that_capture_meaning():
    embedder = TextEmbedder(batch_size=2)
    texts = ["a person opens a door", "someone walks through a doorway", "a red car parks", "x"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] == pytest.approx(0.666, abs=0.01)  # sentence-transformers gives 0.666
    assert sims[0, 2] < 0.15
    # batching and order do not change the result
    np.testing.assert_allclose(TextEmbedder(batch_size=32).embed(texts[::-1])[::-1], vectors, atol=1e-5)
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)
    with pytest.raises(TypeError, match="sequence of strings"):
        embedder.embed("a single string")


def test_schema_and_migrations_are_recorded(library_db):
    conn = sqlite3.connect(library_db)
    rows = conn.execute("SELECT version, name FROM _vidspan_migrations ORDER BY version").fetchall()
    assert rows == [(i + 1, fn.__name__) for i, fn in enumerate(MIGRATIONS)]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    assert {"videos", "events", "event_embeddings", "events_fts", "events_fts_insert"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    blob, dim = conn.execute("SELECT vector, dim FROM event_embeddings LIMIT 1").fetchone()
    assert dim == EMBEDDING_DIM and len(blob) == 4 * EMBEDDING_DIM
    vector = np.frombuffer(blob, dtype="<f4")
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    conn.close()
    with VideoIndex(library_db) as again:  # reopening applies nothing new
        assert again.status()["schema_version"] == len(MIGRATIONS)


def test_blob_round_trip_is_little_endian():
    vector = np.array([1.0, -2.5, 3.25], dtype=np.float32)
    assert to_blob(vector) == vector.astype("<f4").tobytes()
    np.testing.assert_array_equal(from_blob(to_blob(vector), 3), vector)
    with pytest.raises(ValueError, match="must hold 4"):
        from_blob(to_blob(vector), 4)


def test_library_protocol(index):
    library: Library = index  # the protocol is static; check its methods exist too
    assert all(callable(getattr(library, n)) for n in ("videos", "video", "events", "search", "status"))
    videos = library.videos()
    assert [v.path for v in videos] == sorted(LIBRARY)
    first = videos[0]
    assert first.num_events == 2 and first.model == "mock" and first.duration_seconds == 30.0
    assert index.video(first.id) == first and index.video(10_000) is None
    events = index.events(first.id)
    assert [(e.start, e.end, e.description) for e in events] == LIBRARY[first.path]
    status = index.status()
    assert status["num_videos"] == 3 and status["num_events"] == 6 and status["num_embeddings"] == 6
    assert status["vector_backend"] == "faiss" and status["vector_pending"] == 0
    assert index.caption(first.id).events[0].description == LIBRARY[first.path][0][2]


def test_keyword_search_ranks_the_bottle_event_first(index):
    hits = index.search("bottle", limit=3)
    assert {h.caption for h in hits[:2]} == {d for _, _, d in LIBRARY["/videos/kitchen/bottle.mp4"]}
    assert hits[0].video == "/videos/kitchen/bottle.mp4"
    # a hit found by both retrievers at rank 1 scores 2 / (k + 1)
    assert hits[0].score == pytest.approx(2 / (RRF_K + 1))
    assert hits[0].to_dict().keys() >= {"video", "start", "end", "score", "caption"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_paraphrase_is_found_by_meaning(index):
    hits = index.search("someone picks up a container", limit=3)
    assert hits[0].caption == "A hand lifts a bottle from the table."
    assert index.search("vehicle crossing a car park")[0].caption == "A car drives through the lot."


def test_user_text_with_fts_syntax_is_safe(index):
    for query in ['"bottle', "bottle AND", "car-park: (NEAR*) ^x", "-", "'; DROP TABLE videos; --", "   "]:
        index.search(query)  # no sqlite3.OperationalError
    assert fts_query('say "hi" -now') == '"say" OR "hi" OR "now"'
    assert fts_query("the a") == '"the" OR "a"'  # only stopwords: keep them
    assert fts_query("?!") is None


def test_filters_by_path_glob_and_time(index):
    assert {h.video for h in index.search("bottle", path_glob="*/parking/*")} == {"/videos/parking/cars.mp4"}
    assert {h.video for h in index.search("table", path_glob="*.mkv")} == {"/videos/office/people.mkv"}
    assert index.search("bottle", path_glob="nothing*") == []
    hits = index.search("bottle", start=7.0, end=20.0, path_glob="*bottle*")
    assert [h.caption for h in hits] == ["The hand puts the bottle back down."]
    assert all(h.end > 7.0 and h.start < 20.0 for h in index.search("a", start=7.0, end=20.0, limit=50))
    with pytest.raises(ValueError, match="Invalid time range"):
        index.search("bottle", start=5, end=5)
    with pytest.raises(ValueError, match="Invalid limit"):
        index.search("bottle", limit=0)


def test_replace_remove_and_vector_cache_refresh(tmp_path):
    with VideoIndex(tmp_path / "lib.sqlite") as index:
        vid = add(index, "/v/a.mp4", [(0.0, 2.0, "A dog runs on the beach.")], digest=sha("1"))
        assert index.has_current("/v/a.mp4", sha("1")) and not index.has_current("/v/a.mp4", sha("2"))
        assert index.search("puppy playing by the sea")[0].caption == "A dog runs on the beach."
        new = add(index, "/v/a.mp4", [(0.0, 2.0, "A cat sleeps on a sofa.")], digest=sha("2"))
        assert new != vid and index.video(vid) is None and len(index.videos()) == 1
        # the cached vectors were reloaded: the old event is gone from vector results too
        assert [h.caption for h in index.search("puppy playing by the sea")] == ["A cat sleeps on a sofa."]
        # a second connection's write is seen as well
        with VideoIndex(tmp_path / "lib.sqlite") as other:
            add(other, "/v/b.mp4", [(1.0, 3.0, "A dog runs on the beach.")])
        assert index.search("puppy playing by the sea")[0].video == "/v/b.mp4"
        assert index.remove_video("/v/a.mp4") and not index.remove_video("/v/a.mp4")
        conn = sqlite3.connect(tmp_path / "lib.sqlite")
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # cascade
        assert conn.execute("SELECT count(*) FROM event_embeddings").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH 'cat'").fetchone()[0] == 0
        conn.close()


def test_add_video_is_one_transaction(tmp_path, monkeypatch):
    from vidspan.library import sqlite as store

    with VideoIndex(tmp_path / "lib.sqlite") as index:
        add(index, "/v/a.mp4", [(0.0, 2.0, "First version.")], digest=sha("1"))
        caption = make_caption([(0.0, 1.0, "One."), (1.0, 2.0, "Two.")])
        with pytest.raises(ValueError, match=r"It must be \(2, dim\)"):
            index.add_video("/v/a.mp4", sha("2"), caption, np.zeros((1, 384), np.float32))
        with pytest.raises(ValueError, match="It must be 384"):
            index.add_video("/v/a.mp4", sha("2"), caption, np.zeros((2, 8), np.float32))
        calls = []

        def failing_blob(vector):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("disk on fire")
            return to_blob(vector)

        monkeypatch.setattr(store, "to_blob", failing_blob)
        with pytest.raises(RuntimeError, match="disk on fire"):  # fails after the delete and one event
            index.add_video("/v/a.mp4", sha("2"), caption, np.ones((2, 384), np.float32))
        monkeypatch.undo()
        with pytest.raises(ValueError, match="Invalid sha256"):
            index.add_video("/v/a.mp4", "abc", caption, np.zeros((2, 384), np.float32))
        assert index.has_current("/v/a.mp4", sha("1"))
        assert [e.description for e in index.events(index.videos()[0].id)] == ["First version."]


def test_missing_index_and_default_path(tmp_path, monkeypatch):
    message = r"No index at .*nope.sqlite: run 'vidspan index PATH' first."
    with pytest.raises(IndexNotFoundError, match=message):
        VideoIndex(tmp_path / "nope.sqlite", create=False)
    monkeypatch.setenv("VIDSPAN_USER_PATH", str(tmp_path / "user"))
    with VideoIndex() as index:
        assert index.path == str((tmp_path / "user" / "index.sqlite").resolve())


def test_words_in_most_events_are_left_out_of_bm25(tmp_path, monkeypatch):
    """A word in more than half of a large library's events adds nothing to BM25 but costs its whole
    posting list: it is dropped, and the rows matching the other words keep their order."""
    import vidspan.library.sqlite as store

    with VideoIndex(tmp_path / "lib.sqlite") as index:
        events = [(float(i), i + 1.0, f"A person walks past shelf {i}.") for i in range(40)]
        events += [(50.0, 51.0, "A person opens the doors."), (60.0, 61.0, "Persons open one door slowly.")]
        add(index, "/videos/store.mp4", events)
        assert index._common_words(["persons", "door"]) == set()  # a small library: nothing dropped
        full = index._text_ranking("persons door", 50, None, None, None)
        monkeypatch.setattr(store, "COMMON_FLOOR", 10)
        assert index._common_words(["persons", "door", "shelf"]) == {
            "persons",
            "shelf",
        }  # stemmed like the index
        pruned = index._text_ranking("persons door", 50, None, None, None)
        assert len(full) == 42 and pruned == full[:2] and len(pruned) == 2
        assert index.search("persons door", limit=2)[0].caption in {e[2] for e in events[-2:]}
