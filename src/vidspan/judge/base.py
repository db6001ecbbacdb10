"""What a judge backend is: requests with optional timestamped frames, replies with usage, JSON asks.

A judge is an LLM (text-only or video-aware) that grades captions. Backends speak one provider's wire
format (OpenAI chat completions, Gemini generateContent); everything above them (caching, retries on bad
replies, usage and cost accounting, consensus over k samples) lives here, once.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vidspan.errors import VidspanError

T = TypeVar("T")


class JudgeError(VidspanError):
    """A judge backend failed (connection, HTTP error after retries, malformed transport reply)."""


class JudgeUnscoredError(JudgeError):
    """The judge's replies could not be parsed or validated after every attempt.

    The sample is recorded as unscored (never as a zero score); ``replies`` keeps what the judge said.
    """

    def __init__(self, message: str, replies: tuple[str, ...] = ()):
        self.replies = replies
        super().__init__(message)


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
    """

    prompt: str
    system: str | None = None
    frames: tuple[Frame, ...] = ()
    json_output: bool = True
    sample: int = 0

    def fingerprint(self) -> str:
        """sha256 over the full input (frames by their bytes)."""
        h = hashlib.sha256()
        head = {"prompt": self.prompt, "system": self.system, "json": self.json_output, "sample": self.sample}
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
