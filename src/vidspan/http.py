"""One retrying JSON POST: the transport under the model-server client and every judge backend (stdlib only).

What is retried, with exponential backoff (``backoff_seconds * 2**attempt``, or the server's
``Retry-After`` / ``retry-after-ms`` when sent, capped at ``max_retry_after_seconds``):

- HTTP 408, 429 and every 5xx reply;
- a connection reset or closed mid-request;
- a timeout, when the peer says so (:attr:`Peer.retry_timeouts`). Judge requests are idempotent and cheap
  to repeat, so judges retry them; a model server that did not answer a long video within the limit will
  not answer it faster the second time, so the model client fails at once with a hint;
- a 2xx reply whose body is not a JSON object, when the peer says so (a garbled proxy answer to a judge).

Everything else fails at once with the peer's error class: another 4xx (with the server's own error
message), a redirect, connection refused, an unknown host, a TLS error. Messages name the peer and the URL
without credentials, e.g. "The judge at https://api.openai.com/v1/chat/completions answered HTTP 400: ...".
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import math
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from vidspan.errors import VidspanError

logger = logging.getLogger(__name__)

DEFAULT_MAX_RETRY_AFTER_SECONDS = 60.0
_RETRY_STATUSES = frozenset({408, 429})
_READ_CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class Peer:
    """Who is on the other end, for messages and for what is worth repeating.

    Attributes:
        name: How messages name it ("judge", "model server").
        error: The :class:`~vidspan.errors.VidspanError` subclass its failures raise.
        retry_timeouts: Repeat an attempt that timed out.
        retry_bad_json: Repeat a 2xx reply whose body is not a JSON object.
        timeout_hint: Appended to a timeout that is not retried.
        refused_hint: Appended to "connection refused".
        redirect_hint: Appended to a redirect.
    """

    name: str
    error: type[VidspanError]
    retry_timeouts: bool = True
    retry_bad_json: bool = True
    timeout_hint: str = ""
    refused_hint: str = ""
    redirect_hint: str = "Fix base_url."


class _Retryable(Exception):
    """One failed attempt worth repeating; ``what`` completes "The <peer> at URL ..."."""

    def __init__(self, what: str, delay_seconds: float | None = None):
        super().__init__(what)
        self.what = what
        self.delay_seconds = delay_seconds


def check_transport_options(timeout_seconds: float, max_retries: int, backoff_seconds: float) -> None:
    """Raise ``ValueError`` for an invalid timeout, retry count or backoff."""
    if not _is_number(timeout_seconds) or not timeout_seconds > 0:
        raise ValueError(f"Invalid timeout_seconds: {timeout_seconds!r}. It must be a positive number.")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"Invalid max_retries: {max_retries!r}. It must be an integer >= 0.")
    if not _is_number(backoff_seconds) or backoff_seconds < 0:
        raise ValueError(f"Invalid backoff_seconds: {backoff_seconds!r}. It must be a number >= 0.")


def parse_base_url(base_url: str, *, allow_credentials: bool = False) -> tuple[str, str | None]:
    """``(base URL without a trailing slash or credentials, Basic Authorization header or None)``.

    Raises:
        ValueError: not an http(s) URL with a host; a query, a fragment, a bad port, or credentials where
            they are not allowed.
    """
    example = "http://127.0.0.1:8000/v1"
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(f"Invalid base_url: {base_url!r}. It must be an http(s) URL such as {example}.")
    url = urllib.parse.urlsplit(base_url.strip().rstrip("/"))
    if url.scheme not in ("http", "https"):
        raise ValueError(
            f"Invalid base_url: {base_url!r}. It must start with http:// or https://, e.g. {example}."
        )
    try:
        port = url.port
    except ValueError as exc:
        message = f"Invalid base_url: {base_url!r}. Its port is not a number from 0 to 65535."
        raise ValueError(message) from exc
    if not url.hostname:
        raise ValueError(f"Invalid base_url: {base_url!r}. It has no host name.")
    if url.query or url.fragment:
        raise ValueError(f"Invalid base_url: {base_url!r}. It must not have a query or a fragment.")
    basic_auth = None
    if url.username is not None:
        if not allow_credentials:
            raise ValueError(f"Invalid base_url: {base_url!r}. It must not hold credentials; pass api_key.")
        userinfo = f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password or '')}"
        basic_auth = "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")
    host = url.hostname if ":" not in url.hostname else f"[{url.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, "", "")), basic_auth


def post_json(
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    peer: Peer,
    headers: dict[str, str] | None = None,
    timeout_seconds: float = 120.0,
    max_retries: int = 5,
    backoff_seconds: float = 2.0,
    max_retry_after_seconds: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
    where: str | None = None,
) -> dict[str, Any]:
    """POST ``payload`` as JSON to ``url`` and return the reply, a 2xx JSON object.

    Args:
        url: The full endpoint URL (no credentials in it).
        payload: The JSON body, or its encoded bytes.
        peer: Who answers (messages, error class, what is retried).
        headers: Extra headers (e.g. ``Authorization``, ``x-goog-api-key``).
        timeout_seconds: Limit for connecting and for reading the whole reply, per attempt.
        max_retries: Repeats after a retryable failure (see the module docstring).
        backoff_seconds: First wait between attempts; it doubles each time.
        max_retry_after_seconds: Cap on any one wait, a server's ``Retry-After`` included.
        where: How messages show the URL (default: ``url`` without its query).

    Raises:
        VidspanError: ``peer.error`` for a non-retryable failure or one that outlasted the retries.
    """
    check_transport_options(timeout_seconds, max_retries, backoff_seconds)
    where = where or _display_url(url)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "vidspan"}
    all_headers.update(headers or {})
    attempts = max_retries + 1
    for attempt in range(attempts):
        try:
            return _post_once(url, where, body, all_headers, float(timeout_seconds), peer)
        except _Retryable as failure:
            if attempt + 1 >= attempts:
                tries = f" ({attempts} attempts)" if attempts > 1 else ""
                message = f"The {peer.name} at {where} {_sentence(failure.what + tries)}"
                raise peer.error(message) from failure.__cause__
            delay = failure.delay_seconds
            if delay is None:
                delay = backoff_seconds * 2**attempt
            delay = min(max(0.0, delay), max_retry_after_seconds)
            logger.info(
                "the %s at %s %s; retrying in %.2f s (attempt %d of %d)",
                peer.name, where, failure.what, delay, attempt + 2, attempts,
            )  # fmt: skip
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _post_once(
    url: str, where: str, body: bytes, headers: dict[str, str], timeout_seconds: float, peer: Peer
) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    status, retry_after, location, raw = _exchange(parts, where, body, headers, timeout_seconds, peer)
    if 300 <= status < 400:
        to = f" to {redirect}" if (redirect := body_snippet(location.encode())) else ""
        hint = f" {peer.redirect_hint}" if peer.redirect_hint else ""
        raise peer.error(f"The {peer.name} at {where} answered with a redirect (HTTP {status}){to}.{hint}")
    if status >= 400:
        message = server_message(raw)
        what = f"answered HTTP {status}" + (f": {message.rstrip('.')}" if message else "")
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retryable(what, retry_after_seconds(retry_after[1], retry_after[0]))
        raise peer.error(f"The {peer.name} at {where} {_sentence(what)}")
    try:
        reply = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        what = f"sent a reply that is not valid JSON: {body_snippet(raw)!r}"
        if peer.retry_bad_json:
            raise _Retryable(what) from exc
        raise peer.error(f"The {peer.name} at {where} {what}.") from exc
    if not isinstance(reply, dict):
        what = f"sent a reply that is not a JSON object: {body_snippet(raw)!r}"
        if peer.retry_bad_json:
            raise _Retryable(what)
        raise peer.error(f"The {peer.name} at {where} {what}.")
    return reply


def _exchange(
    parts: urllib.parse.SplitResult,
    where: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    peer: Peer,
) -> tuple[int, tuple[str | None, str | None], str, bytes]:
    """``(status, (retry-after-ms, Retry-After), Location, body)`` of one request, or the connection error."""
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    deadline = time.monotonic() + timeout
    cannot = f"Cannot connect to the {peer.name} at {where}"
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        retry_after = response.getheader("retry-after-ms"), response.getheader("Retry-After")
        location = response.getheader("Location") or ""
        return response.status, retry_after, location, _read_within(response, deadline)
    except ConnectionRefusedError as exc:
        hint = f" {peer.refused_hint}" if peer.refused_hint else ""
        raise peer.error(f"{cannot}: connection refused.{hint}") from exc
    except TimeoutError as exc:
        what = f"did not answer within {timeout:g} seconds"
        if peer.retry_timeouts:
            raise _Retryable(what) from exc
        hint = f" {peer.timeout_hint}" if peer.timeout_hint else ""
        raise peer.error(f"The {peer.name} at {where} {what}.{hint}") from exc
    except socket.gaierror as exc:
        raise peer.error(f"{cannot}: unknown host {parts.hostname!r}.") from exc
    except ssl.SSLError as exc:
        raise peer.error(f"{cannot}: TLS error ({exc.reason or exc}).") from exc
    except (ConnectionError, http.client.IncompleteRead, http.client.BadStatusLine) as exc:
        # reset or closed mid-request (a restarting server, an overloaded proxy): worth repeating
        raise _Retryable(f"closed the connection ({type(exc).__name__}: {exc})") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise peer.error(f"{cannot}: {exc}.") from exc
    finally:
        conn.close()


def _read_within(response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The whole body, failing with ``TimeoutError`` if it trickles in past ``deadline``."""
    chunks = []
    while chunk := response.read(_READ_CHUNK_BYTES):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("reply body still arriving at the deadline")
    return b"".join(chunks)


def retry_after_seconds(value: str | None, milliseconds: str | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``; None if absent.

    ``retry-after-ms`` wins when both are sent; the result is never negative (callers apply their caps).
    """
    if milliseconds:
        try:
            seconds = float(milliseconds) / 1000.0
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def server_message(raw: bytes) -> str:
    """The error message of an OpenAI-, FastAPI- or Gemini-style error body, else a snippet of the body.

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
        if isinstance(data.get("detail"), str):
            return data["detail"].strip()
    return body_snippet(raw)


def body_snippet(raw: bytes, limit: int = 200) -> str:
    """The start of a reply body as text, for error messages."""
    text = raw.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _display_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
