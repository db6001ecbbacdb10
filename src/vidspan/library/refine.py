"""Second-stage grounding of search hits, and cutting hits into clips.

Search ranks events by their captions; ``ground_hits`` then asks the model itself where the query happens
inside a window around each of the best hits (the two-stage recipe of the ``nemostation`` CLI) and replaces
the hit's span with the answer when it parses.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidspan.find import ground
from vidspan.library.types import SearchHit
from vidspan.types import Span
from vidspan.video import open_video
from vidspan.video.cut import cut_clip
from vidspan.windows import ModelLike, prepare

logger = logging.getLogger(__name__)


def ground_hits(
    hits: list[SearchHit],
    query: str,
    model: ModelLike | None,
    *,
    top: int = 5,
    padding_seconds: float = 15.0,
    **options: Any,
) -> list[SearchHit]:
    """Sharpen the spans of the ``top`` hits with ``find`` inside a window around each.

    Args:
        hits: Search results, best first.
        query: What was searched for (the grounding query).
        model: Model name, checkpoint or loaded :class:`VideoModel`.
        top: How many of the best hits to ground; the rest are returned unchanged.
        padding_seconds: Seconds of context on each side of a hit's span.
        **options: Sampling overrides and model options, as for :func:`vidspan.find`.

    Returns:
        The hits in the same order; grounded ones carry ``grounding`` = ``{"raw", "format_ok", "score",
        "window", "caption_span"}`` and the model's span when it parsed.
    """
    if top < 0 or padding_seconds < 0:
        raise ValueError(f"Invalid top/padding_seconds: {top}, {padding_seconds}. They must be >= 0.")
    if not hits or top == 0:
        return list(hits)
    vm, settings = prepare(model, None, dict(options))
    out = list(hits)
    for i, hit in enumerate(hits[:top]):
        with open_video(hit.video) as reader:
            info = reader.info
            end_of_video = info.start_seconds + info.duration_seconds
            window = Span(
                max(info.start_seconds, hit.start - padding_seconds),
                min(end_of_video, hit.end + padding_seconds),
            )
            clip = reader.sample(settings.sampling, window=window)
        (found,) = ground(vm, [clip], [query])
        grounding = {
            "raw": found.raw, "format_ok": found.format_ok, "score": found.score,
            "window": window.to_tuple(), "caption_span": (hit.start, hit.end),
        }  # fmt: skip
        if found.span is not None:
            out[i] = replace(hit, start=found.span.start, end=found.span.end, grounding=grounding)
        else:
            out[i] = replace(hit, grounding=grounding)
    return out


def export_hits(
    hits: list[SearchHit], out_dir: str | os.PathLike[str], *, precise: bool = False, overwrite: bool = False
) -> list[Path]:
    """Cut every hit into ``out_dir/<video stem>_<start>-<end>.mp4`` with FFmpeg (stream copy unless
    ``precise``); returns the written paths in hit order."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for hit in hits:
        name = f"{Path(hit.video).stem}_{hit.start:08.2f}-{hit.end:08.2f}.mp4"
        written.append(
            cut_clip(
                hit.video,
                hit.start,
                max(hit.end, hit.start + 0.1),
                directory / name,
                precise=precise,
                overwrite=overwrite,
            )  # fmt: skip
        )
    return written
