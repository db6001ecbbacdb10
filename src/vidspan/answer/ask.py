"""``ask``: a question about a video or a library, answered by a language model with cited moments.

1. **Retrieve** the moments that may answer it: the library's best search hits, or the events of a fresh
   caption of the video ranked by meaning.
2. **Ground** the question with ``find`` (in the video, or around the best hits) so the answer can cite
   where it happens, not only where a caption happened to say something close.
3. **Answer** with the language model (any OpenAI-compatible server, Gemini, or a local server), told to
   cite every claim as ``[start–end]`` and to say so when the evidence does not answer.
4. **Check** every citation (:mod:`vidspan.answer.cite`): it must lie inside the video and overlap a
   retrieved moment. An answer with no supported citation says it is not supported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidspan.answer.cite import Citation, Evidence, check_citations
from vidspan.types import Span
from vidspan.windows import ModelLike

__all__ = ["Answer", "answer_question", "ask"]

SYSTEM = (
    "You answer questions about videos using only the evidence given: timed descriptions of moments. "
    "Cite every claim with the moment's time span in seconds in square brackets, as [12.0–18.5]; when "
    "the evidence comes from several videos, put the video's file name first, as [lobby.mp4 12.0–18.5]. "
    "Cite only spans from the evidence. If the evidence does not answer the question, say "
    '"The evidence does not say." and cite nothing.'
)
NOT_SUPPORTED = "The retrieved moments do not support an answer to this question."
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer with the moments it cites and the evidence it was given.

    Attributes:
        question: The question asked.
        text: The model's answer, or :data:`NOT_SUPPORTED` when no citation of it holds.
        supported: True when at least one citation points at a real, retrieved moment.
        citations: Every citation in the model's text, each with its check.
        evidence: The retrieved and grounded moments the model was shown.
        raw: The model's text as written.
        llm: The language model that answered.
    """

    question: str
    text: str
    supported: bool
    citations: tuple[Citation, ...]
    evidence: tuple[Evidence, ...]
    raw: str
    llm: str

    @property
    def rejected(self) -> tuple[Citation, ...]:
        """The citations that do not hold."""
        return tuple(c for c in self.citations if not c.ok)

    def to_dict(self) -> dict[str, Any]:
        """``{question, answer, supported, citations, evidence, raw, llm}`` for JSON."""
        return {
            "question": self.question,
            "answer": self.text,
            "supported": self.supported,
            "citations": [c.to_dict() for c in self.citations],
            "evidence": [e.to_dict() for e in self.evidence],
            "raw": self.raw,
            "llm": self.llm,
        }


def ask(
    question: str,
    *,
    llm: Any,
    video: str | os.PathLike[str] | None = None,
    db: Any = None,
    model: ModelLike | None = None,
    top_k: int = 8,
    ground: bool = True,
    ground_top: int = 3,
    progress: Progress | None = None,
    **options: Any,
) -> Answer:
    """Answer ``question`` about ``video`` (captioned now) or the library ``db`` (searched), with citations.

    Args:
        question: What to ask.
        llm: The language model: a judge (:func:`vidspan.judge.get_judge`, e.g. ``"openai:gpt-4.1"``
            with ``base_url`` for a local server) or its ``BACKEND:MODEL`` name.
        video: A video file; its caption's events are the evidence.
        db: A library (path, ``postgresql://`` URL or open index); its search hits are the evidence. With
            ``video`` too, only that video's hits are used.
        model: The video model that captions and grounds (default ``marlin-2b``).
        top_k: How many retrieved moments the model is shown.
        ground: Also ground the question with ``find`` (in the video, or around the best ``ground_top``
            hits) and show those spans.
        progress: ``progress(done, total, message)`` as the steps finish.
        **options: Sampling overrides and model options, as for :func:`vidspan.caption`.

    Raises:
        ValueError: neither ``video`` nor ``db``, or an empty question.
        VideoError, PostgresError, BackendConnectionError: a source or the model cannot be reached.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("Invalid question: it must be a non-empty string.")
    if video is None and db is None:
        raise ValueError("Nothing to ask about: give a video or a library (db).")
    if top_k < 1:
        raise ValueError(f"Invalid top_k: {top_k}. It must be >= 1.")
    tick = progress or (lambda *_: None)
    if db is not None:
        evidence, durations = _from_library(
            question, db, video, model, top_k, ground, ground_top, options, tick
        )
    else:
        evidence, durations = _from_video(question, video, model, top_k, ground, options, tick)
    tick(2, 3, f"asking the language model with {len(evidence)} moments")
    answer = answer_question(question, evidence, durations, llm=llm)
    tick(3, 3, "answered" if answer.supported else "no supported answer")
    return answer


def answer_question(
    question: str, evidence: Sequence[Evidence], durations: dict[str, float | None], *, llm: Any
) -> Answer:
    """Step 3 and 4 alone: the language model's answer from ``evidence``, its citations checked."""
    from vidspan.judge.base import JudgeRequest

    judge, name = language_model(llm)
    several = len({e.video for e in evidence}) > 1
    lines = []
    for i, e in enumerate(evidence):
        where = os.path.basename(e.video) + " " if several else ""
        lines.append(f"E{i + 1}. {where}[{e.span.start:.1f}–{e.span.end:.1f}]: {e.text}")
    prompt = f"Question: {question.strip()}\n\nEvidence:\n" + "\n".join(lines)
    if not evidence:
        prompt += "(none: nothing was retrieved)"
    reply = judge.complete(JudgeRequest(prompt=prompt, system=SYSTEM, json_output=False))
    raw = reply.text.strip()
    citations = tuple(check_citations(raw, evidence, durations))
    supported = any(c.ok for c in citations)
    return Answer(
        question.strip(),
        raw if supported else NOT_SUPPORTED,
        supported,
        citations,
        tuple(evidence),
        raw,
        str(name),
    )


