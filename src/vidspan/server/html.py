"""One self-contained HTML file showing a caption's timeline (or an answer's points) beside its video."""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from vidspan.types import Caption

if TYPE_CHECKING:
    from vidspan.points.results import Pointing, Tracking

logger = logging.getLogger(__name__)

_STATIC = resources.files("vidspan.server") / "static"
_CSS_LINK = '<link rel="stylesheet" href="static/timeline.css">'
_JS_TAG = '<script src="static/timeline.js"></script>'
_DATA_MARK = "<!--vidspan:data-->"


def caption_to_html(
    caption: Caption,
    video_path: str | os.PathLike[str],
    *,
    embed_video: bool = False,
    relative_to: str | os.PathLike[str] | None = None,
) -> str:
    """The timeline page for one captioned video, as a single HTML file (inline CSS and JS).

    Args:
        caption: What :func:`vidspan.caption` returned.
        video_path: The captioned video.
        embed_video: Put the whole video inside the page as a base64 data URL (portable, but large).
        relative_to: The folder the page will be saved in; the video is then referenced by a relative URL.
            Without it, by an absolute ``file://`` URL.

    Returns:
        The HTML text.
    """
    path = Path(video_path)
    ends = [w.end for w in caption.windows] + [e.end for e in caption.events]
    video = {"scene": caption.scene, "model": caption.model, "duration_seconds": max(ends, default=0.0)}
    events = [{"id": i} | e.to_dict() for i, e in enumerate(caption.events)]
    return _page(path, video, events, {}, embed_video=embed_video, relative_to=relative_to)


def points_to_html(
    answer: Pointing | Tracking,
    video_path: str | os.PathLike[str],
    *,
    embed_video: bool = False,
    relative_to: str | os.PathLike[str] | None = None,
) -> str:
    """The timeline page with an answer's points (or tracks) drawn over the player while it plays.

    Points show for half a second around their time; a track's position is interpolated between its
    reported times. The timeline lists each track's span (or each point's moment) as an event.
    """
    from vidspan.points.results import Counting, Tracking

    path = Path(video_path)
    if isinstance(answer, Tracking):
        events = [{"id": i, "start": t.start, "end": t.end, "description": f"#{t.object_id} {t.label}"}
                  for i, t in enumerate(answer.tracks)]  # fmt: skip
        mode = "track"
    else:
        events = [{"id": i, "start": p.t, "end": p.t, "description": f"#{p.object_id} {p.label}"}
                  for i, p in enumerate(answer.points)]  # fmt: skip
        mode = "count" if isinstance(answer, Counting) else "point"
    scene = f"{answer.query}: {answer.count}" if isinstance(answer, Counting) else answer.query
    video = {"scene": scene, "model": answer.model, "duration_seconds": answer.duration,
             "width": answer.width, "height": answer.height}  # fmt: skip
    extra = {"points": [p.to_dict() for p in answer.points], "point_mode": mode}
    return _page(path, video, events, extra, embed_video=embed_video, relative_to=relative_to)


def _page(path: Path, video: dict[str, Any], events: list[dict[str, Any]], extra: dict[str, Any], *,
          embed_video: bool, relative_to: str | os.PathLike[str] | None) -> str:  # fmt: skip
    """The page's HTML with the data inlined (CSS and JS too)."""
    if embed_video:
        media_type = mimetypes.guess_type(path.name)[0] or "video/mp4"
        media_url = f"data:{media_type};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    elif relative_to is not None:
        media_url = quote(Path(os.path.relpath(path.resolve(), Path(relative_to).resolve())).as_posix())
    else:
        media_url = path.resolve().as_uri()
    data = {"video": {"id": 0, "path": str(path), "name": path.name, "media_url": media_url} | video,
            "events": events} | extra  # fmt: skip
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")
    page = (_STATIC / "timeline.html").read_text(encoding="utf-8")
    css = (_STATIC / "timeline.css").read_text(encoding="utf-8")
    js = (_STATIC / "timeline.js").read_text(encoding="utf-8")
    for marker in (_CSS_LINK, _JS_TAG, _DATA_MARK):
        if marker not in page:  # pragma: no cover - guards edits of timeline.html
            raise RuntimeError(f"timeline.html lacks {marker!r}")
    page = page.replace("<title>vidspan timeline</title>", f"<title>{_escape(path.name)} · vidspan</title>")
    page = page.replace(_CSS_LINK, f"<style>\n{css}</style>")
    page = page.replace(_DATA_MARK, f"<script>window.VIDSPAN_DATA = {payload};</script>")
    return page.replace(_JS_TAG, f"<script>\n{js}</script>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
