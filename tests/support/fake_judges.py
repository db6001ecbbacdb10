"""A real loopback HTTP server that speaks the OpenAI and Gemini judge wire formats, for offline tests.

It answers ``POST /v1/chat/completions`` (OpenAI ``chat.completion``) and
``POST /v1beta/models/{model}:generateContent`` (Gemini) from a script: a ``responder(info)`` that returns
the reply text, or a :class:`FakeFault` (429 with ``Retry-After``, 5xx, 4xx, malformed body, empty
content, safety block, dropped connection, hang). Every request is recorded as a :class:`FakeRequest`.

Example:
    >>> with FakeJudgeServer(lambda info: '{"ok": true}') as server:  # doctest: +SKIP
    ...     judge = OpenAIJudge("gpt-4.1", base_url=server.openai_base_url, api_key="k", cache=False)
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")
_OPENAI_PATH = "/v1/chat/completions"
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True, slots=True)
class FakeFault:
    """A scripted failure instead of a reply; build one with the class methods."""

    kind: str
    status: int = 200
    message: str = ""
    retry_after: str | None = None
    seconds: float = 0.0

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = 1) -> FakeFault:
        """HTTP 429 with ``Retry-After`` (``None``: no header)."""
        header = None if retry_after is None else str(retry_after)
        return cls("http_error", 429, "Rate limit reached. Please try again later.", retry_after=header)

    @classmethod
    def server_error(cls, status: int = 500, message: str = "The server had an error.") -> FakeFault:
        """A 5xx reply with a provider-style error body."""
        return cls("http_error", status, message)

    @classmethod
    def client_error(cls, status: int = 400, message: str = "Invalid request.") -> FakeFault:
        """A 4xx reply with a provider-style error body."""
        return cls("http_error", status, message)

    @classmethod
    def malformed(cls) -> FakeFault:
        """HTTP 200 whose body is not JSON."""
        return cls("malformed")

    @classmethod
    def empty(cls) -> FakeFault:
        """A well-formed reply without content (OpenAI ``content: null``; Gemini no parts)."""
        return cls("empty")

    @classmethod
    def safety_block(cls, where: str = "prompt") -> FakeFault:
        """Gemini: ``promptFeedback.blockReason`` (``where="prompt"``) or ``finishReason: SAFETY``."""
        return cls("safety", message=where)

    @classmethod
    def disconnect(cls) -> FakeFault:
        """Close the connection without answering."""
        return cls("disconnect")

    @classmethod
    def hang(cls, seconds: float = 5.0) -> FakeFault:
        """Answer nothing for ``seconds`` (longer than the client's timeout), then close."""
        return cls("hang", seconds=seconds)


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request the server received.

    Attributes:
        index: Its position among all requests (0-based).
        api: ``"openai"`` or ``"gemini"``.
        path: The request path.
        headers: Header names lowercased.
        body: The parsed JSON body.
        model: The model asked for.
        prompt: The last text part of the user turn (the prompt itself).
        system: The system text, if any.
        num_images: Images in the user turn.
        texts: Every text part of the user turn, in order (frame labels included).
    """

    index: int
    api: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    model: str
    prompt: str
    system: str | None
    num_images: int
    texts: tuple[str, ...] = field(default=())


Responder = Callable[[FakeRequest], "str | FakeFault"]


def scripted(*replies: str | FakeFault) -> Responder:
    """A responder answering ``replies`` in order; the last one repeats."""
    if not replies:
        raise ValueError("Invalid replies: (). Give at least one reply.")
    queue = list(replies)
    lock = threading.Lock()

    def respond(info: FakeRequest) -> str | FakeFault:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


class FakeJudgeServer:
    """The loopback server; use it as a context manager.

    Args:
        responder: ``responder(info) -> str | FakeFault``, or a sequence of replies (see :func:`scripted`).
        host: The interface to bind (loopback).
    """

    def __init__(self, responder: Responder | Sequence[str | FakeFault], host: str = "127.0.0.1"):
        self.responder: Responder = responder if callable(responder) else scripted(*responder)
        self.requests: list[FakeRequest] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._host = host
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self._httpd.server_port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI API root: ``base_url + "/v1"``."""
        return self.base_url + "/v1"

    @property
    def gemini_base_url(self) -> str:
        """The Gemini API root: ``base_url + "/v1beta"``."""
        return self.base_url + "/v1beta"

    def count(self, api: str | None = None) -> int:
        """Requests received (of one API kind if given)."""
        with self._lock:
            return sum(1 for r in self.requests if api is None or r.api == api)

    def start(self) -> FakeJudgeServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-judge", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake hanging handlers, free the port."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeJudgeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _record(self, make: Callable[[int], FakeRequest]) -> FakeRequest:
        with self._lock:
            info = make(len(self.requests))
            self.requests.append(info)
            return info


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hanging handler must not block close()
    fake: FakeJudgeServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        gemini = _GEMINI_PATH.match(path)
        if path != _OPENAI_PATH and not gemini:
            self._send_json(404, {"error": {"message": f"No route for POST {path}", "code": 404}})
            return
        api = "gemini" if gemini else "openai"
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            self._send_error(api, 400, f"Invalid JSON body: {exc}")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        model = gemini["model"] if gemini else str(body.get("model", ""))
        system, texts, num_images = _openai_parts(body) if api == "openai" else _gemini_parts(body)
        info = fake._record(
            lambda index: FakeRequest(
                index=index,
                api=api,
                path=path,
                headers=headers,
                body=body,
                model=model,
                prompt=texts[-1] if texts else "",
                system=system,
                num_images=num_images,
                texts=tuple(texts),
            )
        )
        try:
            answer = fake.responder(info)
        except Exception as exc:  # a broken test script: answer 500 and keep the message for the test
            fake.errors.append(f"{type(exc).__name__}: {exc}")
            self._send_error(api, 500, f"responder failed: {exc}")
            return
        if isinstance(answer, FakeFault):
            self._fault(api, answer, model, info)
        else:
            self._send_reply(api, str(answer), model, info)

    def _fault(self, api: str, fault: FakeFault, model: str, info: FakeRequest) -> None:
        if fault.kind == "http_error":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send_error(api, fault.status, fault.message, extra)
        elif fault.kind == "malformed":
            self._send_raw(200, b'{"choices": [ this is not json', "application/json")
        elif fault.kind == "empty":
            self._send_reply(api, None, model, info)
        elif fault.kind == "safety":
            usage = {"promptTokenCount": _tokens(info), "totalTokenCount": _tokens(info)}
            if fault.message == "prompt":
                body: dict[str, Any] = {
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "usageMetadata": usage,
                }  # fmt: skip
            else:
                candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": []}
                body = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
            self._send_json(200, body)
        elif fault.kind == "disconnect":
            self.close_connection = True
            self.connection.close()
        elif fault.kind == "hang":
            self.server.fake._closing.wait(fault.seconds)
            self.close_connection = True
        else:  # pragma: no cover - FakeFault is built by its class methods
            raise ValueError(f"unknown fault {fault.kind!r}")

    def _send_reply(self, api: str, text: str | None, model: str, info: FakeRequest) -> None:
        prompt_tokens = _tokens(info)
        completion_tokens = max(1, len(text) // 4) if text else 0
        if api == "openai":
            body: dict[str, Any] = {
                "id": f"chatcmpl-fake-{info.index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        else:
            content: dict[str, Any] = {"role": "model", "parts": [{"text": text}] if text is not None else []}
            body = {
                "candidates": [{"content": content, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": completion_tokens,
                    "totalTokenCount": prompt_tokens + completion_tokens,
                },
                "modelVersion": model,
            }
        self._send_json(200, body)

    def _send_error(self, api: str, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if api == "gemini":
            name = _GEMINI_STATUS.get(status, "UNKNOWN")
            error: dict[str, Any] = {"code": status, "message": message, "status": name}
        else:
            kind = (
                "rate_limit_exceeded"
                if status == 429
                else "invalid_request_error"
                if status < 500
                else "server_error"
            )
            error = {"message": message, "type": kind, "param": None, "code": None}
        self._send_json(status, {"error": error}, headers)

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode("utf-8"), "application/json", headers)

    def _send_raw(
        self, status: int, raw: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out)
            self.close_connection = True


def _openai_parts(body: dict[str, Any]) -> tuple[str | None, list[str], int]:
    system = None
    texts: list[str] = []
    num_images = 0
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if message.get("role") == "system":
            system = content if isinstance(content, str) else None
        elif message.get("role") == "user":
            if isinstance(content, str):
                texts.append(content)
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                elif isinstance(part, dict) and part.get("type") == "image_url":
                    num_images += 1
    return system, texts, num_images


def _gemini_parts(body: dict[str, Any]) -> tuple[str | None, list[str], int]:
    instruction = body.get("systemInstruction")
    system = None
    if isinstance(instruction, dict):
        system = "".join(
            str(p.get("text", "")) for p in instruction.get("parts") or [] if isinstance(p, dict)
        )
    texts: list[str] = []
    num_images = 0
    for turn in body.get("contents") or []:
        for part in turn.get("parts") or [] if isinstance(turn, dict) else []:
            if isinstance(part, dict) and "text" in part:
                texts.append(str(part["text"]))
            elif isinstance(part, dict) and "inlineData" in part:
                num_images += 1
    return system, texts, num_images


def _tokens(info: FakeRequest) -> int:
    """A rough token count: 4 characters a token, 258 per image (Gemini's figure)."""
    characters = len(info.system or "") + sum(len(t) for t in info.texts)
    return max(1, characters // 4) + 258 * info.num_images