def _from_video(
    question: str, video: Any, model: Any, top_k: int, ground: bool, options: dict[str, Any], tick: Progress
) -> tuple[list[Evidence], dict[str, float | None]]:
    import vidspan

    path = str(video)
    tick(0, 3, f"captioning {os.path.basename(path)}")
    caption = vidspan.caption(path, model, **options)
    duration = vidspan.probe(path).duration_seconds
    events = list(caption.events)
    order = _rank([e.description for e in events], question)[:top_k]
    evidence = [Evidence(path, events[i].span, events[i].description, "caption", score) for i, score in order]
    if ground:
        tick(1, 3, "grounding the question")
        hit = vidspan.find(path, question, model, **options)
        if hit.span is not None:
            evidence.append(
                Evidence(
                    path,
                    hit.span,
                    f"where the question's moment happens: {question.strip()}",
                    "find",
                    hit.score,
                )
            )
    return sorted(evidence, key=lambda e: (e.span.start, e.span.end)), {path: duration}


def _from_library(
    question: str,
    db: Any,
    video: Any,
    model: Any,
    top_k: int,
    ground: bool,
    ground_top: int,
    options: dict[str, Any],
    tick: Progress,
) -> tuple[list[Evidence], dict[str, float | None]]:
    from vidspan.library.open import open_index

    tick(0, 3, "searching the library")
    owned = isinstance(db, (str, os.PathLike))
    index = open_index(db, create=False) if owned else db
    try:
        glob = os.path.abspath(video) if video is not None else None
        hits = index.search(question, limit=top_k, path_glob=glob)
        # only the hits' videos: a question must not read every video row of a large library
        durations: dict[str, float | None] = {}
        for hit in hits:
            if hit.video not in durations:
                found = index.video(hit.video_id)
                durations[hit.video] = found.duration_seconds if found is not None else None
    finally:
        if owned:
            index.close()
    evidence = [Evidence(h.video, Span(h.start, h.end), h.caption, "index", h.score) for h in hits]
    if ground and hits and ground_top > 0:
        from vidspan.library.refine import ground_hits

        tick(1, 3, f"grounding the question around the best {min(ground_top, len(hits))} hits")
        for hit in ground_hits(hits, question, model, top=ground_top, **options)[:ground_top]:
            grounding = hit.grounding or {}
            if tuple(grounding.get("caption_span", ())) != (hit.start, hit.end):  # the model's span parsed
                text = f"where the question's moment happens: {question.strip()}"
                evidence.append(
                    Evidence(hit.video, Span(hit.start, hit.end), text, "find", grounding.get("score"))
                )
    return evidence, dict(durations)


def _rank(texts: Sequence[str], query: str) -> list[tuple[int, float]]:
    """``(index, cosine)`` of ``texts`` by meaning to ``query``, best first (the library's embedder)."""
    if not texts:
        return []
    import numpy as np

    from vidspan.library.embed import default_embedder

    vectors = default_embedder().embed([query, *texts])
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order]


def language_model(llm: Any) -> tuple[Any, str]:
    """The judge that answers (built from its ``BACKEND:MODEL`` name when given one) and the model name
    an answer records."""
    from vidspan.judge import get_judge

    judge = get_judge(llm) if isinstance(llm, str) else llm
    name = getattr(getattr(judge, "settings", None), "model", None) or type(judge).__name__
    return judge, str(name)
