"""The HTTP API over a library: listing, search, media with Range, token, limits, concurrency, model calls."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient  # the server extra (scripts/install.sh installs it)

from vidspan.library.types import IndexedEvent, IndexedVideo, Library, SearchHit
from vidspan.server.app import create_app
from vidspan.testing.mock import MockVideoModel
from vidspan.types import Caption, Event, Span

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"


class MemoryLibrary:
    """A tiny in-memory :class:`~vidspan.library.types.Library`: word-overlap search over event text.

    With ``exclusive=True`` it fails when two threads are inside it at once (to test the server's lock).
    """

    def __init__(self, videos: dict[str, list[tuple[float, float, str]]], *, exclusive: bool = False):
        self._videos: dict[int, IndexedVideo] = {}
        self._events: dict[int, list[IndexedEvent]] = {}
        self.exclusive = exclusive
        self.inside = 0
        self.calls = 0
        event_id = 0
        for video_id, (name, events) in enumerate(sorted(videos.items()), start=1):
            durations = {"bottle-detection.mp4": 39.9, "car-detection.mp4": 30.2, "asl-walk.mkv": 2.966}
            self._videos[video_id] = IndexedVideo(
                id=video_id, path=str(VIDEOS / name), sha256="0" * 64,
                duration_seconds=durations.get(name, 139.4), scene=f"scene of {name}", model="mock",
                num_events=len(events), indexed_at="2026-11-21T20:00:00Z",
            )  # fmt: skip
            self._events[video_id] = []
            for start, end, text in events:
                event_id += 1
                self._events[video_id].append(IndexedEvent(event_id, video_id, start, end, text))

    def _enter(self) -> None:
        self.calls += 1
        self.inside += 1
        if self.exclusive:
            time.sleep(0.002)
            assert self.inside == 1, "two threads inside the library at once"

    def videos(self) -> list[IndexedVideo]:
        self._enter()
        try:
            return list(self._videos.values())
        finally:
            self.inside -= 1

    def video(self, video_id: int) -> IndexedVideo | None:
        self._enter()
        try:
            return self._videos.get(video_id)
        finally:
            self.inside -= 1

    def events(self, video_id: int) -> list[IndexedEvent]:
        self._enter()
        try:
            return list(self._events.get(video_id, []))
        finally:
            self.inside -= 1

    def search(self, query: str, *, limit: int = 10, path_glob: str | None = None,
               start: float | None = None, end: float | None = None) -> list[SearchHit]:  # fmt: skip
        self._enter()
        try:
            words = set(query.lower().split())
            hits = []
            for video in self._videos.values():
                if path_glob and not fnmatch.fnmatch(video.path, path_glob):
                    continue
                for e in self._events[video.id]:
                    if (start is not None and e.end <= start) or (end is not None and e.start >= end):
                        continue
                    score = len(words & set(e.description.lower().split())) / max(len(words), 1)
                    if score > 0:
                        hits.append(
                            SearchHit(video.path, e.start, e.end, score, e.description, video.id, e.id)
                        )
            hits.sort(key=lambda h: (-h.score, h.video_id, h.start))
            return hits[:limit]
        finally:
            self.inside -= 1

    def status(self) -> dict[str, Any]:
        return {"num_videos": len(self._videos), "num_events": sum(map(len, self._events.values())),
                "indexing": False}  # fmt: skip


def coarse_library(**kwargs: Any) -> MemoryLibrary:
    """Three shared clips with their hand-labelled events (events.coarse.json)."""
    coarse = json.loads((VIDEOS / "events.coarse.json").read_text())["videos"]
    videos = {
        name: [(float(e["start"]), float(e["end"]), e["label"]) for e in coarse[name]["events"]]
        for name in ("bottle-detection.mp4", "car-detection.mp4")
    }
    videos["asl-walk.mkv"] = [(0.5, 2.5, "one person signs the word walk")]
    return MemoryLibrary(videos, **kwargs)


def sqlite_library(path: Path) -> Library:
    """The same videos and events in the real SQLite :class:`VideoIndex` (BM25 + embeddings, fused)."""
    from vidspan.library.embed import TextEmbedder
    from vidspan.library.sqlite import VideoIndex

    memory = coarse_library()
    index = VideoIndex(path, embedder=TextEmbedder())
    for video in memory.videos():
        events = memory.events(video.id)
        caption = Caption(
            scene=video.scene,
            events=tuple(Event(Span(e.start, e.end), e.description) for e in events),
            raw="",
            model="mock",
        )
        vectors = index.embedder.embed([e.description for e in events])
        index.add_video(video.path, "0" * 64, caption, vectors, duration_seconds=video.duration_seconds)
    return index


@pytest.fixture(scope="module")
def sqlite_index(tmp_path_factory) -> Iterator[Library]:
    index = sqlite_library(tmp_path_factory.mktemp("index") / "index.sqlite")
    yield index
    index.close()


@pytest.fixture(params=["memory", "sqlite"])
def library(request) -> Library:
    """Every API test runs on the in-memory library and on the real SQLite index (read-only here)."""
    return coarse_library() if request.param == "memory" else request.getfixturevalue("sqlite_index")


@pytest.fixture
def client(library) -> TestClient:
    return TestClient(create_app(library))


def video_id(client: TestClient, name: str) -> int:
    return next(v["id"] for v in client.get("/api/videos").json()["videos"] if v["name"] == name)


def test_lists_the_library(client):
    response = client.get("/api/videos")
    assert response.status_code == 200
    videos = response.json()["videos"]
    assert [v["name"] for v in videos] == ["asl-walk.mkv", "bottle-detection.mp4", "car-detection.mp4"]
    bottle = videos[1]
    assert bottle["num_events"] == 7 and bottle["duration_seconds"] == 39.9
    assert bottle["media_url"] == f"/media/{bottle['id']}"


def test_one_video_with_its_events(client):
    vid = video_id(client, "car-detection.mp4")
    body = client.get(f"/api/videos/{vid}").json()
    assert body["id"] == vid and body["path"].endswith("car-detection.mp4")
    assert [(e["start"], e["end"]) for e in body["events"]] == [(4.0, 7.0), (15.0, 18.0), (26.0, 27.0)]
    assert set(body["events"][0]) == {"id", "video_id", "start", "end", "description"}
    vtt = client.get(f"/api/videos/{vid}/events.vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert "00:00:04.000 --> 00:00:07.000" in vtt.text and vtt.text.startswith("WEBVTT")


def test_search_hits_have_the_hit_shape(client):
    body = client.get("/api/search", params={"q": "bottle put back", "limit": 3}).json()
    assert body["query"] == "bottle put back" and len(body["hits"]) == 3
    hit = body["hits"][0]
    assert set(hit) == {"video", "start", "end", "score", "caption", "video_id", "event_id"}
    assert hit["video"].endswith("bottle-detection.mp4") and "put back" in hit["caption"]
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_filters_by_path_and_time(client):
    by_path = client.get("/api/search", params={"q": "a car white", "path": "*car-detection*"}).json()
    assert by_path["hits"] and all(h["video"].endswith("car-detection.mp4") for h in by_path["hits"])
    late = client.get("/api/search", params={"q": "car", "start": 20, "end": 30}).json()
    spans = [(h["start"], h["end"]) for h in late["hits"]]
    assert (26.0, 27.0) in spans and all(e > 20 and s < 30 for s, e in spans)
    assert client.get("/api/search", params={"q": ""}).status_code == 422
    assert client.get("/api/search", params={"q": "car", "limit": 0}).status_code == 422


def test_status(client):
    status = client.get("/api/status").json()
    assert status["num_videos"] == 3 and status["num_events"] == 11


def test_unknown_ids_are_404_and_traversal_never_reaches_a_file(client):
    assert client.get("/api/videos/999").status_code == 404
    assert client.get("/media/999").status_code == 404
    assert client.get("/media/abc").status_code == 422  # not an id at all: a validation error names it
    for attempt in (
        "/media/../../etc/passwd",
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/%2Fetc%2Fpasswd",
        "/media/1/../../../etc/passwd",
        "/static/..%2F..%2Fapp.py",
        "/static/../app.py",
    ):
        response = client.get(attempt)
        assert response.status_code in (404, 422), attempt
        assert b"root:" not in response.content


def test_media_serves_the_indexed_file_with_ranges(client):
    vid = video_id(client, "bottle-detection.mp4")
    data = (VIDEOS / "bottle-detection.mp4").read_bytes()
    whole = client.get(f"/media/{vid}")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
    part = client.get(f"/media/{vid}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(f"/media/{vid}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    beyond = client.get(f"/media/{vid}", headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416


def test_token_guards_api_and_media(library):
    client = TestClient(create_app(library, token="s3cret"))
    assert client.get("/api/videos").status_code == 401
    assert client.get("/api/videos", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/media/1").status_code == 401
    assert client.post("/api/caption", json={"video_id": 1}).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert client.get("/api/videos", headers=auth).status_code == 200
    assert client.get("/api/search?q=car", headers=auth).status_code == 200
    assert client.get("/media/1", headers=auth).status_code == 200
    assert client.get("/media/1?token=s3cret").status_code == 200  # <video src> cannot send headers
    assert client.get("/api/videos?token=s3cret").status_code == 401  # the query token is for media only
    assert client.get("/").status_code == 200  # the page itself is public; it asks for the token


def test_oversized_bodies_get_413(library):
    client = TestClient(create_app(library, max_body_bytes=200, model=MockVideoModel()))
    big = {"video_id": 1, "queries": ["x" * 500]}
    response = client.post("/api/find", json=big)
    assert response.status_code == 413 and "at most 200 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"video_id": 1, "queries": ["'
        yield b"y" * 400
        yield b'"]}'

    response = client.post("/api/find", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_concurrent_requests_are_served_and_library_calls_serialised():
    library = coarse_library(exclusive=True)
    client = TestClient(create_app(library))
    paths = ["/api/videos", "/api/search?q=car", "/api/videos/2", "/api/status", "/media/1"] * 8

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda p: client.get(p).status_code, paths))
    assert statuses == [200] * len(paths)
    assert library.calls >= 32 and library.inside == 0


def test_openapi_docs(client):
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/videos",
        "/api/videos/{video_id}",
        "/api/search",
        "/api/status",
        "/api/caption",
        "/api/find",
        "/media/{video_id}",
    ):
        assert path in schema["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_caption_without_a_model_is_503(client):
    response = client.post("/api/caption", json={"video_id": 1})
    assert response.status_code == 503
    assert "no model" in response.json()["detail"] and "vidspan serve -m" in response.json()["detail"]
    assert client.post("/api/find", json={"video_id": 1, "queries": ["walk"]}).status_code == 503


def test_caption_and_find_with_a_model(library):
    model = MockVideoModel(
        ["Scene: A person signs.\nEvents:\n<0.0 - 1.5> raises both hands\n<1.5 - 2.9> signs walk\n"]
    )
    client = TestClient(create_app(library, model=model))
    vid = video_id(client, "asl-walk.mkv")
    response = client.post("/api/caption", json={"video_id": vid, "max_frames": 8})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["video_id"] == vid and body["video"].endswith("asl-walk.mkv")
    assert [e["description"] for e in body["events"]] == ["raises both hands", "signs walk"]
    assert model.history and model.history[0].frame_shape[0] <= 8

    model.replies = ["From 1.0 to 2.0."]
    found = client.post("/api/find", json={"video_id": vid, "queries": ["signs walk"]}).json()
    assert found["results"][0]["query"] == "signs walk" and found["results"][0]["span"] == [1.0, 2.0]
    assert client.post("/api/caption", json={"video_id": 999}).status_code == 404
    assert client.post("/api/caption", json={"video_id": vid, "path": "/etc/passwd"}).status_code == 422


def test_serve_command_is_registered():
    from click.testing import CliRunner

    from vidspan.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--db" in result.output and "--token" in result.output and "--port" in result.output


def test_model_calls_are_serialised(library):
    inside = []

    def reply(clip, prompt):
        inside.append(1)
        time.sleep(0.05)
        assert len(inside) == 1, "two model calls at once"
        inside.pop()
        return "Scene: A person signs.\nEvents:\n<0.0 - 1.0> signs walk\n"

    client = TestClient(create_app(library, model=MockVideoModel([reply])))
    vid = video_id(client, "asl-walk.mkv")
    body = {"video_id": vid, "max_frames": 4}
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: client.post("/api/caption", json=body), range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert all(r.json()["events"][0]["description"] == "signs walk" for r in responses)
