"""LLM judges for caption evaluation: OpenAI-compatible and Gemini backends, a reply cache, cost estimates.

Example:
    >>> judge = get_judge("openai:gpt-4.1-2025-04-14")  # doctest: +SKIP
    >>> judge.ask_json(JudgeRequest("Reply in JSON: {\"ok\": true}"), validate=dict)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
from typing import Any

from vidspan.errors import UnknownModelError
from vidspan.judge.base import (
    CachedJudge,
    Frame,
    Judge,
    JudgeError,
    JudgeReply,
    JudgeRequest,
    JudgeSettings,
    JudgeUnscoredError,
    Usage,
    parse_json_reply,
)
from vidspan.judge.cache import JudgeCache, JudgeCacheError, cache_key, default_cache_path
from vidspan.judge.gemini_judge import GeminiJudge
from vidspan.judge.openai_judge import OpenAIJudge
from vidspan.judge.pricing import PRICES_AS_OF, estimate_cost

__all__ = [
    "PRICES_AS_OF",
    "CachedJudge",
    "Frame",
    "GeminiJudge",
    "Judge",
    "JudgeCache",
    "JudgeCacheError",
    "JudgeError",
    "JudgeReply",
    "JudgeRequest",
    "JudgeSettings",
    "JudgeUnscoredError",
    "OpenAIJudge",
    "Usage",
    "cache_key",
    "default_cache_path",
    "estimate_cost",
    "get_judge",
    "judge_backends",
    "parse_json_reply",
]


def judge_backends() -> dict[str, Any]:
    """Judge backend name → factory, from the plugin registry (built-ins: ``openai``, ``gemini``)."""
    from vidspan.models.registry import list_judges

    return list_judges()


def get_judge(spec: str, **options: Any) -> Judge:
    """The judge named ``BACKEND:MODEL``, built with ``options`` (the backend's keyword arguments).

    ``openai:MODEL`` speaks the OpenAI chat-completions format to api.openai.com or to any compatible
    endpoint given as ``base_url`` (vLLM, SGLang, DeepSeek); ``gemini:MODEL`` speaks Gemini's
    ``generateContent``.

    Example:
        ``get_judge("openai:Qwen/Qwen2.5-72B-Instruct", base_url="http://127.0.0.1:8000/v1")``

    Raises:
        ValueError: ``spec`` is not ``BACKEND:MODEL``, or an option is invalid.
        UnknownModelError: an unknown backend.
    """
    if not isinstance(spec, str) or ":" not in spec:
        hint = f" Did you mean: openai:{spec.strip()}?" if isinstance(spec, str) and spec.strip() else ""
        raise ValueError(
            f"Invalid judge: {spec!r}. It must be BACKEND:MODEL, e.g. openai:gpt-4.1 or "
            f"gemini:gemini-2.5-flash.{hint}"
        )
    backend, model = spec.split(":", 1)
    key = backend.strip().lower()
    backends = judge_backends()
    if key not in backends:
        close = difflib.get_close_matches(key, list(backends), n=2, cutoff=0.4)
        hint = f" Did you mean: {', '.join(f'{c}:{model}' for c in close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown judge backend {backend!r} in {spec!r}.{hint} Judge backends: {', '.join(backends)}."
        )
    return backends[key](model, **options)
