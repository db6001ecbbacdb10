"""Answers for people and agents: questions answered with cited moments (:func:`ask`), and summaries of
long videos with chapters (:func:`summarize`)."""

from vidspan.answer.ask import NOT_SUPPORTED, Answer, answer_question, ask
from vidspan.answer.cite import Citation, Evidence, check_citations, find_citations

__all__ = [
    "NOT_SUPPORTED",
    "Answer",
    "Citation",
    "Evidence",
    "answer_question",
    "ask",
    "check_citations",
    "find_citations",
]
