"""One JSON POST to a judge API, with retries: the transport under every judge backend (stdlib only).

What is retried, with exponential backoff (``backoff_seconds * 2**attempt``, or the server's
``Retry-After`` / ``retry-after-ms`` when sent, capped at ``max_retry_after_seconds``):

- HTTP 408, 429 and every 5xx reply;
- a connection reset or closed mid-request;
- a timeout. Unlike the model client, judge calls retry timeouts too: a judge request is idempotent and
  cheap to repeat, and a slow provider usually recovers. The worst case is therefore about
  ``(max_retries + 1) * timeout_seconds`` plus the waits;
- a 2xx reply whose body is not a JSON object (a truncated or garbled proxy answer).

Everything else fails at once with :class:`JudgeError`: another 4xx (with the server's own error message),
a redirect, connection refused, an unknown host, a TLS error.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import socket
import ssl
import time
import urllib.parse
from typing import Any

from vidspan.http_replies import body_snippet, retry_after_seconds
from vidspan.judge.base import JudgeError

logger = logging.getLogger(__name__)

DEFAULT_MAX_RETRY_AFTER_SECONDS = 60.0
_RETRY_STATUSES = frozenset({408, 429})
_READ_CHUNK_BYTES = 1 << 16


class _Retryable(Exception):
    """One failed attempt worth repeating; ``what`` completes "The judge at URL ..."."""

    def __init__(self, what: str, delay_seconds: float | None = None):
        super().__init__(what)
        self.what = what
        self.delay_seconds = delay_seconds


def check_transport_options(timeout_seconds: float, max_retries: int, backoff_seconds: float) -> None:
    """Raise ``ValueError`` for an invalid timeout, retry count or backoff (shared by the backends)."""
    if not _is_number(timeout_seconds) or not timeout_seconds > 0:
        raise ValueError(f"Invalid timeout_seconds: {timeout_seconds!r}. It must be a positive number.")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"Invalid max_retries: {max_retries!r}. It must be an integer >= 0.")
    if not _is_number(backoff_seconds) or backoff_seconds < 0:
        raise ValueError(f"Invalid backoff_seconds: {backoff_seconds!r}. It must be a number >= 0.")


def check_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash; ``ValueError`` unless it is an http(s) URL with a host."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(f"Invalid base_url: {base_url!r}. It must be an http(s) URL.")
    cleaned = base_url.strip().rstrip("/")
    url = urllib.parse.urlsplit(cleaned)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(
            f"Invalid base_url: {base_url!r}. It must be an http(s) URL such as http://127.0.0.1:8000/v1."
        )
    if url.username is not None or url.query or url.fragment:
        raise ValueError(
            f"Invalid base_url: {base_url!r}. It must not hold credentials, a query or a fragment; "
            "pass the key as api_key."
        )
    try:
        url.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError(
            f"Invalid base_url: {base_url!r}. Its port is not a number from 0 to 65535."
        ) from exc
    return cleaned


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout_seconds: float = 120.0,
    max_retries: int = 5,
    backoff_seconds: float = 2.0,
    max_retry_after_seconds: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` as JSON to ``url`` and return ``(status, reply)`` for a 2xx JSON-object reply.

    Args:
        url: The full endpoint URL (no credentials in it; error messages quote it).
        payload: The JSON body.
        headers: Extra headers (e.g. ``Authorization``, ``x-goog-api-key``).
        timeout_seconds: Limit for connecting and for reading the whole reply, per attempt.
        max_retries: Repeats after a retryable failure (see the module docstring).
        backoff_seconds: First wait between attempts; it doubles each time.
        max_retry_after_seconds: Cap on any one wait, a server's ``Retry-After`` included.

    Raises:
        JudgeError: a non-retryable failure, or a retryable one that outlasted the retries.
    """
    check_transport_options(timeout_seconds, max_retries, backoff_seconds)
    where = _display_url(url)
    body = json.dumps(payload).encode("utf-8")
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "vidspan"}
    all_headers.update(headers or {})
    attempts = max_retries + 1
    for attempt in range(attempts):
        try:
            return _post_once(url, where, body, all_headers, float(timeout_seconds))
        except _Retryable as failure:
            if attempt + 1 >= attempts:
                tries = f" ({attempts} attempts)" if attempts > 1 else ""
                raise JudgeError(f"The judge at {where} {_sentence(failure.what + tries)}") from (
                    failure.__cause__
                )
            delay = failure.delay_seconds
            if delay is None:
                delay = backoff_seconds * 2**attempt
            delay = min(max(0.0, delay), max_retry_after_seconds)
            logger.info(
                "the judge at %s %s; retrying in %.2f s (attempt %d of %d)",
                where, failure.what, delay, attempt + 2, attempts,
            )  # fmt: skip
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _post_once(
    url: str, where: str, body: bytes, headers: dict[str, str], timeout_seconds: float
) -> tuple[int, dict[str, Any]]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout_seconds, context=context)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout_seconds)
    deadline = time.monotonic() + timeout_seconds
    try:
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            status = response.status
            retry_after = response.getheader("retry-after-ms"), response.getheader("Retry-After")
            location = response.getheader("Location") or ""
            raw = _read_within(response, deadline)
        except ConnectionRefusedError as exc:
            raise JudgeError(f"Cannot connect to the judge at {where}: connection refused.") from exc
        except TimeoutError as exc:
            raise _Retryable(f"did not answer within {timeout_seconds:g} seconds") from exc
        except socket.gaierror as exc:
            message = f"Cannot connect to the judge at {where}: unknown host {parts.hostname!r}."
            raise JudgeError(message) from exc
        except ssl.SSLError as exc:
            message = f"Cannot connect to the judge at {where}: TLS error ({exc.reason or exc})."
            raise JudgeError(message) from exc
        except (ConnectionError, http.client.IncompleteRead, http.client.BadStatusLine) as exc:
            raise _Retryable(f"closed the connection ({type(exc).__name__}: {exc})") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise JudgeError(f"Cannot connect to the judge at {where}: {exc}.") from exc
    finally:
        conn.close()
    if 300 <= status < 400:
        to = f" to {location}" if location else ""
        raise JudgeError(f"The judge at {where} answered with a redirect (HTTP {status}){to}. Fix base_url.")
    if status >= 400:
        message = server_message(raw)
        what = f"answered HTTP {status}" + (f": {message.rstrip('.')}" if message else "")
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retryable(what, retry_after_seconds(retry_after[1], retry_after[0]))
        raise JudgeError(f"The judge at {where} {_sentence(what)}")
    try:
        reply = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Retryable(f"sent a reply that is not valid JSON: {body_snippet(raw)!r}") from exc
    if not isinstance(reply, dict):
        raise _Retryable(f"sent a reply that is not a JSON object: {body_snippet(raw)!r}")
    return status, reply


def _read_within(response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The whole body, failing with ``TimeoutError`` if it trickles in past ``deadline``."""
    chunks = []
    while chunk := response.read(_READ_CHUNK_BYTES):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("reply body still arriving at the deadline")
    return b"".join(chunks)


def server_message(raw: bytes) -> str:
    """The error message of an OpenAI- or Gemini-style error body, else a short snippet of the body.

    Gemini's ``{"error": {"code", "message", "status"}}`` gives ``"message (STATUS)"``.
    """
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return body_snippet(raw)
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            status = error.get("status") if isinstance(error.get("status"), str) else ""
            for key in ("message", "detail", "msg"):
                if isinstance(error.get(key), str):
                    message = error[key].strip().rstrip(".")
                    return f"{message} ({status})" if status else message
        if isinstance(error, str):
            return error.strip()
    return body_snippet(raw)


def _display_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
