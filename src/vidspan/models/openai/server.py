"""Serve any vidspan :class:`~vidspan.models.base.VideoModel` over an OpenAI-compatible chat API.

Standard library only (``http.server``). Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions``
and ``GET /health``. A request carries its video in one user message, as vLLM accepts it:

- a ``video_url`` data URL of a whole file (``data:video/mp4;base64,...``), sampled here with
  :func:`vidspan.video.sample_clip` (``media_io_kwargs["video"]`` may set ``fps``, ``num_frames``,
  ``min_frames`` and ``max_frames``);
- a ``video_url`` JPEG frame list (``data:video/jpeg;base64,<f1>,<f2>,...``), timed by
  ``media_io_kwargs["video"]`` ``fps`` and ``frames_indices`` (vLLM's default: 1 fps, frame ``i`` at ``i`` s);
- ``image_url`` parts, each after a ``"<t> seconds:"`` text label giving its time.

The other text parts form the prompt. Decoding is greedy; requests run one at a time. Only data URLs are
accepted: the server never fetches anything.

Example:
    >>> with serve(get_model("marlin-2b")) as server:  # doctest: +SKIP
    ...     model = get_model("marlin-2b", base_url=server.base_url, input_mode="frames")
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import mimetypes
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from vidspan.errors import RequestError, VidspanError
from vidspan.models.base import Generation, VideoModel
from vidspan.models.openai import wire
from vidspan.types import Clip, Span, VideoInfo

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_TOKENS = 256
_FRAME_LIST_MIMES = ("video/jpeg", "video/jpg", "video/png")


class ChatRequest(NamedTuple):
    """What one chat completion request asks: the decoded clip, the prompt and the generation options."""

    clip: Clip
    prompt: str
    max_tokens: int
    logprobs: bool


class OpenAICompatServer:
    """An OpenAI-compatible HTTP server around one loaded model.

    The socket is bound at construction (``port=0`` picks a free port), so :attr:`base_url` is known at
    once. :meth:`start` serves from a background thread; as a context manager the server starts on entry
    and stops on exit. :meth:`serve_forever` serves in the calling thread (for a CLI).

    Args:
        model: The model that answers.
        host: Interface to bind (``"0.0.0.0"`` to accept other machines; there is no authentication).
        port: TCP port, ``0`` for any free one.
        served_model: Name reported by ``/v1/models`` and required in requests; defaults to the model's name.
        max_request_bytes: Larger request bodies are refused with HTTP 413.
        socket_timeout_seconds: Limit for every read from and write to a client.

    ``last_clip`` and ``last_prompt`` hold the latest request's decoded clip and prompt (for debugging).
    """

    def __init__(
        self,
        model: VideoModel,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        served_model: str | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        socket_timeout_seconds: float = 120.0,
    ):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"Invalid port: {port!r}. It must be an integer from 0 to 65535.")
        if not isinstance(max_request_bytes, int) or max_request_bytes < 1:
            raise ValueError(
                f"Invalid max_request_bytes: {max_request_bytes!r}. It must be a positive integer."
            )
        self.model = model
        self.served_model = served_model or model.name
        self.max_request_bytes = max_request_bytes
        self.last_clip: Clip | None = None
        self.last_prompt: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._created = int(time.time())
        handler = type("Handler", (_Handler,), {"app": self, "timeout": socket_timeout_seconds})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, the value to pass as a client's ``base_url``."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> OpenAICompatServer:
        """Serve from a daemon thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
            logger.info("serving %s at %s", self.served_model, self.base_url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`close` is called from another one (or Ctrl-C)."""
        logger.info("serving %s at %s", self.served_model, self.base_url)
        try:
            self._httpd.serve_forever(0.2)
        finally:
            self._httpd.server_close()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def models_response(self) -> dict[str, Any]:
        """The ``GET /v1/models`` body."""
        model = {"id": self.served_model, "object": "model", "created": self._created, "owned_by": "vidspan",
                 "root": self.model.spec.checkpoint}
        return {"object": "list", "data": [model]}

    def chat_completion(self, body: Any) -> dict[str, Any]:
        """Answer one ``POST /v1/chat/completions`` body.

        Raises:
            RequestError: the request is invalid or names another model.
            VidspanError: decoding the video or generating failed.
        """
        if not isinstance(body, dict):
            raise RequestError("The request body must be a JSON object.")
        requested = body.get("model")
        if requested is not None and requested != self.served_model:
            raise RequestError(
                f"The model `{requested}` does not exist. This server serves `{self.served_model}`.",
                status=404, param="model", code="model_not_found",
            )
        with _decoded_request(body, self.model.family.patch_factor) as request:
            with self._lock:
                self.last_clip, self.last_prompt = request.clip, request.prompt
                generation = self.model.generate(
                    request.clip, request.prompt, max_new_tokens=request.max_tokens
                )
        return _completion_body(self.served_model, generation, request)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to :class:`OpenAICompatServer`; every answer is JSON with a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "vidspan"
    app: OpenAICompatServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._send(200, self.app.models_response())
        elif path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send_error(404, f"Unknown path {path or '/'}.", "not_found_error", code="not_found")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/chat/completions":
            self.close_connection = True  # the body is left unread
            self._send_error(404, f"Unknown path {path or '/'}.", "not_found_error", code="not_found")
            return
        try:
            answer = self.app.chat_completion(self._read_json())
        except RequestError as exc:
            self._send_error(exc.status, exc.message, param=exc.param, code=exc.code)
        except VidspanError as exc:
            logger.warning("chat completion failed: %s", exc)
            self._send_error(500, str(exc), "server_error", code="internal_error")
        except Exception as exc:  # noqa: BLE001 - the server must answer, not drop the connection
            logger.warning("chat completion failed", exc_info=True)
            self._send_error(500, f"{type(exc).__name__}: {exc}", "server_error", code="internal_error")
        else:
            self._send(200, answer)

    def _read_json(self) -> Any:
        keep_alive, self.close_connection = not self.close_connection, True  # until the whole body is read
        length_header = self.headers.get("Content-Length", "")
        if not length_header.isdigit() or self.headers.get("Transfer-Encoding"):
            message = "The request needs a Content-Length header (chunked bodies are not supported)."
            raise RequestError(message, status=411)
        if int(length_header) > self.app.max_request_bytes:
            raise RequestError(f"The request body has {length_header} bytes; this server accepts at most "
                               f"{self.app.max_request_bytes}.", status=413, code="request_too_large")
        raw = self.rfile.read(int(length_header))
        if len(raw) < int(length_header):
            raise RequestError("The request body ended before its Content-Length.")
        self.close_connection = not keep_alive
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RequestError(f"The request body is not valid JSON: {exc}.") from None

    def _send_error(
        self, status: int, message: str, kind: str = "invalid_request_error", *, param: str | None = None,
        code: str | None = None,
    ) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        logger.debug("%s - %s", self.address_string(), format % args)


def serve(model: VideoModel, host: str = "127.0.0.1", port: int = 0, **options: Any) -> OpenAICompatServer:
    """Start serving ``model`` from a background thread; use the result as a context manager to stop it.

    ``options`` are those of :class:`OpenAICompatServer`; ``port=0`` picks a free port (see ``.base_url``).
    """
    return OpenAICompatServer(model, host, port, **options).start()


# -- request decoding ---------------------------------------------------------------------------------------


@contextmanager
def _decoded_request(body: dict[str, Any], patch_factor: int) -> Iterator[ChatRequest]:
    """Decode a chat body; a whole video file lives in a temporary directory until the block ends."""
    if body.get("stream"):
        raise RequestError("Streaming is not supported; send stream=false.", param="stream")
    if body.get("n", 1) != 1:
        raise RequestError("Only n=1 is supported.", param="n")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        message = f"Invalid max_tokens: {max_tokens!r}. It must be a positive integer."
        raise RequestError(message, param="max_tokens")
    messages = body.get("messages")
    if not (isinstance(messages, list) and len(messages) == 1 and isinstance(messages[0], dict)
            and messages[0].get("role") == "user"):
        raise RequestError("The request must have exactly one message, from the user.", param="messages")
    content = messages[0].get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        message = "The message content must be a string or a list of content parts."
        raise RequestError(message, param="messages")
    media = body.get("media_io_kwargs") or {}
    video_kwargs = (media.get("video") if isinstance(media, dict) else None) or {}
    if not isinstance(media, dict) or not isinstance(video_kwargs, dict):
        raise RequestError("media_io_kwargs must be {\"video\": {...}}.", param="media_io_kwargs")

    videos, images, texts = _split_parts(parts)
    prompt = "\n".join(texts).strip()
    if not prompt:
        raise RequestError("The message has no text prompt.", param="messages")
    if len(videos) + bool(images) == 0:
        raise RequestError("The message has no video: add a video_url or image_url part.", param="messages")
    if len(videos) > 1 or (videos and images):
        message = "The message must hold one video (or one list of images), not several."
        raise RequestError(message, param="messages")
    logprobs = bool(body.get("logprobs"))
    if images:
        decoded = [_decode_image(*_split_data_url(url)) for url, _ in images]
        clip = _clip_from_frames(decoded, _image_times(images), {}, patch_factor)
        yield ChatRequest(clip, prompt, max_tokens, logprobs)
        return
    mime, payload = _split_data_url(videos[0])
    if mime in _FRAME_LIST_MIMES:
        frames = [_decode_image("image/jpeg", chunk) for chunk in payload.split(",") if chunk.strip()]
        clip = _clip_from_frames(frames, None, video_kwargs, patch_factor)
        yield ChatRequest(clip, prompt, max_tokens, logprobs)
        return
    if not mime.startswith("video/"):
        raise RequestError(f"Unsupported video type {mime!r} in the data URL.", param="messages")
    with tempfile.TemporaryDirectory(prefix="vidspan-request-") as tmp:
        path = Path(tmp) / ("video" + (mimetypes.guess_extension(mime) or ".mp4"))  # FFmpeg probes anyway
        path.write_bytes(_b64(payload))
        yield ChatRequest(_clip_from_file(path, video_kwargs, patch_factor), prompt, max_tokens, logprobs)


def _split_parts(parts: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, float | None]], list[str]]:
    """``(video URLs, [(image URL, time)], prompt texts)``; a ``"<t> seconds:"`` text times the next image."""
    videos: list[str] = []
    images: list[tuple[str, float | None]] = []
    texts: list[str] = []
    previous = None
    for part in parts:
        kind = part.get("type") or next((k for k in ("video_url", "image_url", "text") if k in part), None)
        if kind not in ("video_url", "image_url", "text"):
            raise RequestError(f"Unsupported content part type {kind!r}.", param="messages")
        value = part.get(kind)
        url = value.get("url") if isinstance(value, dict) else value
        if not isinstance(url, str):
            raise RequestError(f"A {kind} part is empty.", param="messages")
        if kind == "video_url":
            videos.append(url)
        elif kind == "image_url":
            label = wire.TIME_LABEL.match(texts[-1]) if previous == "text" else None
            if label:
                texts.pop()  # a time label, not part of the prompt
            images.append((url, float(label.group(1)) if label else None))
        else:
            texts.append(url)
        previous = kind
    return videos, images, texts


def _image_times(images: list[tuple[str, float | None]]) -> list[float] | None:
    times = [t for _, t in images if t is not None]
    if not times:
        return None  # unlabeled images: one per second, as vLLM's default frame rate
    if len(times) < len(images):
        message = 'Either every image or no image must follow a "<t> seconds:" label.'
        raise RequestError(message, param="messages")
    return times


def _split_data_url(url: str) -> tuple[str, str]:
    if not url.startswith("data:"):
        scheme = url.split(":", 1)[0] if ":" in url else "?"
        raise RequestError(
            f"Only data URLs are accepted (got a {scheme}: URL); this server does not fetch media.",
            param="messages",
        )
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise RequestError("The data URL must be base64-encoded (data:<type>;base64,...).", param="messages")
    return header[: -len(";base64")].split(";", 1)[0].strip().lower(), payload


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("A data URL holds invalid base64.", param="messages") from None


def _decode_image(mime: str, payload: str) -> Any:
    """One base64 image as a uint8 RGB array."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not mime.startswith("image/"):
        raise RequestError(f"An image_url must hold an image, not {mime!r}.", param="messages")
    try:
        with Image.open(io.BytesIO(_b64(payload))) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError("A frame is not a readable image.", param="messages") from None


def _clip_from_frames(
    frames: list[Any], times: list[float] | None, video_kwargs: dict[str, Any], patch_factor: int
) -> Clip:
    """A clip of decoded frames, timed by ``times`` or by ``fps``/``frames_indices`` as vLLM reads them."""
    import numpy as np

    if not frames:
        raise RequestError("The frame list is empty.", param="messages")
    if len({f.shape for f in frames}) > 1:
        raise RequestError("All frames of a video must have the same size.", param="messages")
    fps = _number(video_kwargs.get("fps", 1.0), "fps")
    indices = video_kwargs.get("frames_indices")
    if times is None:
        if indices is None:
            indices = list(range(len(frames)))
        if not isinstance(indices, list) or len(indices) != len(frames):
            raise RequestError(
                f"media_io_kwargs.video.frames_indices must list one index per frame ({len(frames)}).",
                param="media_io_kwargs",
            )
        times = [_number(i, "frames_indices", allow_zero=True) / fps for i in indices]
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise RequestError("Frame times must not decrease.", param="messages")
    # The window ends at `duration` (or total_num_frames / fps) if given, else one frame step after the last.
    duration = video_kwargs.get("duration")
    if duration is None and video_kwargs.get("total_num_frames") is not None:
        duration = _number(video_kwargs["total_num_frames"], "total_num_frames") / fps
    step = times[-1] - times[-2] if len(times) > 1 else 1.0 / fps
    end = max(times[-1], times[-1] + step if duration is None else _number(duration, "duration"))
    resized = _resize_to_grid(np.stack(frames), patch_factor)
    info = VideoInfo("", end, len(frames) / end if end > 0 else fps, len(frames), int(resized.shape[2]),
                     int(resized.shape[1]), 0, "mjpeg", "frames")
    return Clip(frames=resized, timestamps=tuple(times), window=Span(0.0, end), video=info,
                frame_indices=tuple(int(i) for i in indices) if indices is not None else ())


def _clip_from_file(path: Path, video_kwargs: dict[str, Any], patch_factor: int) -> Clip:
    from vidspan.video import SamplingConfig, sample_clip

    keys = ("fps", "num_frames", "min_frames", "max_frames")
    options = {key: video_kwargs[key] for key in keys if video_kwargs.get(key) is not None}
    try:
        config = SamplingConfig(patch_factor=patch_factor, **options)
    except (TypeError, ValueError) as exc:
        raise RequestError(f"Invalid media_io_kwargs.video: {exc}", param="media_io_kwargs") from None
    try:
        return sample_clip(path, config=config)
    except VidspanError as exc:
        raise RequestError(f"Cannot read the video in the request: {exc}", param="messages") from None


def _resize_to_grid(frames: Any, factor: int) -> Any:
    """Frames resized onto the model's ``factor`` grid, within the sampler's default pixel budget."""
    import numpy as np
    from PIL import Image

    from vidspan.video.plan import SamplingConfig, smart_resize

    height, width = int(frames.shape[1]), int(frames.shape[2])
    budget = SamplingConfig(patch_factor=factor)
    try:
        new_h, new_w = smart_resize(
            height, width, factor=factor, min_pixels=budget.min_pixels or 4 * factor * factor,
            max_pixels=budget.max_pixels,
        )
    except ValueError as exc:
        raise RequestError(f"Cannot use frames of {width}x{height} pixels: {exc}", param="messages") from None
    if (new_h, new_w) == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((new_w, new_h), Image.BICUBIC)) for f in frames])


