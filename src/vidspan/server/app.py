"""The HTTP API and timeline page: a thin FastAPI shell over a :class:`~vidspan.library.types.Library`.

Endpoints (JSON; OpenAPI docs at ``/docs`` and ``/openapi.json``):

- ``GET /api/videos``: the library; ``GET /api/videos/{id}``: one video and its events;
  ``GET /api/videos/{id}/events.vtt``: its events as WebVTT chapters;
- ``GET /api/search?q=&limit=&path=&start=&end=``: moments that match a query, best first;
- ``GET /api/status``: indexing status;
- ``POST /api/caption`` / ``POST /api/find``: run :func:`vidspan.caption` / :func:`vidspan.find` on an
  indexed video with the server's model (503 when it has none);
- ``GET /media/{id}``: the file of an indexed video, with HTTP Range support so players can seek;
- ``GET /``: the timeline page.

Media are looked up by id only, never by a path from the request. With a token, ``/api`` and ``/media``
need ``Authorization: Bearer <token>`` (``/media`` also accepts ``?token=``, as ``<video>`` cannot send
headers). Library calls are serialised with a lock and model calls with another.

Example:
    >>> app = create_app(VideoIndex("videos.db"), token="s3cret")  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from vidspan.errors import VidspanError
from vidspan.library.types import IndexedEvent, IndexedVideo, Library, SearchHit
from vidspan.models.base import VideoModel
from vidspan.server.routes import (
    MAX_VIDEO_ID,
    NO_NUL,
    events_to_vtt,
    library_router,
    media_router,
    model_router,
)

logger = logging.getLogger(__name__)

__all__ = ["MAX_VIDEO_ID", "NO_NUL", "LockedLibrary", "create_app", "events_to_vtt"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024


class LockedLibrary:
    """A :class:`Library` whose calls run one at a time (SQLite connections are not thread-safe)."""

    def __init__(self, library: Library):
        self.library = library
        self._lock = threading.RLock()

    def videos(self) -> list[IndexedVideo]:
        with self._lock:
            return self.library.videos()

    def video(self, video_id: int) -> IndexedVideo | None:
        with self._lock:
            return self.library.video(video_id)

    def events(self, video_id: int) -> list[IndexedEvent]:
        with self._lock:
            return self.library.events(video_id)

    def search(self, query: str, **kwargs: Any) -> list[SearchHit]:
        with self._lock:
            return self.library.search(query, **kwargs)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self.library.status()


class _Guard:
    """ASGI middleware: bearer token on ``/api`` and ``/media``, and a request body size limit."""

    def __init__(self, app: Any, token: str | None, max_body_bytes: int):
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        if (
            self.token is not None
            and path.startswith(("/api/", "/media/"))
            and not self._authorised(headers, path, scope.get("query_string", b""))
        ):
            await _send_json(send, 401, {"detail": "Missing or wrong bearer token."},
                             extra=[(b"www-authenticate", b"Bearer")])  # fmt: skip
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _send_json(send, 413, {"detail": self._too_large()})
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(status_code=413, detail=self._too_large())
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> str:
        return f"Request body too large. It must be at most {self.max_body_bytes} bytes."

    def _authorised(self, headers: dict[str, str], path: str, query_string: bytes) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), expected):
            return True
        if path.startswith("/media/"):
            from urllib.parse import parse_qs

            given = parse_qs(query_string.decode("latin-1")).get("token", [""])[0]
            return secrets.compare_digest(given.encode(), expected)
        return False


async def _send_json(send: Any, status: int, body: dict[str, Any], extra: list[Any] | None = None) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": data})


def create_app(
    library: Library,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    model: VideoModel | str | None = None,
) -> FastAPI:
    """The HTTP API and timeline page over ``library``.

    Args:
        library: Where videos, events and search come from (e.g. :class:`vidspan.library.sqlite.VideoIndex`).
        token: When set, ``/api`` and ``/media`` answer 401 without ``Authorization: Bearer <token>``.
        max_body_bytes: Larger request bodies get 413.
        model: A loaded :class:`VideoModel` or a model name for ``/api/caption`` and ``/api/find``;
            without one they answer 503.

    Returns:
        A FastAPI app; serve it with uvicorn.
    """
    if max_body_bytes < 1:
        raise ValueError(f"Invalid max_body_bytes: {max_body_bytes}. It must be at least 1.")
    if token is not None and not token:
        raise ValueError("Invalid token: ''. It must be a non-empty string, or None for no token.")
    lib = LockedLibrary(library)
    app = FastAPI(
        title="vidspan",
        summary="Search a video library and see what happens when.",
        version=_version(),
    )
    app.add_middleware(_Guard, token=token, max_body_bytes=max_body_bytes)

    app.include_router(library_router(lib))
    app.include_router(model_router(lib, model, threading.Lock()))
    app.include_router(media_router(lib))

    @app.exception_handler(VidspanError)
    def _vidspan_error(request: Request, exc: VidspanError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=500)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vidspan")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
