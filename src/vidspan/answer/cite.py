"""Citations of moments in a language model's answer: ``[12.0–18.5]``, ``[lobby.mp4 1:05–1:20]``.

Every citation is checked against the moments the answer was given (:class:`Evidence`) and the video's
duration: it must name a video the evidence came from (or there is only one), lie inside that video,
and overlap a retrieved moment. What fails is kept with the reason, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.parse import parse_time
from vidspan.types import Span

__all__ = ["Citation", "Evidence", "check_citations", "find_citations"]

_TIME = r"\d+(?::\d{1,2}){0,2}(?:\.\d+)?"
CITATION = re.compile(
    rf"\[\s*(?:(?P<video>[^\[\]]*?[^\s\[\],:])\s*[,:]?\s+)?(?P<a>{_TIME})\s*(?:s\b|sec\b)?\s*"
    rf"(?:–|—|-|to)\s*(?P<b>{_TIME})\s*(?:s|sec|seconds)?\s*\]"
)
"""A cited span: ``[a–b]`` in seconds or clock time, optionally after a video name."""
SLACK_SECONDS = 1.0
"""How far a citation may reach past a retrieved moment or the video's end and still count."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One moment an answer may cite: a video's span and what happens in it.

    Attributes:
        video: The video file.
        span: Where, in source seconds.
        text: What happens (an event description, a search hit's caption).
        source: ``"index"`` (a library search hit), ``"caption"`` (an event of a fresh caption) or
            ``"find"`` (a span the model grounded for the question).
        score: The retrieval or grounding score, when there is one.
    """

    video: str
    span: Span
    text: str
    source: str
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "video": self.video,
            "start": self.span.start,
            "end": self.span.end,
            "text": self.text,
            "source": self.source,
            "score": self.score,
        }


@dataclass(frozen=True, slots=True)
class Citation:
    """One cited moment of an answer.

    Attributes:
        text: The citation as written, e.g. ``"[12.0–18.5]"``.
        span: The cited span in seconds.
        video: The video it points at, once resolved (``None`` if it names none of the evidence's).
        evidence: Index of the retrieved moment that supports it, or ``None``.
        problem: Why it is rejected, or ``None`` when it is supported.
    """

    text: str
    span: Span
    video: str | None
    evidence: int | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the citation points at a real, retrieved moment."""
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "text": self.text,
            "video": self.video,
            "start": self.span.start,
            "end": self.span.end,
            "evidence": self.evidence,
            "ok": self.ok,
            "problem": self.problem,
        }


def find_citations(text: str) -> list[tuple[str, str | None, float, float]]:
    """Every ``(as written, video name or None, start, end)`` cited in ``text``, in order."""
    found = []
    for match in CITATION.finditer(text):
        try:
            start, end = parse_time(match["a"]), parse_time(match["b"])
        except ValueError:
            continue
        found.append((match[0], match["video"], start, end))
    return found


def check_citations(
    text: str, evidence: Sequence[Evidence], durations: Mapping[str, float | None]
) -> list[Citation]:
    """The citations of ``text``, each checked against ``evidence`` and the videos' ``durations``."""
    videos = list(dict.fromkeys(e.video for e in evidence))
    checked = []
    for written, name, start, end in find_citations(text):
        span = Span(start, max(start, end))
        if end < start:
            checked.append(Citation(written, span, None, None, "it ends before it starts"))
            continue
        if name is not None:
            video = _named(name, videos)
            if video is None:
                checked.append(
                    Citation(written, span, None, None, f"{name!r} is none of the videos retrieved")
                )
                continue
            candidates = [video]
        else:
            candidates = videos
        best = _best_evidence(span, evidence, candidates)
        video = (
            evidence[best].video if best is not None else (candidates[0] if len(candidates) == 1 else None)
        )
        duration = durations.get(video) if video is not None else None
        if duration is not None and span.start > duration + SLACK_SECONDS:
            problem = f"it starts after the video ends ({duration:.1f} s)"
        elif duration is not None and span.end > duration + SLACK_SECONDS:
            problem = f"it ends after the video ends ({duration:.1f} s)"
        elif best is None:
            problem = "no retrieved moment covers it"
        else:
            problem = None
        checked.append(Citation(written, span, video, best, problem))
    return checked


def _named(name: str, videos: Sequence[str]) -> str | None:
    """The retrieved video a citation names by path, file name or stem."""
    wanted = name.strip().strip("\"'`").lower()
    for video in videos:
        path = Path(video)
        if wanted in (video.lower(), path.name.lower(), path.stem.lower()):
            return video
    return None


def _best_evidence(span: Span, evidence: Sequence[Evidence], videos: Sequence[str]) -> int | None:
    """The retrieved moment of ``videos`` that overlaps ``span`` most (within the slack), or ``None``."""
    best, best_overlap = None, -1.0
    for i, item in enumerate(evidence):
        if item.video not in videos:
            continue
        low = max(span.start, item.span.start - SLACK_SECONDS)
        high = min(span.end, item.span.end + SLACK_SECONDS)
        overlap = high - low
        if overlap >= 0 and overlap > best_overlap:
            best, best_overlap = i, overlap
    return best
