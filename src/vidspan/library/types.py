"""What a video index holds and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class IndexedVideo:
    """One video in the index (``path`` is absolute; ``sha256`` is of the file's content)."""

    id: int
    path: str
    sha256: str
    duration_seconds: float
    scene: str
    model: str
    num_events: int
    indexed_at: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    """One timed event of an indexed video."""

    id: int
    video_id: int
    start: float
    end: float
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One moment that matches a query; ``to_dict`` is ``{video, start, end, score, caption}``."""

    video: str
    start: float
    end: float
    score: float
    caption: str
    video_id: int
    event_id: int
    grounding: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The search-hit JSON shape (``grounding`` only when a second-stage ``find`` refined the span)."""
        out = {"video": self.video, "start": self.start, "end": self.end, "score": self.score,
               "caption": self.caption, "video_id": self.video_id, "event_id": self.event_id}  # fmt: skip
        if self.grounding is not None:
            out["grounding"] = self.grounding
        return out


class Library(Protocol):
    """What the HTTP API and the web page need from an index (SQLite today, PostgreSQL later)."""

    def videos(self) -> list[IndexedVideo]: ...
    def video(self, video_id: int) -> IndexedVideo | None: ...
    def events(self, video_id: int) -> list[IndexedEvent]: ...
    def search(
        self, query: str, *, limit: int = 10, path_glob: str | None = None,
        start: float | None = None, end: float | None = None,
    ) -> list[SearchHit]: ...  # fmt: skip
    def status(self) -> dict[str, Any]: ...
