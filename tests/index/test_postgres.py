"""PgVideoIndex against a real PostgreSQL 16 + pgvector (the pgserver wheel): same answers as SQLite."""

from __future__ import annotations

import fnmatch
import itertools
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("psycopg")
pytest.importorskip("pgvector")
pgserver = pytest.importorskip("pgserver")

from vidspan.cli.main import cli  # noqa: E402
from vidspan.library.indexer import file_sha256, index_paths  # noqa: E402
from vidspan.library.open import is_postgres_url, open_index  # noqa: E402
from vidspan.library.postgres import PG_MIGRATIONS, PgVideoIndex, PostgresError, glob_to_regex, redact_url  # noqa: E402
from vidspan.library.sqlite import IndexNotFoundError, VideoIndex  # noqa: E402
from vidspan.testing.mock import MockVideoModel  # noqa: E402
from vidspan.types import Caption, Event, Span  # noqa: E402

CAPTIONS = {
    "bottle-detection": (
        "Scene: Three water bottles stand on a wooden table.\nEvents:\n"
        "<2.0 - 6.0> A hand lifts a bottle from the table.\n<8.0 - 12.0> The hand puts it back down.\n"
    ),
    "car-detection": (
        "Scene: An empty parking lot seen from above.\nEvents:\n"
        "<1.0 - 5.0> A car drives through the lot.\n<10.0 - 14.0> A white van turns at the corner.\n"
        "<20.0 - 24.0> A red car leaves the frame.\n"
    ),
    "one-by-one-person-detection": (
        "Scene: A small round table by a white wall.\nEvents:\n"
        "<3.0 - 9.0> A man walks in and stands at the table.\n<20.0 - 26.0> A woman leaves the room.\n"
    ),
    "asl-walk": (
        "Scene: A person signs.\nEvents:\n<0.0 - 1.0> The hands rise.\n<1.0 - 2.5> The hands move forward.\n"
    ),
    "asl-eat": "Scene: A person signs.\nEvents:\n<0.0 - 1.0> The fingers touch the mouth.\n",
}
FAST = {"fps": 0.1, "min_frames": 2, "max_pixels": 64 * 64}  # the mock model does not look at the frames
QUERIES = [
    "bottle",
    "a hand lifts a bottle",
    "someone picks up a container",
    "red car",
    "a vehicle turning",
    "a woman leaves",
    "hands rise",
    "fingers mouth",
]


def mock_model() -> MockVideoModel:
    return MockVideoModel([lambda clip, prompt: CAPTIONS[Path(clip.video.path).stem]], name="mock")


@pytest.fixture(scope="module")
def libraries(shared_videos, new_database, tmp_path_factory):
    """The five shared clips indexed by the same mock model into PostgreSQL and into SQLite."""
    url = new_database()
    sqlite_db = tmp_path_factory.mktemp("pg-compare") / "lib.sqlite"
    for db in (url, sqlite_db):
        report = index_paths([shared_videos], mock_model(), db, **FAST)
        assert len(report.indexed) == 5 and not report.failed, report.failed
    pg, lite = PgVideoIndex(url), VideoIndex(sqlite_db)
    yield url, pg, lite
    pg.close()
    lite.close()


def _key(hit):
    return (Path(hit.video).name, hit.start, hit.end, hit.caption)


def test_schema_and_status(libraries):
    url, pg, lite = libraries
    status = pg.status()
    assert status["num_videos"] == 5 and status["num_events"] == 10 and status["num_embeddings"] == 10
    assert status["schema_version"] == status["schema_latest"] == len(PG_MIGRATIONS)
    assert status["embedding_models"] == lite.status()["embedding_models"]
    assert status["vector_backend"] == "pgvector-hnsw" and status["size_bytes"] > 0
    indexes = {
        r[0]: r[1]
        for r in pg._conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'")
    }
    assert "hnsw (embedding vector_cosine_ops)" in indexes["events_embedding"]
    assert "gin (tsv)" in indexes["events_tsv"]
    # opening again is idempotent: no migration re-runs
    with PgVideoIndex(url) as again:
        assert again.status()["schema_version"] == len(PG_MIGRATIONS)
    assert [r[0] for r in pg._conn.execute("SELECT name FROM _vidspan_migrations ORDER BY version")] == [
        fn.__name__ for fn in PG_MIGRATIONS
    ] == ["create_videos_and_events", "create_embedder_record"]


def test_videos_events_and_captions_match_sqlite(libraries):
    _, pg, lite = libraries
    strip = lambda v: {k: x for k, x in v.to_dict().items() if k not in ("id", "indexed_at")}  # noqa: E731
    assert [strip(v) for v in pg.videos()] == [strip(v) for v in lite.videos()]
    for pv, lv in zip(pg.videos(), lite.videos(), strict=True):
        assert [(e.start, e.end, e.description) for e in pg.events(pv.id)] == [
            (e.start, e.end, e.description) for e in lite.events(lv.id)
        ]
        assert pg.caption(pv.id) == lite.caption(lv.id)
        assert pg.video(pv.id) == pv and pg.video_by_path(pv.path) == pv
    assert pg.video(10**9) is None and pg.caption(10**9) is None and pg.events(10**9) == []


