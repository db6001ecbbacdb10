"""A judge behind an OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, SGLang, DeepSeek, ...).

Wire format (one POST to ``{base_url}/chat/completions``)::

    {"model": MODEL,
     "messages": [
         {"role": "system", "content": SYSTEM},
         {"role": "user", "content": [
             {"type": "text", "text": "0.0 seconds:"},
             {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}},
             ...,
             {"type": "text", "text": PROMPT}]}],
     "temperature": 0.0, "seed": 0, "max_tokens": 2048, "response_format": {"type": "json_object"}}

Without frames the user content is the prompt string itself (text-only endpoints such as DeepSeek's refuse
content parts). The reply text is ``choices[0].message.content``; tokens come from ``usage``.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from typing import Any

from vidspan.errors import JudgeError
from vidspan.http import post_json
from vidspan.judge.base import JUDGE, HttpJudge, JudgeReply, JudgeRequest, request_seed
from vidspan.judge.cache import JudgeCache
from vidspan.models.openai import wire

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_OFFICIAL_HOSTS = frozenset({"api.openai.com"})


class OpenAIJudge(HttpJudge):
    """A judge speaking the OpenAI chat-completions wire format.

    Args:
        model: The model name the endpoint knows, e.g. ``gpt-4.1-2025-04-14`` (pin a snapshot).
        base_url: The API root; default ``$VIDSPAN_JUDGE_BASE_URL``, else ``https://api.openai.com/v1``.
            Point it at a vLLM server (``http://127.0.0.1:8000/v1``) for a local judge.
        api_key: Bearer token; default ``$VIDSPAN_JUDGE_API_KEY``, else ``$OPENAI_API_KEY``. Required by
            api.openai.com (checked when a request is sent, so cached replies need no key).
        temperature: Sampling temperature (0 for reproducible judging).
        seed: Base seed; each consensus sample and re-ask moves it (``None`` sends none).
        max_tokens: Reply length limit.
        timeout_seconds: Per-attempt limit (timeouts are retried, see :mod:`vidspan.http`).
        max_retries: Repeats after 408/429/5xx, resets and timeouts.
        backoff_seconds: First wait between attempts; it doubles each time. ``Retry-After`` wins when sent.
        extra_body: Fields merged into every request (a ``None`` value removes one), e.g.
            ``{"max_tokens": None, "max_completion_tokens": 2048}`` for models that want that field.
            Part of the judge's identity and so of its cache keys.
        cache: A :class:`JudgeCache`, a path, ``None`` (the default file) or ``False`` (no cache).

    Raises:
        ValueError: an invalid argument.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int = 2048,
        timeout_seconds: float = 120.0,
        max_retries: int = 5,
        backoff_seconds: float = 2.0,
        extra_body: dict[str, Any] | None = None,
        cache: JudgeCache | str | os.PathLike[str] | None | bool = None,
    ):
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ValueError(f"Invalid extra_body: {extra_body!r}. It must be a dict of request fields.")
        base_url = base_url or os.environ.get("VIDSPAN_JUDGE_BASE_URL") or DEFAULT_BASE_URL
        super().__init__(
            "openai", model, base_url=base_url,
            api_key=api_key or os.environ.get("VIDSPAN_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY"),
            temperature=temperature, seed=seed, max_tokens=max_tokens, timeout_seconds=timeout_seconds,
            max_retries=max_retries, backoff_seconds=backoff_seconds,
            extra={"extra_body": extra_body} if extra_body else {}, cache=cache,
        )  # fmt: skip
        self.extra_body = dict(extra_body or {})

    def build_request(self, request: JudgeRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (without sending it)."""
        settings = self.settings
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        if request.frames:
            parts = wire.timestamped_image_parts((frame.seconds, frame.jpeg) for frame in request.frames)
            parts.append({"type": "text", "text": request.prompt})
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {
            "model": settings.model,
            "messages": messages,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
        }
        seed = request_seed(settings, request)
        if seed is not None:
            body["seed"] = seed
        if request.json_output:
            body["response_format"] = {"type": "json_object"}
        for key, value in self.extra_body.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _call(self, request: JudgeRequest) -> JudgeReply:
        base_url = self.settings.base_url or DEFAULT_BASE_URL
        headers = {}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif urllib.parse.urlsplit(base_url).hostname in _OFFICIAL_HOSTS:
            raise JudgeError(
                f"The judge {self.name} needs an OpenAI API key. Set OPENAI_API_KEY (or "
                "VIDSPAN_JUDGE_API_KEY), or pass api_key."
            )
        reply = post_json(
            base_url + "/chat/completions",
            self.build_request(request),
            peer=JUDGE,
            headers=headers,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
        )
        return self._read_reply(reply)

    def _read_reply(self, reply: dict[str, Any]) -> JudgeReply:
        read = wire.read_reply(reply)
        if not read.text.strip():
            detail = f"refusal {read.refusal!r}" if read.refusal else f"finish_reason {read.finish_reason!r}"
            logger.warning("%s sent an empty reply (%s); it counts as unusable", self.name, detail)
        elif read.finish_reason == "length":
            logger.warning("%s: reply cut at max_tokens=%d", self.name, self.settings.max_tokens)
        return JudgeReply(
            text=read.text,
            prompt_tokens=read.prompt_tokens,
            completion_tokens=read.completion_tokens,
            served_model=read.served_model,
        )
