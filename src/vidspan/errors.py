"""Every exception vidspan raises on purpose: one :class:`VidspanError` root, one module.

Bad arguments raise built-in ``ValueError`` / ``TypeError`` at the public boundary. Environmental and domain
failures raise a :class:`VidspanError` subclass, whose message is one readable sentence (the CLI prints it
as one line).
"""

from __future__ import annotations

from pathlib import Path


class VidspanError(Exception):
    """Base class of every error vidspan raises on purpose."""


class VideoError(VidspanError):
    """A video file cannot be used: missing, empty, truncated, not a video, or without a video stream."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot read video {self.path}: {reason}")


class UnknownModelError(VidspanError, LookupError):
    """A model name that the registry does not know."""


class MissingDependencyError(VidspanError, ImportError):
    """An optional dependency is not installed; the message says which extra provides it."""


class ModelUnavailableError(VidspanError):
    """The weights of a model cannot be found locally and cannot be downloaded."""


class ModelError(VidspanError):
    """A model backend failed while loading or generating."""


class BackendConnectionError(ModelError):
    """An HTTP model server could not be reached, timed out, or answered with an error."""


class ParseError(VidspanError):
    """Strict parsing found format violations; ``raw`` holds the model text, ``violations`` the findings."""

    def __init__(self, message: str, raw: str, violations: tuple[str, ...] = ()):
        self.raw = raw
        self.violations = violations
        super().__init__(message)


class JudgeError(VidspanError):
    """A judge backend failed (connection, HTTP error after retries, malformed transport reply)."""


class JudgeUnscoredError(JudgeError):
    """The judge's replies could not be parsed or validated after every attempt.

    The sample is recorded as unscored (never as a zero score); ``replies`` keeps what the judge said.
    """

    def __init__(self, message: str, replies: tuple[str, ...] = ()):
        self.replies = replies
        super().__init__(message)


class JudgeCacheError(JudgeError):
    """The judge cache file cannot be opened, read or written."""
