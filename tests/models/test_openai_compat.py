"""The OpenAI-compatible HTTP client: request shapes, retries and failures, against real loopback servers."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from vidspan.errors import BackendConnectionError
from vidspan.models import families
from vidspan.models.base import ModelSpec
from vidspan.models.openai.client import OpenAICompatModel
from vidspan.types import Clip, Span, VideoInfo

SPEC = ModelSpec("marlin-2b", families.MARLIN, "NemoStation/Marlin-2B", backend="openai")
OK_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "marlin",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "From 1.0 to 2.0."},
            "logprobs": {"content": [{"token": "From", "logprob": -0.5}, {"token": " 1", "logprob": -1.5}]},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 2, "total_tokens": 122},
}

Reply = tuple[int, dict[str, str], bytes]


def _json(status: int, body: object, **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


class ScriptedServer:
    """A loopback HTTP server that answers POSTs with a list of canned replies and records the requests."""

    def __init__(self, replies: list[Reply]):
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                script.requests.append(json.loads(body))
                script.headers.append(dict(self.headers))
                script.paths.append(self.path)
                replies = script.replies  # the last reply repeats
                status, headers, payload = replies.pop(0) if len(replies) > 1 else replies[0]
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_clip(num_frames: int = 4, start: float = 0.0, path: str = "", duration: float | None = None) -> Clip:
    frames = np.stack([np.full((64, 96, 3), 40 * i, dtype=np.uint8) for i in range(num_frames)])
    timestamps = tuple(start + 0.5 * i + 0.25 for i in range(num_frames))
    window = Span(start, start + 0.5 * num_frames)
    length = duration or window.end
    info = VideoInfo(path, length, 30.0, int(30 * length), 96, 64, 0, "h264", "mp4")
    return Clip(frames=frames, timestamps=timestamps, window=window, video=info)


def client(base_url: str, **options: object) -> OpenAICompatModel:
    options = {"served_model": "marlin", "input_mode": "frames", "backoff_seconds": 0.01, **options}
    return OpenAICompatModel(SPEC, base_url=base_url, **options)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections (through the listen backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def decode_jpeg(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


# -- construction -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"input_mode": "x"}, r"Invalid input_mode: 'x'\. It must be one of video, frames, images\."),
        ({"base_url": "ftp://host/v1"}, r"Invalid base_url: 'ftp://host/v1'\. It must start with http"),
        ({"base_url": "127.0.0.1:8000/v1"}, r"Invalid base_url"),
        ({"base_url": "http://:80/v1"}, r"It has no host name"),
        ({"base_url": "http://h:99999/v1"}, r"port"),
        ({"served_model": ""}, r"Invalid served_model"),
        ({"timeout_seconds": 0}, r"Invalid timeout_seconds: 0\. It must be a positive number\."),
        ({"max_retries": -1}, r"Invalid max_retries"),
        ({"backoff_seconds": float("nan")}, r"Invalid backoff_seconds"),
        ({"jpeg_quality": 0}, r"Invalid jpeg_quality"),
        ({"extra_body": "x"}, r"Invalid extra_body"),
        ({"media_io_kwargs": 2}, r"Invalid media_io_kwargs"),
    ],
)
def test_invalid_arguments_are_refused_at_construction(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        client(options.pop("base_url", "http://127.0.0.1:8000/v1"), **options)


def test_settings_hide_credentials_and_name_the_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    model = client("http://user:pw@127.0.0.1:8000/v1/")
    settings = model.settings()
    assert settings["base_url"] == "http://127.0.0.1:8000/v1"
    assert settings["served_model"] == "marlin" and settings["input_mode"] == "frames"
    assert settings["caption_prompt"] == families.MARLIN.caption_prompt
    assert settings["find_prompt"] == families.MARLIN.find_prompt
    assert "secret" not in json.dumps(settings) and "pw" not in json.dumps(settings)


# -- request shapes ---------------------------------------------------------------------------------------


def test_frames_mode_sends_a_jpeg_frame_list_with_millisecond_times() -> None:
    clip = make_clip(num_frames=4, start=10.0, duration=60.0)
    body = client("http://127.0.0.1:1/v1", jpeg_quality=95).build_request(clip, "Describe.", max_new_tokens=7)
    assert body["model"] == "marlin" and body["temperature"] == 0 and body["max_tokens"] == 7
    assert body["logprobs"] is True
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    (message,) = body["messages"]
    video, text = message["content"]
    assert message["role"] == "user" and text == {"type": "text", "text": "Describe."}
    url = video["video_url"]["url"]
    assert video["type"] == "video_url" and url.startswith("data:video/jpeg;base64,")
    frames = url.removeprefix("data:video/jpeg;base64,").split(",")
    assert len(frames) == 4
    assert abs(int(decode_jpeg(frames[2]).mean()) - 80) <= 2 and decode_jpeg(frames[0]).shape == (64, 96, 3)
    assert body["media_io_kwargs"] == {
        "video": {
            "fps": 1000.0,
            "frames_indices": [250, 750, 1250, 1750],
            "total_num_frames": 2000,
            "duration": 2.0,
            "do_sample_frames": False,
        }
    }


def test_images_mode_labels_each_frame_with_its_time() -> None:
    clip = make_clip(num_frames=3, start=4.0, duration=30.0)
    body = client("http://127.0.0.1:1/v1", input_mode="images").build_request(clip, "Q?", max_new_tokens=5)
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"] * 3 + ["text"]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts == ["0.2 seconds:", "0.8 seconds:", "1.2 seconds:", "Q?"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert all(url.startswith("data:image/jpeg;base64,") for url in urls)
    assert "media_io_kwargs" not in body


def test_video_mode_sends_the_whole_file_or_falls_back_to_frames(tmp_path, caplog) -> None:
    path = tmp_path / "clip.mkv"
    path.write_bytes(b"\x1aE\xdf\xa3 not really a video")
    whole = make_clip(num_frames=4, path=str(path), duration=2.0)
    model = client("http://127.0.0.1:1/v1", input_mode="video")
    body = model.build_request(whole, "Q", max_new_tokens=5)
    url = body["messages"][0]["content"][0]["video_url"]["url"]
    assert url == "data:video/x-matroska;base64," + base64.b64encode(path.read_bytes()).decode()
    assert "media_io_kwargs" not in body

    kwargs = {"video": {"max_frames": 9}}
    with_kwargs = client("http://127.0.0.1:1/v1", input_mode="video", media_io_kwargs=kwargs)
    assert with_kwargs.build_request(whole, "Q", max_new_tokens=5)["media_io_kwargs"] == {
        "video": {"fps": 2.0, "max_frames": 9}
    }

    window = make_clip(num_frames=4, start=2.0, path=str(path), duration=20.0)
    caplog.set_level("INFO", logger="vidspan")
    body = model.build_request(window, "Q", max_new_tokens=5)
    assert body["messages"][0]["content"][0]["video_url"]["url"].startswith("data:video/jpeg;base64,")
    assert body["media_io_kwargs"]["video"]["frames_indices"] == [250, 750, 1250, 1750]
    assert any("sending its frames" in r.getMessage() for r in caplog.records)


def test_extra_body_is_merged_and_none_removes_a_field() -> None:
    extra = {"logprobs": None, "chat_template_kwargs": {"foo": 1}, "top_k": 1, "media_io_kwargs": {"x": {}}}
    body = client("http://127.0.0.1:1/v1", extra_body=extra).build_request(make_clip(), "Q", max_new_tokens=5)
    assert "logprobs" not in body and body["top_k"] == 1
    assert body["chat_template_kwargs"] == {"enable_thinking": False, "foo": 1}
    assert set(body["media_io_kwargs"]) == {"video", "x"}


# -- replies and transport ---------------------------------------------------------------------------------


def test_a_good_reply_becomes_a_generation_and_the_key_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDSPAN_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedServer([_json(200, OK_REPLY)]) as server:
        generation = client(server.base_url).generate(make_clip(), "Where?", max_new_tokens=9)
    assert generation.text == "From 1.0 to 2.0."
    assert generation.mean_logprob == pytest.approx(-1.0)
    assert (generation.num_prompt_tokens, generation.num_generated_tokens) == (120, 2)
    assert generation.timings["request"] > 0
    assert server.paths == ["/v1/chat/completions"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert server.requests[0]["max_tokens"] == 9


def test_connection_refused_says_so_and_names_the_url() -> None:
    port = closed_port()
    with pytest.raises(BackendConnectionError, match="connection refused") as info:
        client(f"http://127.0.0.1:{port}/v1").generate(make_clip(), "Q", max_new_tokens=5)
    assert str(info.value) == (
        f"Cannot connect to the model server at http://127.0.0.1:{port}/v1: "
        "connection refused. Is it running?"
    )


def test_server_errors_are_retried_until_a_success() -> None:
    failing = _json(500, {"error": {"message": "boom", "type": "server_error"}})
    with ScriptedServer([failing, failing, _json(200, OK_REPLY)]) as server:
        generation = client(server.base_url, max_retries=3).generate(make_clip(), "Q", max_new_tokens=5)
    assert generation.text == "From 1.0 to 2.0." and len(server.requests) == 3


def test_server_errors_give_up_after_max_retries() -> None:
    failing = _json(503, {"error": {"message": "overloaded"}})
    with ScriptedServer([failing]) as server:
        with pytest.raises(BackendConnectionError, match=r"answered HTTP 503: overloaded \(3 attempts\)\.$"):
            client(server.base_url, max_retries=2).generate(make_clip(), "Q", max_new_tokens=5)
    assert len(server.requests) == 3


def test_429_honours_retry_after() -> None:
    limited = _json(429, {"error": {"message": "slow down"}}, **{"Retry-After": "0"})
    with ScriptedServer([limited, _json(200, OK_REPLY)]) as server:
        started = time.monotonic()
        # A long backoff that Retry-After: 0 overrides.
        model = client(server.base_url, backoff_seconds=30.0)
        generation = model.generate(make_clip(), "Q", max_new_tokens=5)
    assert generation.text and len(server.requests) == 2 and time.monotonic() - started < 10


def test_client_errors_are_raised_at_once_with_the_server_message() -> None:
    refused = _json(400, {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}})
    with ScriptedServer([refused]) as server:
        with pytest.raises(BackendConnectionError, match=r"HTTP 400: max_tokens is too large\.") as info:
            client(server.base_url).generate(make_clip(), "Q", max_new_tokens=5)
    assert server.base_url in str(info.value)
    assert len(server.requests) == 1


def test_a_silent_server_times_out_within_the_timeout() -> None:
    with silent_server() as base_url:
        started = time.monotonic()
        with pytest.raises(BackendConnectionError, match=r"did not answer within 0\.5 seconds"):
            client(base_url, timeout_seconds=0.5).generate(make_clip(), "Q", max_new_tokens=5)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    "reply",
    [
        {**OK_REPLY, "choices": []},
        {**OK_REPLY, "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}}]},
        {**OK_REPLY, "choices": [{"index": 0, "message": {"role": "assistant", "content": None}}]},
    ],
    ids=["no-choices", "empty-content", "null-content"],
)
def test_an_empty_reply_is_an_error(reply: dict) -> None:
    with ScriptedServer([_json(200, reply)]) as server:
        with pytest.raises(BackendConnectionError, match="The model server returned an empty reply"):
            client(server.base_url).generate(make_clip(), "Q", max_new_tokens=5)


@pytest.mark.parametrize("payload", [b"<html>oops</html>", b'["a list"]'], ids=["not-json", "not-an-object"])
def test_malformed_json_is_a_clear_error(payload: bytes) -> None:
    with ScriptedServer([(200, {"Content-Type": "application/json"}, payload)]) as server:
        with pytest.raises(BackendConnectionError, match=r"sent a reply that is not (valid JSON|a JSON obj)"):
            client(server.base_url).generate(make_clip(), "Q", max_new_tokens=5)


def test_a_reset_connection_is_retried() -> None:
    """The first connection is closed without an answer, the second one is served."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        body = json.dumps(OK_REPLY).encode()
        accepted: list[int] = []

        def serve() -> None:
            for attempt in range(2):
                conn, _ = listener.accept()
                with conn:
                    accepted.append(attempt)
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    if attempt == 0:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        continue  # closing with SO_LINGER 0 sends a reset
                    head, _, rest = data.partition(b"\r\n\r\n")
                    lines = head.lower().split(b"\r\n")
                    length = int(next(h.split(b":")[1] for h in lines if h.startswith(b"content-length")))
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
                    )

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        generation = client(f"http://127.0.0.1:{port}/v1").generate(make_clip(), "Q", max_new_tokens=5)
        thread.join(5)
    assert generation.text == "From 1.0 to 2.0." and accepted == [0, 1]