@pytest.mark.parametrize("query", QUERIES)
def test_search_top_hit_matches_sqlite(libraries, query):
    _, pg, lite = libraries
    pg_hits, lite_hits = pg.search(query, limit=5), lite.search(query, limit=5)
    assert pg_hits and _key(pg_hits[0]) == _key(lite_hits[0])
    assert len(pg_hits) == len(lite_hits)
    assert pg_hits[0].score == pytest.approx(lite_hits[0].score)
    assert all(a.score >= b.score for a, b in itertools.pairwise(pg_hits))
    assert set(pg_hits[0].to_dict()) == set(lite_hits[0].to_dict())


def test_search_filters_match_sqlite(libraries):
    _, pg, lite = libraries
    cases = [
        ("car", {"path_glob": "*car*", "start": 10}),
        ("car", {"path_glob": "*.mkv"}),
        ("hand", {"end": 3.0}),
        ("table", {"start": 5.0, "end": 21.0}),
        ("person", {"path_glob": "asl-?a*.mkv"}),
        ("bottle", {"path_glob": str(Path(pg.videos()[2].path).parent) + "/[b]*"}),
        ("bottle", {"path_glob": "nothing"}),
    ]
    for query, filters in cases:
        got = [_key(h) for h in pg.search(query, limit=10, **filters)]
        want = [_key(h) for h in lite.search(query, limit=10, **filters)]
        assert sorted(got) == sorted(want), (query, filters)
        assert got[:1] == want[:1], (query, filters)
    assert {Path(h.video).name for h in pg.search("car", path_glob="*.mkv")} == {
        "asl-walk.mkv",
        "asl-eat.mkv",
    }
    assert pg.search("bottle", path_glob="nothing") == []
    with pytest.raises(ValueError, match="Invalid time range"):
        pg.search("bottle", start=5, end=2)
    with pytest.raises(ValueError, match="Invalid limit"):
        pg.search("bottle", limit=0)
    # odd text is safe: tsquery syntax and stopwords only
    assert pg.search("'); DROP TABLE videos; -- & | ! :*", limit=3)
    assert pg.search("the", limit=3) and pg.search("   ", limit=3) == []
    assert pg.status()["num_videos"] == 5


GLOB_PATHS = [
    "/v/car-detection.mp4", "/v/asl-eat.mkv", "/v/a[b].mp4", "/v/x.(y)+$^.mp4", "/v/back\\slash.mp4",
    "/v/]odd.mp4", "/v/sub/b.MP4", "/v/-dash.mp4", "/v/new\nline.mp4",
]  # fmt: skip
GLOBS = [
    "*.mp4", "*car*", "asl-?at.mkv", "[ab]*", "[!a]*", "[a-c]*", "[z-a]*", "*[", "a[", "*a[b]*", "*[[]b]*",
    "*.(y)+$^.mp4", "*[*]*", "[]]*", "[!]]*", "*back\\slash*", "/v/*/b.MP4", "/v/*", "*[-]*", "[%_]*", "*%*",
    "*.mp?", "", "*", "*\n*", "[a-]*", "*[!a-z.]*",
]  # fmt: skip


def test_glob_translation_matches_fnmatch(pg_server):
    import psycopg

    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        for pattern in GLOBS:
            regex = glob_to_regex(pattern)
            for path in GLOB_PATHS:
                got = conn.execute("SELECT %s ~ %s", (path, regex)).fetchone()[0]
                assert got == fnmatch.fnmatchcase(path, pattern), (pattern, regex, path)


