"""Bad values in every parameter of every route answer 4xx, never a 5xx or a reset connection.

The app runs under uvicorn on 127.0.0.1 over both real stores (SQLite and PostgreSQL through the pgserver
wheel, skipped without it). The routes and their parameters come from the app's own ``/openapi.json``, so a
new route or parameter is fuzzed without touching this file. Before the fix, an id beyond SQLite's signed
64-bit range (``/media/99999999999999999999``) and ``/api/videos/²`` (a digit to ``str.isdigit`` that
``int`` refuses) both answered 500.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from vidspan.library.types import Library
from vidspan.server.app import MAX_VIDEO_ID, create_app
from vidspan.testing.mock import MockVideoModel
from vidspan.types import Caption, Event, Span

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"

BAD_VALUES = [
    "99999999999999999999",  # beyond SQLite INTEGER and PostgreSQL BIGINT
    str(MAX_VIDEO_ID + 1),
    str(10**30),
    "-1",
    "-99999999999999999999",
    "0",
    "abc",
    "1.5",
    "1e30",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "",
    " ",
    "x" * 10_000,
    "9" * 10_000,
    "²",  # str.isdigit() is True, int() refuses it
    "٣",  # an Arabic-Indic digit
    "漢字",
    "💥",
    "caf\u00e9\u0301",
    "\x00",
    "1\x00",
    "%",
    "'; DROP TABLE videos; --",
    '"*()-:^',
    "[!",
    "**/../../etc/passwd",
]
REPLY = "Scene: A parking lot.\nEvents:\n<1.0 - 2.0> A car drives by.\n"
BAD_JSON_VALUES: list[Any] = [
    10**30, MAX_VIDEO_ID + 1, -(10**30), -1, 0, 1.5, 1e308, "abc", "x" * 10_000, "²", None, [], {}, True,
]  # fmt: skip


def _events() -> dict[str, list[tuple[float, float, str]]]:
    coarse = json.loads((VIDEOS / "events.coarse.json").read_text())["videos"]
    return {
        name: [(float(e["start"]), float(e["end"]), e["label"]) for e in coarse[name]["events"]]
        for name in ("bottle-detection.mp4", "car-detection.mp4")
    }


def fill(index: Any) -> Any:
    """Two shared clips with their hand-labelled events, stored in ``index`` (either store)."""
    for name, events in _events().items():
        caption = Caption(
            scene=f"Fixed camera: {name}",
            events=tuple(Event(Span(s, e), text) for s, e, text in events),
            raw="",
            model="mock",
        )
        vectors = index.embedder.embed([text for _, _, text in events])
        index.add_video(VIDEOS / name, "0" * 64, caption, vectors, duration_seconds=40.0)
    return index


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> Iterator[Library]:
    from vidspan.library.embed import TextEmbedder
    from vidspan.library.sqlite import VideoIndex

    index = fill(VideoIndex(tmp_path_factory.mktemp("index") / "index.sqlite", embedder=TextEmbedder()))
    yield index
    index.close()


@pytest.fixture(scope="module")
def postgres_store() -> Iterator[Library]:
    """A throwaway PostgreSQL + pgvector server (see tests/index/test_postgres.py for why under /tmp)."""
    pytest.importorskip("psycopg")
    pytest.importorskip("pgvector")
    pgserver = pytest.importorskip("pgserver")
    from vidspan.library.embed import TextEmbedder
    from vidspan.library.postgres import PgVideoIndex

    root = Path(tempfile.mkdtemp(prefix="vidspan-pg-"))
    root.chmod(0o755)
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        index = fill(PgVideoIndex(server.get_uri(), embedder=TextEmbedder()))
        yield index
        index.close()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(params=["sqlite", "postgres"])
def server_url(request) -> Iterator[str]:
    library = request.getfixturevalue(f"{request.param}_store")
    # the mock model makes /api/caption and /api/find reach the library instead of answering 503
    with serve(create_app(library, model=MockVideoModel([lambda clip, prompt: REPLY]))) as url:
        yield url


def good_value(param: dict[str, Any]) -> str:
    """A value the parameter accepts, so each request has exactly one bad parameter."""
    schema = param.get("schema", {})
    kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
    if kinds & {"integer", "number"}:
        return "1"
    return "car"


def requests_for(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str], Any]]:
    """(method, path, query, json body) with one bad value in one parameter, for every route in ``schema``."""
    for template, operations in schema["paths"].items():
        for method, op in operations.items():
            params = op.get("parameters", [])
            good = {p["name"]: good_value(p) for p in params}
            body_ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            body = _good_body(schema, body_ref)
            for target in params:
                for bad in BAD_VALUES:
                    values = good | {target["name"]: bad}
                    path = template
                    for p in params:
                        if p["in"] == "path":
                            path = path.replace("{" + p["name"] + "}", quote(values[p["name"]], safe=""))
                    query = {p["name"]: values[p["name"]] for p in params if p["in"] == "query"}
                    yield method.upper(), path, query, body
            for field in body or {}:
                for bad_json in BAD_JSON_VALUES:
                    yield method.upper(), template, {}, body | {field: bad_json}


def _good_body(schema: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    model = schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
    good = {"video_id": 1, "queries": ["car"], "fps": 1.0, "max_frames": 4}
    return {name: good[name] for name in model["properties"]}


def test_every_parameter_of_every_route_answers_4xx_for_bad_values(server_url):
    schema = httpx.get(server_url + "/openapi.json").json()
    checked: set[tuple[str, str]] = set()
    failures = []
    with httpx.Client(base_url=server_url, timeout=30) as client:
        for method, path, query, body in requests_for(schema):
            try:
                response = client.request(method, path, params=query, json=body)
            except httpx.TransportError as exc:  # a reset or closed connection
                failures.append(f"{method} {path[:80]} {query} -> {type(exc).__name__}")
                continue
            checked.add((method, path.split("/")[1]))
            if response.status_code >= 500:
                failures.append(f"{method} {path[:80]} {str(query)[:80]} -> {response.status_code}")
    assert not failures, "\n".join(failures[:20])
    # the walk reached the id routes, search and the model routes
    assert {("GET", "media"), ("GET", "api"), ("POST", "api")} <= checked


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_ids_beyond_the_stores_integer_range_are_422_and_the_largest_is_404(store, request):
    library = request.getfixturevalue(f"{store}_store")
    with serve(create_app(library)) as url, httpx.Client(base_url=url) as client:
        for path in (
            "/media/99999999999999999999",
            "/api/videos/99999999999999999999",
            "/api/videos/99999999999999999999/events.vtt",
            "/api/videos/²",
        ):
            response = client.get(path)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["detail"][0]["loc"] == ["path", "video_id"]
        assert client.get(f"/api/videos/{MAX_VIDEO_ID}").status_code == 404
        assert client.get(f"/media/{MAX_VIDEO_ID}").status_code == 404
        big = client.post("/api/caption", json={"video_id": 10**30})
        assert big.status_code == 422 and big.json()["detail"][0]["loc"] == ["body", "video_id"]
        assert client.get("/api/search", params={"q": "car", "start": "inf"}).status_code == 422
        assert client.get("/api/search", params={"q": "car\x00"}).status_code == 422
        assert client.get("/api/videos/1").status_code == 200
