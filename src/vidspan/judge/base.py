"""What a judge backend is: requests with optional timestamped frames, replies with usage, JSON asks.

A judge is an LLM (text-only or video-aware) that grades captions. Backends speak one provider's wire
format (OpenAI chat completions, Gemini generateContent); everything above them (caching, retries on bad
replies, usage and cost accounting, consensus over k samples) lives here, once.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from vidspan.errors import JudgeError, JudgeUnscoredError
from vidspan.http import Peer
from vidspan.judge.pricing import estimate_cost

if TYPE_CHECKING:
    from vidspan.judge.cache import JudgeCache

logger = logging.getLogger(__name__)

JUDGE = Peer("judge", JudgeError)  # judge requests are idempotent: timeouts and garbled replies are retried

T = TypeVar("T")

MAX_PARSED_REPLY_CHARS = 200_000
_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_VALIDATION_ERRORS = (ValueError, TypeError, KeyError, IndexError)


@dataclass(frozen=True, slots=True)
class Frame:
    """One video frame shown to a video-aware judge: its time in seconds and JPEG bytes."""

    seconds: float
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    """Everything a judge call depends on (and so everything its cache key hashes).

    Attributes:
        prompt: The user text. Frames, if any, are shown before it, each labelled with its time.
        system: Optional system instruction.
        frames: Timestamped frames for video-aware judging.
        json_output: Ask the API for JSON output where it supports it.
        sample: Index of an independent sample for consensus over k runs (part of the cache key, so each
            of the k samples is cached separately).
        retry: Index of a re-ask after an unusable reply (set by :meth:`CachedJudge.ask_json`; part of the
            cache key, so a bad cached reply is not replayed as the answer to every attempt).
    """

    prompt: str
    system: str | None = None
    frames: tuple[Frame, ...] = ()
    json_output: bool = True
    sample: int = 0
    retry: int = 0

    def fingerprint(self) -> str:
        """sha256 over the full input (frames by their bytes)."""
        h = hashlib.sha256()
        head = {"prompt": self.prompt, "system": self.system, "json": self.json_output, "sample": self.sample}
        if self.retry:  # absent at 0, so first-attempt keys do not depend on the field's existence
            head["retry"] = self.retry
        h.update(json.dumps(head, sort_keys=True).encode())
        for frame in self.frames:
            h.update(f"|{frame.seconds:.6f}|".encode())
            h.update(hashlib.sha256(frame.jpeg).digest())
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """One judge answer with its cost."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    served_model: str | None = None  # the snapshot the API says answered, e.g. gpt-4.1-2025-04-14


@dataclass(slots=True)
class Usage:
    """Running totals for a judge: calls, cache hits, tokens, estimated cost."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls_without_price: int = 0
    unscored: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for reports."""
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """A judge's identity and decoding settings, recorded with every run (never the API key)."""

    backend: str
    model: str
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 2048
    base_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What makes two judges give the same answer (part of every cache key)."""
        return {
            "backend": self.backend, "model": self.model, "temperature": self.temperature, "seed": self.seed,
            "max_tokens": self.max_tokens, "base_url": self.base_url, "extra": self.extra,
        }  # fmt: skip


class Judge(ABC):
    """A judge backend. Subclasses implement :meth:`_call` (one HTTP exchange, transport retries included).

    :meth:`complete` adds the disk cache and usage accounting; :meth:`ask_json` adds parsing, validation and
    re-asking when a reply is unusable.
    """

    settings: JudgeSettings
    usage: Usage

    @property
    def name(self) -> str:
        """``backend:model``, e.g. ``openai:gpt-4.1``."""
        return f"{self.settings.backend}:{self.settings.model}"

    @abstractmethod
    def _call(self, request: JudgeRequest) -> JudgeReply:
        """Send one request and return the reply (no cache)."""

    @abstractmethod
    def complete(self, request: JudgeRequest) -> JudgeReply:
        """The reply to ``request``, from the cache when the same full input was asked before."""

    @abstractmethod
    def ask_json(self, request: JudgeRequest, validate: Callable[[Any], T], *, attempts: int = 3) -> T:
        """Ask, parse the reply as JSON (tolerating code fences), validate it; re-ask on failure.

        ``validate`` returns the checked value or raises ``ValueError``. After ``attempts`` unusable
        replies, raise :class:`JudgeUnscoredError` (and count it in ``usage.unscored``).
        """


def check_decoding(model: str, temperature: float, seed: int | None, max_tokens: int) -> None:
    """Raise ``ValueError`` for an invalid model name or decoding setting (shared by the backends)."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"Invalid model: {model!r}. It must be a non-empty model name such as gpt-4.1.")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 <= temperature <= 2  # also rejects NaN
    ):
        raise ValueError(
            f"Invalid temperature: {temperature!r}. It must be a number from 0 to 2 (0 for judges)."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"Invalid seed: {seed!r}. It must be an integer or None.")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"Invalid max_tokens: {max_tokens!r}. It must be a positive integer.")