def test_incremental_replace_and_remove(shared_videos, new_database, tmp_path):
    url = new_database()
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("bottle-detection.mp4", "asl-walk.mkv"):
        shutil.copy(shared_videos / name, folder / name)
    first = index_paths([folder], mock_model(), url, **FAST)
    assert len(first.indexed) == 2 and first.num_events == 4
    again = index_paths([folder], mock_model(), url, **FAST)
    assert len(again.skipped) == 2 and again.indexed == []
    bottle = folder / "bottle-detection.mp4"
    with open_index(url) as index:
        assert isinstance(index, PgVideoIndex)
        old = index.video_by_path(bottle)
        assert old is not None and index.has_current(bottle, file_sha256(bottle))
        assert not index.has_current(bottle, "0" * 64)
        # replace: a new row (ids are never reused), the old events are gone
        events = (Event(Span(1.0, 2.0), "A kettle boils over."),)
        caption = Caption(
            scene="A kitchen.", events=events, raw="<1.0 - 2.0> A kettle boils over.", model="m2"
        )
        vectors = index.embedder.embed(["A kettle boils over."])
        new_id = index.add_video(bottle, "f" * 64, caption, vectors, duration_seconds=30.0)
        assert new_id != old.id and index.video(old.id) is None and index.events(old.id) == []
        replaced = index.video(new_id)
        assert replaced is not None and replaced.num_events == 1 and replaced.duration_seconds == 30.0
        assert replaced.sha256 == "f" * 64 and replaced.model == "m2" and replaced.scene == "A kitchen."
        assert index.search("kettle", limit=1)[0].video_id == new_id
        assert [h.caption for h in index.search("bottle", path_glob="*bottle*")] == ["A kettle boils over."]
        assert index.caption(new_id).raw == caption.raw
        with pytest.raises(ValueError, match="It must be 384"):
            index.add_video(bottle, "f" * 64, caption, np.ones((1, 8), dtype=np.float32))
        with pytest.raises(ValueError, match="Invalid sha256"):
            index.add_video(bottle, "F" * 64, caption, vectors)
        with pytest.raises(ValueError, match="one vector per event"):
            index.add_video(bottle, "f" * 64, caption, np.ones((2, 384), dtype=np.float32))
        assert index.video(new_id).sha256 == "f" * 64  # failed writes changed nothing
        # a changed hash is re-indexed by index_paths
        report = index_paths([folder], mock_model(), index, **FAST)
        assert report.indexed == [str(bottle.resolve())] and len(report.skipped) == 1
        assert index.video_by_path(bottle).num_events == 2
        # remove by path, then by id
        assert index.remove_video(bottle) and not index.remove_video(bottle)
        walk = index.video_by_path(folder / "asl-walk.mkv")
        assert index.remove_video(walk.id) and not index.remove_video(walk.id)
        status = index.status()
        assert status["num_videos"] == 0 and status["num_events"] == 0 and index.search("hands") == []


def test_concurrent_searches_share_one_connection(libraries):
    _, pg, _ = libraries
    expected = _key(pg.search("a hand lifts a bottle", limit=1)[0])
    results: list[object] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(_key(pg.search("a hand lifts a bottle", limit=1)[0]))
        except Exception as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 20


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_search_and_library_with_a_postgres_url(libraries):
    url, _, _ = libraries
    result = run("search", "bottle", "--db", url)
    assert result.exit_code == 0, result.output
    assert (
        "bottle-detection.mp4  00:02.0 - 00:06.0  A hand lifts a bottle from the table."
        in (result.stdout.splitlines()[0])
    )
    data = json.loads(run("search", "car", "--db", url, "--json", "--path", "*.mkv").stdout)
    assert data["hits"] and {Path(h["video"]).name for h in data["hits"]} <= {"asl-walk.mkv", "asl-eat.mkv"}
    library = run("library", "--db", url)
    assert library.exit_code == 0 and library.stdout.splitlines()[-1].startswith("5 video(s), 10 events in ")
    status = json.loads(run("library", "--db", url, "--json").stdout)["status"]
    assert status["num_videos"] == 5 and status["path"] == redact_url(url)


def test_open_index_dispatch_and_one_line_errors(new_database, tmp_path):
    assert is_postgres_url("postgresql://x/y") and is_postgres_url("postgres://x/y")
    assert not is_postgres_url(str(tmp_path / "a.sqlite")) and not is_postgres_url(tmp_path)
    with open_index(tmp_path / "a.sqlite") as lite:
        assert isinstance(lite, VideoIndex)
    empty = new_database()
    with pytest.raises(IndexNotFoundError, match="No index at"):
        open_index(empty, create=False)
    result = run("search", "bottle", "--db", empty)
    assert result.exit_code == 1 and result.stderr.startswith("Error: No index at postgresql://")
    assert len(result.stderr.splitlines()) == 1
    with pytest.raises(
        PostgresError, match=r"^Cannot connect to PostgreSQL at postgresql://u:\*\*\*@"
    ) as info:
        PgVideoIndex("postgresql://u:secret@/db?host=/nonexistent-vidspan-socket-dir")
    assert "secret" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(PostgresError, match="PostgreSQL") as info:
        PgVideoIndex("postgresql://localhost:notaport/db")
    assert "\n" not in str(info.value)
    with pytest.raises(PostgresError, match="Invalid PostgreSQL URL"):
        PgVideoIndex("mysql://localhost/db")
    assert redact_url("postgresql://me:p%40ss@host:5432/db") == "postgresql://me:***@host:5432/db"


def test_http_api_serves_a_postgres_library(libraries):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vidspan.server.app import create_app

    _, pg, _ = libraries
    client = TestClient(create_app(pg))
    assert len(client.get("/api/videos").json()["videos"]) == 5
    hits = client.get("/api/search", params={"q": "a hand lifts a bottle", "limit": 1}).json()["hits"]
    assert hits[0]["caption"] == "A hand lifts a bottle from the table."
    assert client.get("/api/status").status_code == 200
    vid = hits[0]["video_id"]
    assert client.get(f"/api/videos/{vid}").status_code == 200
    assert client.get(f"/api/videos/{vid}/events.vtt").status_code == 200
