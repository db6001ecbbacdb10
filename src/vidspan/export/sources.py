"""What an export reads: a caption JSON file (``vidspan caption --json``) or an indexed video in a library."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vidspan.errors import ExportSourceError
from vidspan.types import Event, Span

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExportSource:
    """Events to export and what is known about their video.

    ``video`` is the video's path when known (absolute for a library, as found for a caption file).
    ``duration_seconds`` comes from the library, or from the end of a caption's last window; ``None`` when
    unknown (probe the video instead).
    """

    events: tuple[Event, ...]
    video: str | None = None
    duration_seconds: float | None = None
    scene: str = ""

    @classmethod
    def from_caption_json(cls, path: str | os.PathLike[str]) -> ExportSource:
        """Read the JSON that ``vidspan caption --json`` prints (or ``Caption.to_dict()`` output).

        A relative ``"video"`` path is looked up from the working directory, then from the file's folder.

        Raises:
            ExportSourceError: The file is missing, not JSON, or not a caption.
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ExportSourceError(f"Cannot read caption file {file}: no such file.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportSourceError(f"Cannot read caption file {file}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExportSourceError(
                f"Invalid caption file {file}: not JSON ({exc}). It must be the output of 'vidspan caption "
                "--json'."
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise ExportSourceError(
                f"Invalid caption file {file}: no 'events' list. It must be the output of 'vidspan caption "
                "--json'."
            )
        events = []
        for number, item in enumerate(data["events"], start=1):
            try:
                events.append(Event.from_dict(item))
            except KeyError as exc:
                raise ExportSourceError(_bad_event(file, number, f"no {exc}")) from None
            except (TypeError, ValueError, AttributeError) as exc:
                raise ExportSourceError(_bad_event(file, number, str(exc).rstrip("."))) from None
        try:
            windows = [float(w[1]) for w in data.get("windows") or []]
        except (TypeError, ValueError, IndexError, KeyError):
            windows = []  # only a hint for the duration; the video is probed when it is found
        video = data.get("video")
        return cls(
            events=tuple(events),
            video=_find_video(str(video), file.parent) if isinstance(video, str) and video else None,
            duration_seconds=max(windows) if windows else None,
            scene=str(data.get("scene", "")),
        )

    @classmethod
    def from_library(cls, db: str | os.PathLike[str], video: str | os.PathLike[str]) -> ExportSource:
        """The events of ``video`` as indexed in the library ``db`` (a SQLite file or ``postgresql://`` URL).

        Raises:
            IndexNotFoundError: There is no library at ``db``.
            ExportSourceError: ``video`` is not in the library.
        """
        from vidspan.library.open import open_index

        with open_index(db, create=False) as index:
            found = index.video_by_path(video)
            if found is None:
                raise ExportSourceError(
                    f"Video {video} is not in the library {db}. Add it with: vidspan index {video}"
                )
            events = tuple(Event(Span(e.start, e.end), e.description) for e in index.events(found.id))
        return cls(
            events=events, video=found.path, duration_seconds=found.duration_seconds, scene=found.scene
        )


def _bad_event(file: Path, number: int, reason: str) -> str:
    return (
        f"Invalid caption file {file}: event {number}: {reason}. Each event must be "
        '{"start": seconds, "end": seconds, "description": text} with 0 <= start <= end.'
    )


def _find_video(video: str, folder: Path) -> str:
    path = Path(video).expanduser()
    if path.is_absolute() or path.exists() or not (folder / path).exists():
        return str(path)
    return str(folder / path)