def _number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        message = f"Invalid media_io_kwargs.video.{name}: {value!r}. It must be a positive number."
        raise RequestError(message, param="media_io_kwargs")
    return float(value)


# -- response -----------------------------------------------------------------------------------------------


def _completion_body(served_model: str, generation: Generation, request: ChatRequest) -> dict[str, Any]:
    """The OpenAI ``chat.completion`` object for one generation."""
    generated = generation.num_generated_tokens
    # A VideoModel does not say why it stopped: an answer that used the whole budget is taken as cut off.
    finish = "length" if generated is not None and generated >= request.max_tokens else "stop"
    logprobs = None
    if request.logprobs and generation.mean_logprob is not None:
        # A VideoModel reports only the mean log-probability, not per-token values or token strings. Answer
        # one entry per generated token, each carrying the mean (so a client's mean is exact), with the whole
        # text on the first entry and "" on the others (so the tokens still join to the content).
        tokens = [generation.text] + [""] * (max(1, generated or 1) - 1)
        entry = {"logprob": generation.mean_logprob, "top_logprobs": []}
        logprobs = {"content": [{"token": t, **entry, "bytes": list(t.encode("utf-8"))} for t in tokens]}
    message = {"role": "assistant", "content": generation.text}
    prompt_tokens, completion_tokens = generation.num_prompt_tokens or 0, generated or 0
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served_model,
        "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
