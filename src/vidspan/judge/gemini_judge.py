"""A judge behind the Gemini API's ``generateContent`` endpoint.

Wire format (one POST to ``{base_url}/models/{model}:generateContent``, key in the ``x-goog-api-key``
header)::

    {"systemInstruction": {"parts": [{"text": SYSTEM}]},
     "contents": [{"role": "user", "parts": [
         {"text": "0.0 seconds:"}, {"inlineData": {"mimeType": "image/jpeg", "data": BASE64}},
         ...,
         {"text": PROMPT}]}],
     "generationConfig": {"temperature": 0.0, "maxOutputTokens": 2048, "seed": 0,
                          "responseMimeType": "application/json"}}

The reply text is the concatenated ``candidates[0].content.parts[*].text`` (thought parts skipped); tokens
come from ``usageMetadata`` (``promptTokenCount``; ``candidatesTokenCount`` plus ``thoughtsTokenCount``,
since thinking is billed as output). A blocked prompt (``promptFeedback.blockReason``) or a candidate
stopped for safety without text is an unusable reply: empty text, with the reason logged.
"""

from __future__ import annotations

import base64
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

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
_OFFICIAL_HOSTS = frozenset({"generativelanguage.googleapis.com"})
_BLOCKED_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE", "OTHER"}
)


class GeminiJudge(HttpJudge):
    """A judge speaking the Gemini ``generateContent`` wire format.

    Args:
        model: The model name, e.g. ``gemini-2.5-flash`` (a ``models/`` prefix is dropped).
        base_url: The API root; default ``https://generativelanguage.googleapis.com/v1beta``.
        api_key: API key; default ``$GEMINI_API_KEY``, else ``$GOOGLE_API_KEY``. Required by Google's
            endpoint (checked when a request is sent, so cached replies need no key).
        temperature: Sampling temperature (0 for reproducible judging).
        seed: Base seed; each consensus sample and re-ask moves it (``None`` sends none).
        max_tokens: ``maxOutputTokens`` (on thinking models it includes the thinking tokens).
        timeout_seconds: Per-attempt limit (timeouts are retried, see :mod:`vidspan.http`).
        max_retries: Repeats after 408/429/5xx, resets and timeouts.
        backoff_seconds: First wait between attempts; it doubles each time. ``Retry-After`` wins when sent.
        generation_config: Fields merged into ``generationConfig`` (a ``None`` value removes one), e.g.
            ``{"thinkingConfig": {"thinkingBudget": 0}}``. Part of the judge's identity and cache keys.
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
        generation_config: dict[str, Any] | None = None,
        cache: JudgeCache | str | os.PathLike[str] | None | bool = None,
    ):
        if generation_config is not None and not isinstance(generation_config, dict):
            raise ValueError(
                f"Invalid generation_config: {generation_config!r}. It must be a dict of "
                "generationConfig fields."
            )
        super().__init__(
            "gemini", model.strip().removeprefix("models/"), base_url=base_url or DEFAULT_BASE_URL,
            api_key=api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY"),
            temperature=temperature, seed=seed, max_tokens=max_tokens, timeout_seconds=timeout_seconds,
            max_retries=max_retries, backoff_seconds=backoff_seconds,
            extra={"generation_config": generation_config} if generation_config else {}, cache=cache,
        )  # fmt: skip
        self.generation_config = dict(generation_config or {})

    def build_request(self, request: JudgeRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (without sending it)."""
        settings = self.settings
        parts: list[dict[str, Any]] = []
        for frame in request.frames:
            parts.append({"text": wire.frame_label(frame.seconds)})
            data = base64.b64encode(frame.jpeg).decode("ascii")
            parts.append({"inlineData": {"mimeType": "image/jpeg", "data": data}})
        parts.append({"text": request.prompt})
        config: dict[str, Any] = {"temperature": settings.temperature, "maxOutputTokens": settings.max_tokens}
        seed = request_seed(settings, request)
        if seed is not None:
            config["seed"] = seed
        if request.json_output:
            config["responseMimeType"] = "application/json"
        for key, value in self.generation_config.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        body: dict[str, Any] = {}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        body["contents"] = [{"role": "user", "parts": parts}]
        body["generationConfig"] = config
        return body

    def _call(self, request: JudgeRequest) -> JudgeReply:
        base_url = self.settings.base_url or DEFAULT_BASE_URL
        headers = {}
        if self._api_key:
            headers["x-goog-api-key"] = self._api_key
        elif urllib.parse.urlsplit(base_url).hostname in _OFFICIAL_HOSTS:
            raise JudgeError(
                f"The judge {self.name} needs a Gemini API key. Set GEMINI_API_KEY (or GOOGLE_API_KEY), "
                "or pass api_key."
            )
        model = urllib.parse.quote(self.settings.model, safe="-._")
        reply = post_json(
            f"{base_url}/models/{model}:generateContent",
            self.build_request(request),
            peer=JUDGE,
            headers=headers,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
        )
        return self._read_reply(reply)

    def _read_reply(self, reply: dict[str, Any]) -> JudgeReply:
        candidate = _first_object(reply.get("candidates"))
        parts = _object(candidate.get("content")).get("parts")
        parts = parts if isinstance(parts, list) else []
        text = "".join(
            p["text"]
            for p in parts
            if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
        )
        reason = candidate.get("finishReason")
        feedback = _object(reply.get("promptFeedback"))
        if feedback.get("blockReason"):
            logger.warning(
                "%s blocked the prompt (%s); the reply is unusable", self.name, feedback["blockReason"]
            )
            text = ""
        elif not text.strip():
            why = "a blocked" if reason in _BLOCKED_FINISH_REASONS else "an empty"
            logger.warning(
                "%s sent %s reply (finishReason %r); it counts as unusable", self.name, why, reason
            )
        elif reason == "MAX_TOKENS":
            logger.warning("%s: reply cut at maxOutputTokens=%d", self.name, self.settings.max_tokens)
        usage = _object(reply.get("usageMetadata"))
        prompt_tokens = _int_or_none(usage.get("promptTokenCount"))
        output_tokens = _int_or_none(usage.get("candidatesTokenCount"))
        thought_tokens = _int_or_none(usage.get("thoughtsTokenCount"))
        if output_tokens is None and prompt_tokens is not None:
            output_tokens = 0  # a blocked prompt has no candidates but still a prompt count
        if output_tokens is not None and thought_tokens:
            output_tokens += thought_tokens
        served = reply.get("modelVersion")
        return JudgeReply(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=output_tokens,
            served_model=served if isinstance(served, str) and served else None,
        )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_object(value: Any) -> dict[str, Any]:
    return _object(value[0]) if isinstance(value, list) and value else {}


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