def request_seed(settings: JudgeSettings, request: JudgeRequest) -> int | None:
    """The API seed for ``request``: the judge's seed, moved by the sample and retry indices.

    Consensus samples and re-asks then differ in their seed as well as their cache key (``None`` when the
    judge sends no seed).
    """
    if settings.seed is None:
        return None
    return settings.seed + request.sample + 1000 * request.retry


def parse_json_reply(text: str) -> Any:
    """The JSON value in a judge reply, tolerating what judges wrap around it.

    Tries, in order: the body of a ```json / ```python code fence (or the whole text), then the same with
    a leading or trailing prose line dropped (the span from the first bracket to its last closing one);
    each with ``json.loads`` and then ``ast.literal_eval`` (for Python dict strings such as
    ``{'events': ['a']}``, which AutoDQ's judges emit).

    Raises:
        ValueError: an empty reply, or nothing in it parses.
    """
    stripped = text.strip() if isinstance(text, str) else ""
    if not stripped:
        raise ValueError("the reply is empty")
    if len(stripped) > MAX_PARSED_REPLY_CHARS:
        raise ValueError(f"the reply is too long to parse ({len(stripped)} characters)")
    candidates = []
    if (fence := _FENCE.search(stripped)) and fence.group(1).strip():
        candidates.append(fence.group(1).strip())
    candidates.append(stripped)
    for candidate in list(candidates):
        for opener, closer in sorted((("{", "}"), ("[", "]")), key=lambda pair: _find(candidate, pair[0])):
            start, end = candidate.find(opener), candidate.rfind(closer)
            if 0 <= start < end and (start, end) != (0, len(candidate) - 1):
                candidates.append(candidate[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    for candidate in candidates:
        try:
            return ast.literal_eval(candidate)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    snippet = stripped if len(stripped) <= 120 else stripped[:120] + "..."
    raise ValueError(f"the reply is neither JSON nor a Python literal: {snippet!r}")


def _find(text: str, char: str) -> int:
    index = text.find(char)
    return index if index >= 0 else len(text)


class CachedJudge(Judge):
    """A judge with the disk cache, usage accounting, JSON asks and consensus; backends add :meth:`_call`.

    Args:
        settings: The judge's identity and decoding settings.
        cache: A :class:`~vidspan.judge.cache.JudgeCache`, a path to one, ``None`` for the default file
            (``$VIDSPAN_USER_PATH/judge-cache.sqlite``), or ``False`` for no cache.

    Usage counts are thread-safe: one judge can serve a pool of worker threads.
    """

    def __init__(
        self, settings: JudgeSettings, *, cache: JudgeCache | str | os.PathLike[str] | None | bool = None
    ):
        from vidspan.judge.cache import JudgeCache

        self.settings = settings
        self.usage = Usage()
        self._usage_lock = threading.Lock()
        if cache is None or cache is True:
            self.cache: JudgeCache | None = JudgeCache()
        elif cache is False:
            self.cache = None
        elif isinstance(cache, JudgeCache):
            self.cache = cache
        elif isinstance(cache, (str, os.PathLike)):
            self.cache = JudgeCache(cache)
        else:
            raise TypeError(
                f"Invalid cache: {cache!r}. It must be a JudgeCache, a path, None (the default file) "
                "or False."
            )

    def complete(self, request: JudgeRequest) -> JudgeReply:
        """The reply to ``request``, from the cache when the same full input was asked before.

        A fresh reply gets its estimated cost (``None`` for a model without a known price) and is cached
        unless its text is empty. Cached replies add to ``usage.cached_calls`` only, not to tokens or cost.

        Raises:
            JudgeError: the backend failed (after its transport retries), or the cache did.
        """
        if not isinstance(request, JudgeRequest):
            raise TypeError(f"Invalid request: {request!r}. It must be a JudgeRequest.")
        from vidspan.judge.cache import cache_key

        key = cache_key(self.settings, request) if self.cache is not None else None
        if key is not None and self.cache is not None and (hit := self.cache.get(key)) is not None:
            with self._usage_lock:
                self.usage.cached_calls += 1
            return hit
        reply = self._call(request)
        cost = reply.cost_usd
        if cost is None:
            cost = estimate_cost(self.settings.model, reply.prompt_tokens, reply.completion_tokens)
        if cost is None and reply.served_model:
            cost = estimate_cost(reply.served_model, reply.prompt_tokens, reply.completion_tokens)
        reply = replace(reply, cost_usd=cost, cached=False)
        with self._usage_lock:
            usage = self.usage
            usage.calls += 1
            usage.prompt_tokens += reply.prompt_tokens or 0
            usage.completion_tokens += reply.completion_tokens or 0
            if cost is None:
                usage.calls_without_price += 1
            else:
                usage.cost_usd += cost
        if key is not None and self.cache is not None and reply.text.strip():
            self.cache.put(key, reply)
        return reply

    def ask_json(self, request: JudgeRequest, validate: Callable[[Any], T], *, attempts: int = 3) -> T:
        """Ask, parse the reply with :func:`parse_json_reply`, validate it; re-ask on failure.

        Attempt ``i`` asks ``request`` with ``retry`` moved on by ``i``, a new cache key and API seed, so a
        bad cached reply is never the answer to every attempt. ``validate`` returns the checked value or
        raises ``ValueError`` (``TypeError``, ``KeyError`` and ``IndexError`` count as an unusable reply
        too). Transport failures are not retried here; they propagate as :class:`JudgeError`.

        Raises:
            JudgeUnscoredError: ``attempts`` unusable replies (counted in ``usage.unscored``; the sample is
                unscored, never a zero). ``replies`` holds every reply text.
            JudgeError: the backend failed.
        """
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"Invalid attempts: {attempts!r}. It must be a positive integer.")
        replies: list[str] = []
        problem = ""
        for attempt in range(attempts):
            reply = self.complete(replace(request, retry=request.retry + attempt))
            replies.append(reply.text)
            try:
                return validate(parse_json_reply(reply.text))
            except _VALIDATION_ERRORS as exc:
                problem = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
                logger.info(
                    "%s: unusable reply (attempt %d of %d%s): %s",
                    self.name, attempt + 1, attempts, ", cached" if reply.cached else "", problem,
                )  # fmt: skip
        with self._usage_lock:
            self.usage.unscored += 1
        message = f"The judge {self.name} gave no usable reply in {attempts} attempts; the last: {problem}."
        logger.info("%s", message)
        raise JudgeUnscoredError(message, tuple(replies))

    def ask_json_k(
        self, request: JudgeRequest, validate: Callable[[Any], T], k: int, *, attempts: int = 3
    ) -> list[T | JudgeUnscoredError]:
        """``k`` independent :meth:`ask_json` answers, for consensus (samples ``request.sample + 0..k-1``).

        An unscored sample is returned as its :class:`JudgeUnscoredError` in its place, so the caller can
        count disagreement and failures; transport failures still raise.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Invalid k: {k!r}. It must be a positive integer.")
        answers: list[T | JudgeUnscoredError] = []
        for index in range(k):
            try:
                answers.append(
                    self.ask_json(
                        replace(request, sample=request.sample + index), validate, attempts=attempts
                    )
                )
            except JudgeUnscoredError as exc:
                answers.append(exc)
        return answers


class HttpJudge(CachedJudge):
    """A :class:`CachedJudge` that talks to an HTTP API: the decoding and transport settings all share."""

    def __init__(
        self,
        backend: str,
        model: str,
        *,
        base_url: str,
        api_key: str | None,
        temperature: float,
        seed: int | None,
        max_tokens: int,
        timeout_seconds: float,
        max_retries: int,
        backoff_seconds: float,
        extra: dict[str, Any],
        cache: Any,
    ):
        from vidspan.http import check_transport_options, parse_base_url

        check_decoding(model, temperature, seed, max_tokens)
        check_transport_options(timeout_seconds, max_retries, backoff_seconds)
        settings = JudgeSettings(
            backend=backend, model=model.strip(), temperature=float(temperature), seed=seed,
            max_tokens=max_tokens, base_url=parse_base_url(base_url)[0], extra=extra,
        )  # fmt: skip
        super().__init__(settings, cache=cache)
        self.timeout_seconds = float(timeout_seconds)
        self.max_retries = max_retries
        self.backoff_seconds = float(backoff_seconds)
        self._api_key = api_key
