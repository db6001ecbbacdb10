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


class BenchmarkFormatError(VidspanError):
    """An annotation file is not in the format its loader expects; the message names the file and where."""

class EvalFileNotFoundError(VidspanError, FileNotFoundError):
    """An annotation file, a video folder or a prediction file does not exist."""

class UnknownBenchmarkError(VidspanError, LookupError):
    """A benchmark name that :data:`BENCHMARKS` does not know."""

class PredictionFormatError(VidspanError):
    """A prediction file is not in the format its reader expects; the message names the file and where."""


class RunError(VidspanError):
    """A run directory cannot be used: another run or other settings in it, broken files, another writer."""


class RunFormatError(RunError):
    """A run directory or one of its files is missing or not in the expected format; ``path`` names it."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot use run {self.path}: {reason}")


class IndexNotFoundError(VidspanError, FileNotFoundError):
    """No index file where one was expected."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        super().__init__(f"No index at {self.path}: run 'vidspan index PATH' first.")


class EmbedderMismatchError(VidspanError):
    """A library's vectors were made by another embedder than the one asked to search or extend it."""


class PostgresError(VidspanError):
    """A PostgreSQL index cannot be used: bad URL, unreachable server, missing pgvector extension."""


class RequestError(VidspanError):
    """A request the server refuses; answered with OpenAI's error shape."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.status, self.param, self.code = message, status, param, code


class ExportSourceError(VidspanError):
    """An export source cannot be used: a caption file that is missing or malformed, or a video that is not
    in the library."""


def error_line(exc: BaseException) -> str:
    """The one line a user sees for ``exc`` (the CLI's error line, an MCP tool error): vidspan's own
    message, the text of a bad-value or file error, else the type and text with a ``--debug`` hint."""
    if isinstance(exc, VidspanError):
        message = str(exc)
    elif isinstance(exc, (ValueError, TypeError, OSError)):
        message = str(exc) or type(exc).__name__
    else:
        message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return " ".join(message.split())
