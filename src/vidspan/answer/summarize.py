"""``summarize``: a summary of a long video, built window by window, with chapter titles and start times.

The video is captioned in its windows (the same windows as :func:`vidspan.caption`); the language model
summarises each window from its timed events, then writes the summary of those summaries and the
chapters (a title and a start time each) in JSON, which is checked: starts inside the video, ascending,
the first at 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vidspan.types import Caption, Span
from vidspan.windows import ModelLike

__all__ = ["Summary", "WindowSummary", "summarize"]

WINDOW_SYSTEM = (
    "You summarise one part of a video from its timed events. Write two or three plain sentences about "
    "what happens, in order, without times or lists."
)
SUMMARY_SYSTEM = (
    "You write the summary of a whole video from the summaries of its parts, and divide it into chapters. "
    'Reply with JSON only: {"summary": "<one paragraph>", "chapters": [{"start": <seconds>, "title": '
    '"<a few words>"}, ...]}. Chapters follow the video in order, start at 0, and start where the parts '
    "or the events inside them begin."
)


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """One window of the video and the language model's summary of its events."""

    span: Span
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"start": self.span.start, "end": self.span.end, "summary": self.text}


@dataclass(frozen=True, slots=True)
class Summary:
    """A video's summary, chapters and the window summaries it was built from.

    Attributes:
        video: The video file.
        text: The summary of the whole video.
        chapters: ``Chapter(start, title)`` in order, the first at 0 s.
        windows: Each window's summary.
        caption: The caption the summaries were written from (its events, windows and raw text).
        duration: The video's length in seconds.
        llm: The language model that wrote it.
    """

    video: str
    text: str
    chapters: tuple[Any, ...]
    windows: tuple[WindowSummary, ...]
    caption: Caption
    duration: float
    llm: str

    def to_dict(self) -> dict[str, Any]:
        """``{video, summary, chapters, windows, duration, llm}`` for JSON."""
        return {
            "video": self.video,
            "summary": self.text,
            "chapters": [{"start": c.start, "title": c.title} for c in self.chapters],
            "windows": [w.to_dict() for w in self.windows],
            "duration": self.duration,
            "llm": self.llm,
        }


def summarize(
    video: str | os.PathLike[str],
    *,
    llm: Any,
    model: ModelLike | None = None,
    caption: Caption | None = None,
    progress: Any = None,
    **options: Any,
) -> Summary:
    """Summarise ``video`` window by window, then as a whole, with chapters.

    Args:
        video: The video file.
        llm: A judge (:func:`vidspan.judge.get_judge`) or its ``BACKEND:MODEL`` name.
        model: The video model that captions (default ``marlin-2b``); unused when ``caption`` is given.
        caption: A caption of ``video`` already made (``vidspan.caption``), instead of captioning it now.
        progress: ``progress(done, total, message)`` after each step.
        **options: Sampling overrides and model options, as for :func:`vidspan.caption`.

    Raises:
        VideoError: the file cannot be read as a video.
        JudgeUnscoredError: the language model kept answering the final step without usable JSON.
    """
    import vidspan
    from vidspan.answer.ask import language_model
    from vidspan.judge.base import JudgeRequest

    judge, name = language_model(llm)
    path = str(video)
    duration = vidspan.probe(path).duration_seconds
    tick = progress or (lambda *_: None)
    if caption is None:
        tick(0, 1, f"captioning {os.path.basename(path)}")
        caption = vidspan.caption(path, model, **options)
    spans = list(caption.windows) or [Span(0.0, duration)]
    total = len(spans) + 1
    windows = []
    for i, span in enumerate(spans):
        events = caption.between(span)
        lines = "\n".join(f"[{e.span.start:.1f}–{e.span.end:.1f}] {e.description}" for e in events)
        prompt = (
            f"Part {i + 1} of {len(spans)} of the video, {span.start:.1f}–{span.end:.1f} s.\n"
            f"Scene: {caption.scene or 'not described'}\nEvents:\n{lines or '(no events)'}"
        )
        reply = judge.complete(JudgeRequest(prompt=prompt, system=WINDOW_SYSTEM, json_output=False))
        windows.append(WindowSummary(span, " ".join(reply.text.split())))
        tick(i + 1, total, f"summarised part {i + 1} of {len(spans)}")
    parts = "\n".join(f"[{w.span.start:.1f}–{w.span.end:.1f}] {w.text}" for w in windows)
    prompt = f"The video is {duration:.1f} s long. Summaries of its parts, in order:\n{parts}"
    text, chapters = judge.ask_json(
        JudgeRequest(prompt=prompt, system=SUMMARY_SYSTEM), lambda value: _check_summary(value, duration)
    )
    tick(total, total, f"{len(chapters)} chapters")
    return Summary(path, text, tuple(chapters), tuple(windows), caption, duration, name)


def _check_summary(value: Any, duration: float) -> tuple[str, list[Any]]:
    """The reply's summary and chapters, or ``ValueError`` (the judge asks again) when unusable."""
    from vidspan.export import Chapter

    if (
        not isinstance(value, dict)
        or not isinstance(value.get("summary"), str)
        or not value["summary"].strip()
    ):
        raise ValueError('the reply needs a non-empty "summary" string')
    raw = value.get("chapters")
    if not isinstance(raw, list) or not raw:
        raise ValueError('the reply needs a non-empty "chapters" list')
    chapters: list[Any] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("title"), str) or not item["title"].strip():
            raise ValueError('every chapter needs a "title"')
        start = item.get("start")
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start < duration:
            raise ValueError(
                f"chapter start {start!r} is not a time inside the video (0 to {duration:.1f} s)"
            )
        if chapters and start <= chapters[-1].start:
            raise ValueError("chapter starts must increase")
        chapters.append(Chapter(float(start), " ".join(item["title"].split())))
    if chapters[0].start > 0:
        chapters[0] = Chapter(0.0, chapters[0].title)
    return " ".join(value["summary"].split()), chapters
