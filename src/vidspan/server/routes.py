"""The routes of the library web app, one router per part: the library, the model, the media and page.

Each ``*_router`` function builds its :class:`fastapi.APIRouter` over the app's shared state (the locked
library, the model and its lock); :func:`vidspan.server.app.create_app` includes them. Every path and
query parameter is range-checked here, so bad values answer 422 before the store sees them.
"""

from __future__ import annotations

import mimetypes
import threading
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from vidspan.errors import VidspanError
from vidspan.library.types import IndexedEvent, IndexedVideo
from vidspan.models.base import VideoModel

if TYPE_CHECKING:
    from vidspan.server.app import LockedLibrary

__all__ = [
    "MAX_VIDEO_ID", "NO_NUL", "CaptionRequest", "FindRequest", "VideoId", "events_to_vtt", "library_router",
    "media_router", "model_router",
]  # fmt: skip

STATIC = resources.files("vidspan.server") / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
MAX_VIDEO_ID = 2**63 - 1
"""The largest id either store can hold (SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit); larger
ids are refused with 422 before they reach the database, whose drivers fail on them."""
NO_NUL = r"^[^\x00]*$"
"""Text parameters may not hold NUL characters (PostgreSQL text cannot store them)."""
VideoId = Annotated[int, PathParam(ge=1, le=MAX_VIDEO_ID, description="The id of an indexed video.")]


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


def video_or_404(lib: LockedLibrary, video_id: int) -> IndexedVideo:
    """The indexed video with this id, or a 404."""
    found = lib.video(video_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"No video with id {video_id} in the library.")
    return found


# ------------------------------------------------------------------------------------------------ library


def library_router(lib: LockedLibrary) -> APIRouter:
    """The library: /api/videos, one video, its events as WebVTT, /api/search and /api/status."""
    router = APIRouter(tags=["library"])

    @router.get("/api/videos")
    def list_videos() -> dict[str, Any]:
        """Every indexed video."""
        return {"videos": [_video_json(v) for v in lib.videos()]}

    @router.get("/api/videos/{video_id}")
    def get_video(video_id: VideoId) -> dict[str, Any]:
        """One video and its timed events."""
        video = video_or_404(lib, video_id)
        return _video_json(video) | {"events": [e.to_dict() for e in lib.events(video.id)]}

    @router.get("/api/videos/{video_id}/events.vtt", response_class=PlainTextResponse)
    def get_video_vtt(video_id: VideoId) -> PlainTextResponse:
        """A video's events as WebVTT cues (for ``<track kind="chapters">``)."""
        video = video_or_404(lib, video_id)
        return PlainTextResponse(events_to_vtt(lib.events(video.id)), media_type="text/vtt; charset=utf-8")

    @router.get("/api/search")
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

    @router.get("/api/status")
    def status() -> dict[str, Any]:
        """Indexing status of the library."""
        return lib.status()

    return router


# -------------------------------------------------------------------------------------------------- model


def model_router(lib: LockedLibrary, model: VideoModel | str | None, lock: threading.Lock) -> APIRouter:
    """``POST /api/caption`` and ``POST /api/find`` with the server's model, one call at a time."""
    router = APIRouter(tags=["model"])

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
            with lock:
                return fn(video.path, *args, model=model, **options)
        except ValueError as exc:  # the library's own check of an argument the request gave
            raise HTTPException(status_code=422, detail=" ".join(str(exc).split())) from None
        except VidspanError as exc:
            raise HTTPException(status_code=500, detail=" ".join(str(exc).split())) from None

    @router.post("/api/caption")
    def caption_video(body: CaptionRequest) -> dict[str, Any]:
        """Caption an indexed video with the server's model (the index is not changed)."""
        from vidspan.caption import caption

        video = video_or_404(lib, body.video_id)
        result = run_model(caption, video, fps=body.fps, max_frames=body.max_frames)
        return (
            {"video_id": video.id, "video": video.path, "model": result.model}
            | result.to_dict()
            | {"format_ok": result.format_ok, "violations": list(result.violations)}
        )

    @router.post("/api/find")
    def find_in_video(body: FindRequest) -> dict[str, Any]:
        """Find when each query happens in an indexed video with the server's model."""
        from vidspan.find import find

        video = video_or_404(lib, body.video_id)
        results = run_model(find, video, list(body.queries), fps=body.fps, max_frames=body.max_frames)
        return {
            "video_id": video.id,
            "video": video.path,
            "results": [
                {"query": r.query} | r.to_dict() | {"score": r.score, "model": r.model} for r in results
            ],
        }

    return router


# ------------------------------------------------------------------------------------------ media, page


def media_router(lib: LockedLibrary) -> APIRouter:
    """``GET /media/{id}`` (Range requests), the timeline page ``/`` and its ``/static`` files."""
    router = APIRouter()

    @router.get("/media/{video_id}", tags=["media"], response_class=FileResponse)
    def media(video_id: VideoId) -> FileResponse:
        """The file of an indexed video (supports ``Range`` requests)."""
        video = video_or_404(lib, video_id)
        path = Path(video.path)
        if not path.is_file():
            raise HTTPException(status_code=404, detail=f"The file of video {video.id} is missing.")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "timeline.html").read_text(encoding="utf-8"))

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> PlainTextResponse:
        media_type = _STATIC_TYPES.get(Path(name).suffix)
        if media_type is None or name not in _static_names():
            raise HTTPException(status_code=404, detail="Not found.")
        return PlainTextResponse((STATIC / name).read_text(encoding="utf-8"), media_type=media_type)

    return router


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
