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
import mimetypes
import secrets
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from vidspan.errors import VidspanError
from vidspan.library.types import IndexedEvent, IndexedVideo, Library, SearchHit
from vidspan.models.base import VideoModel

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024
STATIC = resources.files("vidspan.server") / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
MAX_VIDEO_ID = 2**63 - 1
"""The largest id either store can hold (SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit); larger
ids are refused with 422 before they reach the database, whose drivers fail on them."""
NO_NUL = r"^[^\x00]*$"
"""Text parameters may not hold NUL characters (PostgreSQL text cannot store them)."""
VideoId = Annotated[int, PathParam(ge=1, le=MAX_VIDEO_ID, description="The id of an indexed video.")]


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


class CaptionRequest(BaseModel):
    """Body of ``POST /api/caption``."""

    model_config = ConfigDict(extra="forbid")
    video_id: int = Field(ge=1, le=MAX_VIDEO_ID)
    fps: float | None = Field(default=None, gt=0, le=30)
    max_frames: int | None = Field(default=None, ge=2, le=1024)


class FindRequest(BaseModel):
    """Body of ``POST /api/find``."""

    model_config = ConfigDict(extra="forbid")
    video_id: int = Field(ge=1, le=MAX_VIDEO_ID)
    queries: list[str] = Field(min_length=1, max_length=32)
    fps: float | None = Field(default=None, gt=0, le=30)
    max_frames: int | None = Field(default=None, ge=2, le=1024)


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
    model_lock = threading.Lock()
    app = FastAPI(
        title="vidspan",
        summary="Search a video library and see what happens when.",
        version=_version(),
    )
    app.add_middleware(_Guard, token=token, max_body_bytes=max_body_bytes)

    def video_or_404(video_id: int) -> IndexedVideo:
        found = lib.video(video_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"No video with id {video_id} in the library.")
        return found

    def run_model(fn: Any, video: IndexedVideo, *args: Any, **options: Any) -> Any:
        if model is None:
            raise HTTPException(
                status_code=503,
                detail="This server has no model: start it with 'vidspan serve -m MODEL' to caption or find.",
            )
        if not Path(video.path).is_file():
            raise HTTPException(status_code=404, detail=f"The file of video {video.id} is missing.")
        options = {k: v for k, v in options.items() if v is not None}
        try:
            with model_lock:
                return fn(video.path, *args, model=model, **options)
        except ValueError as exc:  # the library's own check of an argument the request gave
            raise HTTPException(status_code=422, detail=" ".join(str(exc).split())) from None
        except VidspanError as exc:
            raise HTTPException(status_code=500, detail=" ".join(str(exc).split())) from None

    @app.get("/api/videos", tags=["library"])
    def list_videos() -> dict[str, Any]:
        """Every indexed video."""
        return {"videos": [_video_json(v) for v in lib.videos()]}

    @app.get("/api/videos/{video_id}", tags=["library"])
    def get_video(video_id: VideoId) -> dict[str, Any]:
        """One video and its timed events."""
        video = video_or_404(video_id)
        return _video_json(video) | {"events": [e.to_dict() for e in lib.events(video.id)]}

    @app.get("/api/videos/{video_id}/events.vtt", tags=["library"], response_class=PlainTextResponse)
    def get_video_vtt(video_id: VideoId) -> PlainTextResponse:
        """A video's events as WebVTT cues (for ``<track kind="chapters">``)."""
        video = video_or_404(video_id)
        return PlainTextResponse(events_to_vtt(lib.events(video.id)), media_type="text/vtt; charset=utf-8")

    @app.get("/api/search", tags=["library"])
    def search(
        q: str = Query(min_length=1, max_length=1000, pattern=NO_NUL, description="What to look for."),
        limit: int = Query(10, ge=1, le=100),
        path: str | None = Query(
            None, max_length=1000, pattern=NO_NUL, description="Only videos whose path matches this glob."
        ),
        start: float | None = Query(
            None, ge=0, allow_inf_nan=False, description="Only moments ending after this second."
        ),
        end: float | None = Query(
            None, ge=0, allow_inf_nan=False, description="Only moments starting before this second."
        ),
    ) -> dict[str, Any]:
        """Moments across the library that match ``q``, best first."""
        started = time.perf_counter()
        try:
            hits = lib.search(q, limit=limit, path_glob=path, start=start, end=end)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        took_ms = round((time.perf_counter() - started) * 1000, 1)
        return {"query": q, "took_ms": took_ms, "hits": [h.to_dict() for h in hits]}

    @app.get("/api/status", tags=["library"])
    def status() -> dict[str, Any]:
        """Indexing status of the library."""
        return lib.status()

    @app.post("/api/caption", tags=["model"])
    def caption_video(body: CaptionRequest) -> dict[str, Any]:
        """Caption an indexed video with the server's model (the index is not changed)."""
        from vidspan.caption import caption

        video = video_or_404(body.video_id)
        result = run_model(caption, video, fps=body.fps, max_frames=body.max_frames)
        return (
            {"video_id": video.id, "video": video.path, "model": result.model}
            | result.to_dict()
            | {
                "format_ok": result.format_ok,
                "violations": list(result.violations),
            }
        )

    @app.post("/api/find", tags=["model"])
    def find_in_video(body: FindRequest) -> dict[str, Any]:
        """Find when each query happens in an indexed video with the server's model."""
        from vidspan.find import find

        video = video_or_404(body.video_id)
        results = run_model(find, video, list(body.queries), fps=body.fps, max_frames=body.max_frames)
        return {
            "video_id": video.id,
            "video": video.path,
            "results": [
                {"query": r.query} | r.to_dict() | {"score": r.score, "model": r.model} for r in results
            ],
        }

    @app.get("/media/{video_id}", tags=["media"], response_class=FileResponse)
    def media(video_id: VideoId) -> FileResponse:
        """The file of an indexed video (supports ``Range`` requests)."""
        video = video_or_404(video_id)
        path = Path(video.path)
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"The file of video {video.id} is missing.")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "timeline.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> PlainTextResponse:
        media_type = _STATIC_TYPES.get(Path(name).suffix)
        if media_type is None or name not in _static_names():
            raise HTTPException(status_code=404, detail="Not found.")
        return PlainTextResponse((STATIC / name).read_text(encoding="utf-8"), media_type=media_type)

    @app.exception_handler(VidspanError)
    def _vidspan_error(request: Request, exc: VidspanError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=500)

    return app


def events_to_vtt(events: list[IndexedEvent]) -> str:
    """WebVTT cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` for events."""
    lines = ["WEBVTT", ""]
    for e in events:
        lines += [
            str(e.id),
            f"{_vtt_time(e.start)} --> {_vtt_time(e.end)}",
            " ".join(e.description.split()),
            "",
        ]
    return "\n".join(lines)


def _vtt_time(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _video_json(video: IndexedVideo) -> dict[str, Any]:
    return video.to_dict() | {"name": Path(video.path).name, "media_url": f"/media/{video.id}"}


def _static_names() -> set[str]:
    return {p.name for p in STATIC.iterdir() if p.is_file()}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vidspan")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
