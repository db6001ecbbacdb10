"""A model behind an OpenAI-compatible chat API (vLLM, SGLang, ``vidspan serve``, hosted chat APIs).

Only the standard library is used for HTTP. The clip reaches the server in one of three input modes:

- ``"video"``: the whole file as a ``video_url`` data URL; the server samples it itself. Used only when the
  clip covers the whole video; a window of a longer video falls back to ``"frames"``.
- ``"frames"``: the clip's own frames as a ``data:video/jpeg;base64,<f1>,<f2>,...`` frame list, with
  ``media_io_kwargs`` that state each frame's time in milliseconds (``fps=1000``, ``frames_indices`` =
  time in ms), so the model's timestamps are the true ones. vLLM only accepts per-request
  ``media_io_kwargs`` when it runs with ``--trust-request-mm-kwargs``.
- ``"images"``: one ``image_url`` part per frame, each after a ``"<t> seconds:"`` text label, for servers
  without video input.

Times sent to the server are relative to the start of the clip's window.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import math
import mimetypes
import os
import socket
import ssl
import time
import urllib.parse
from pathlib import Path
from typing import Any

from vidspan.errors import BackendConnectionError
from vidspan.http_replies import body_snippet, retry_after_seconds
from vidspan.models.base import Generation, ModelSpec, VideoModel
from vidspan.types import Clip

logger = logging.getLogger(__name__)

INPUT_MODES = ("video", "frames", "images")
MAX_RETRY_AFTER_SECONDS = 120.0
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_VIDEO_MIME = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
}


class _Retryable(Exception):
    """One failed attempt that may succeed when repeated (after ``delay_seconds`` if the server said so).

    ``what`` completes "The model server at URL ...", e.g. ``"answered HTTP 503: overloaded"``.
    """

    def __init__(self, what: str, delay_seconds: float | None = None):
        super().__init__(what)
        self.what = what
        self.delay_seconds = delay_seconds


class OpenAICompatModel(VideoModel):
    """A video model served over an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        spec: The model's spec (its family decides prompts and ``enable_thinking``).
        base_url: The API root, e.g. ``http://127.0.0.1:8000/v1``.
        served_model: The model name the server knows (the request's ``model`` field).
        api_key: Bearer token; defaults to ``$VIDSPAN_API_KEY``, then ``$OPENAI_API_KEY``.
        input_mode: ``"video"``, ``"frames"`` or ``"images"`` (see the module docstring).
        timeout_seconds: Limit for connecting and for every read from the socket.
        max_retries: Repeats after a 5xx, 408 or 429 reply or a reset connection.
        backoff_seconds: First wait between attempts; it doubles each time. ``Retry-After`` wins when sent.
        extra_body: Fields merged into every request (dict fields are merged one level deep); a ``None``
            value removes a field, e.g. ``{"logprobs": None}`` for servers that refuse it.
        jpeg_quality: JPEG quality of the frames sent in ``"frames"`` and ``"images"`` modes.
        media_io_kwargs: In ``"video"`` mode, send ``media_io_kwargs`` (the clip's sampling ``fps`` and
            ``max_frames``, updated with this dict). Off by default, since servers refuse it unless started
            with ``--trust-request-mm-kwargs``.

    Raises:
        ValueError: an invalid argument.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        base_url: str,
        served_model: str,
        api_key: str | None = None,
        input_mode: str = "video",
        timeout_seconds: float = 300.0,
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        extra_body: dict[str, Any] | None = None,
        jpeg_quality: int = 90,
        media_io_kwargs: dict[str, Any] | None = None,
    ):
        self.spec = spec
        self._url, self._basic_auth = _parse_base_url(base_url)
        self.base_url = self._url.geturl()
        self.served_model = served_model
        if not isinstance(served_model, str) or not served_model.strip():
            raise ValueError(f"Invalid served_model: {served_model!r}. It must be a non-empty model name.")
        if input_mode not in INPUT_MODES:
            raise ValueError(
                f"Invalid input_mode: {input_mode!r}. It must be one of {', '.join(INPUT_MODES)}."
            )
        self.input_mode = input_mode
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, (int, float))
            or not (math.isfinite(timeout_seconds) and timeout_seconds > 0)
        ):
            raise ValueError(f"Invalid timeout_seconds: {timeout_seconds!r}. It must be a positive number.")
        self.timeout_seconds = float(timeout_seconds)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"Invalid max_retries: {max_retries!r}. It must be an integer >= 0.")
        self.max_retries = max_retries
        if (
            isinstance(backoff_seconds, bool)
            or not isinstance(backoff_seconds, (int, float))
            or not (math.isfinite(backoff_seconds) and backoff_seconds >= 0)
        ):
            raise ValueError(f"Invalid backoff_seconds: {backoff_seconds!r}. It must be a number >= 0.")
        self.backoff_seconds = float(backoff_seconds)
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ValueError(f"Invalid extra_body: {extra_body!r}. It must be a dict of request fields.")
        self.extra_body = dict(extra_body or {})
        if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 0 < jpeg_quality <= 100:
            raise ValueError(f"Invalid jpeg_quality: {jpeg_quality!r}. It must be an integer from 1 to 100.")
        self.jpeg_quality = jpeg_quality
        if media_io_kwargs is not None and not isinstance(media_io_kwargs, dict):
            raise ValueError(
                f"Invalid media_io_kwargs: {media_io_kwargs!r}. It must be a dict such as "
                '{"video": {"fps": 2.0}}.'
            )
        self.media_io_kwargs = media_io_kwargs
        self._api_key = api_key or os.environ.get("VIDSPAN_API_KEY") or os.environ.get("OPENAI_API_KEY")

    # -- VideoModel -------------------------------------------------------------------------------------

    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        """Answer ``prompt`` about ``clip`` with greedy decoding on the server.

        Raises:
            BackendConnectionError: the server cannot be reached, times out, refuses the request, keeps
                failing after the retries, or sends an unusable reply.
        """
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"Invalid max_new_tokens: {max_new_tokens!r}. It must be a positive integer.")
        started = time.perf_counter()
        body = self.build_request(clip, prompt, max_new_tokens=max_new_tokens)
        payload = json.dumps(body).encode("utf-8")
        encoded = time.perf_counter()
        reply = self._post_with_retries("/chat/completions", payload)
        finished = time.perf_counter()
        generation = self._read_reply(reply)
        timings = {"encode": encoded - started, "request": finished - encoded}
        return Generation(
            text=generation.text,
            mean_logprob=generation.mean_logprob,
            num_prompt_tokens=generation.num_prompt_tokens,
            num_generated_tokens=generation.num_generated_tokens,
            timings=timings,
        )

    def settings(self) -> dict[str, Any]:
        """The server, served name, input mode and the family's prompts (never the API key)."""
        family = self.family
        return {
            **super().settings(),
            "base_url": self.base_url,
            "served_model": self.served_model,
            "input_mode": self.input_mode,
            "family": family.name,
            "caption_prompt": family.caption_prompt,
            "find_prompt": family.find_prompt,
            "enable_thinking": family.enable_thinking,
            "jpeg_quality": self.jpeg_quality,
        }

    # -- request ----------------------------------------------------------------------------------------

    def build_request(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> dict[str, Any]:
        """The JSON body of the chat request for ``clip`` and ``prompt`` (without sending it)."""
        body: dict[str, Any] = {
            "model": self.served_model,
            "temperature": 0,
            "max_tokens": max_new_tokens,
            "logprobs": True,
        }
        mode = self.input_mode
        if mode == "video" and not _covers_whole_video(clip):
            logger.info(
                "window %.2f-%.2f s does not cover all of %s: sending its frames instead of the file",
                clip.window.start,
                clip.window.end,
                clip.video.path,
            )
            mode = "frames"
        if mode == "video":
            parts = [{"type": "video_url", "video_url": {"url": _file_data_url(clip.video.path)}}]
            if self.media_io_kwargs is not None:
                body["media_io_kwargs"] = _video_media_io_kwargs(clip, self.media_io_kwargs)
        elif mode == "frames":
            frames = ",".join(_jpeg_base64(f, self.jpeg_quality) for f in clip.frames)
            parts = [{"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + frames}}]
            body["media_io_kwargs"] = {"video": _frame_list_metadata(clip)}
        else:
            parts = []
            for frame, t in zip(clip.frames, clip.timestamps, strict=False):
                parts.append({"type": "text", "text": f"{t - clip.window.start:.1f} seconds:"})
                url = "data:image/jpeg;base64," + _jpeg_base64(frame, self.jpeg_quality)
                parts.append({"type": "image_url", "image_url": {"url": url}})
        parts.append({"type": "text", "text": prompt})
        body["messages"] = [{"role": "user", "content": parts}]
        if self.family.enable_thinking is not None:
            body["chat_template_kwargs"] = {"enable_thinking": self.family.enable_thinking}
        return _merge(body, self.extra_body)

    # -- transport --------------------------------------------------------------------------------------

    def _post_with_retries(self, path: str, payload: bytes) -> dict[str, Any]:
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._post(path, payload)
            except _Retryable as failure:
                if attempt + 1 >= attempts:
                    tries = f" ({attempts} attempts)" if attempts > 1 else ""
                    raise BackendConnectionError(
                        f"The model server at {self.base_url} {_sentence(failure.what + tries)}"
                    ) from failure.__cause__
                delay = failure.delay_seconds
                if delay is None:
                    delay = self.backoff_seconds * 2**attempt
                logger.info(
                    "the model server at %s %s; retrying in %.2f s (attempt %d of %d)",
                    self.base_url,
                    failure.what,
                    delay,
                    attempt + 2,
                    attempts,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, path: str, payload: bytes) -> dict[str, Any]:
        """One attempt; raises ``_Retryable`` for failures worth repeating, else BackendConnectionError."""
        url = self._url
        where = self.base_url
        target = url.path.rstrip("/") + path
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "vidspan"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif self._basic_auth:
            headers["Authorization"] = self._basic_auth
        conn: http.client.HTTPConnection
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(
                url.hostname, url.port, timeout=self.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout_seconds)
        try:
            try:
                conn.request("POST", target, body=payload, headers=headers)
                response = conn.getresponse()
                status = response.status
                retry_after = response.getheader("Retry-After")
                location_header = response.getheader("Location") or ""
                raw = response.read()
            except ConnectionRefusedError as exc:
                raise BackendConnectionError(
                    f"Cannot connect to the model server at {where}: connection refused. Is it running?"
                ) from exc
            except TimeoutError as exc:
                raise BackendConnectionError(
                    f"The model server at {where} did not answer within {self.timeout_seconds:g} seconds. "
                    "Raise timeout_seconds or send a shorter clip."
                ) from exc
            except socket.gaierror as exc:
                raise BackendConnectionError(
                    f"Cannot connect to the model server at {where}: unknown host {url.hostname!r}."
                ) from exc
            except ssl.SSLError as exc:
                raise BackendConnectionError(
                    f"Cannot connect to the model server at {where}: TLS error ({exc.reason or exc})."
                ) from exc
            except (ConnectionError, http.client.IncompleteRead, http.client.BadStatusLine) as exc:
                # Reset or closed mid-request (a restarting server, an overloaded proxy): worth repeating.
                raise _Retryable(f"closed the connection ({type(exc).__name__}: {exc})") from exc
            except (OSError, http.client.HTTPException) as exc:
                message = f"Cannot connect to the model server at {where}: {exc}."
                raise BackendConnectionError(message) from exc
        finally:
            conn.close()
        if 300 <= status < 400:
            location = f" to {redirect}" if (redirect := body_snippet(location_header.encode())) else ""
            raise BackendConnectionError(
                f"The model server at {where} answered with a redirect (HTTP {status}){location}. "
                "Pass the final URL as base_url."
            )
        if status >= 400:
            message = _server_message(raw)
            what = f"answered HTTP {status}" + (f": {message.rstrip('.')}" if message else "")
            if status in _RETRY_STATUSES or status >= 500:
                raise _Retryable(what, _capped(retry_after_seconds(retry_after)))
            raise BackendConnectionError(f"The model server at {where} {_sentence(what)}")
        try:
            reply = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BackendConnectionError(
                f"The model server at {where} sent a reply that is not valid JSON: {body_snippet(raw)!r}."
            ) from exc
        if not isinstance(reply, dict):
            raise BackendConnectionError(
                f"The model server at {where} sent a reply that is not a JSON object: {body_snippet(raw)!r}."
            )
        return reply

    def _read_reply(self, reply: dict[str, Any]) -> Generation:
        where = self.base_url
        choices = reply.get("choices")
        if not isinstance(choices, list) or not choices:
            message = f"The model server returned an empty reply (no choices) from {where}."
            raise BackendConnectionError(message)
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        content = message.get("content")
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content:  # whitespace is an answer; the parsers judge it
            reason = choice.get("finish_reason")
            detail = f"no content, finish_reason {reason!r}" if reason else "no content"
            raise BackendConnectionError(f"The model server returned an empty reply ({detail}) from {where}.")
        logprobs = choice.get("logprobs")
        values: list[float] = []
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            for entry in logprobs["content"]:
                value = entry.get("logprob") if isinstance(entry, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    values.append(float(value))
        usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
        return Generation(
            text=content,
            mean_logprob=sum(values) / len(values) if values else None,
            num_prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            num_generated_tokens=_int_or_none(usage.get("completion_tokens")),
        )


# -- helpers --------------------------------------------------------------------------------------------


def _parse_base_url(base_url: str) -> tuple[urllib.parse.SplitResult, str | None]:
    """The URL without credentials, and a Basic ``Authorization`` header made of them (if any)."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(
            f"Invalid base_url: {base_url!r}. It must be an http(s) URL such as http://127.0.0.1:8000/v1."
        )
    url = urllib.parse.urlsplit(base_url.strip().rstrip("/"))
    if url.scheme not in ("http", "https"):
        raise ValueError(
            f"Invalid base_url: {base_url!r}. It must start with http:// or https://, "
            "e.g. http://127.0.0.1:8000/v1."
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
    host = url.hostname if ":" not in url.hostname else f"[{url.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    basic_auth = None
    if url.username is not None:
        userinfo = f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password or '')}"
        basic_auth = "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")
    return urllib.parse.SplitResult(url.scheme, netloc, url.path, "", ""), basic_auth


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _covers_whole_video(clip: Clip) -> bool:
    """True when the window spans the video from its first to its last frame (within one frame)."""
    video = clip.video
    if not video.path or not Path(video.path).is_file() or video.duration_seconds <= 0:
        return False
    slack = max(0.05, 1.0 / video.fps if video.fps and video.fps > 0 else 0.0)
    start = max(0.0, video.start_seconds)
    return clip.window.start <= start + slack and clip.window.end >= start + video.duration_seconds - slack


def _file_data_url(path: str) -> str:
    suffix = Path(path).suffix.lower()
    mime = _VIDEO_MIME.get(suffix) or mimetypes.guess_type(path)[0] or "video/mp4"
    data = Path(path).read_bytes()
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _video_media_io_kwargs(clip: Clip, options: dict[str, Any]) -> dict[str, Any]:
    """``{"video": {"fps", "max_frames"}}`` that reproduce the clip's sampling, updated by ``options``."""
    duration = clip.window.duration
    fps = round(clip.num_frames / duration, 4) if duration > 0 else 2.0
    video = {"fps": fps, "max_frames": clip.num_frames}
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in options.items()}
    merged["video"] = {**video, **(options.get("video") or {})}
    return merged


def _frame_list_metadata(clip: Clip) -> dict[str, Any]:
    """Frame times in the millisecond convention: ``fps=1000`` and ``frames_indices`` = time in ms."""
    start = clip.window.start
    indices = [max(0, round((t - start) * 1000)) for t in clip.timestamps]
    total = max(round(clip.window.duration * 1000), (indices[-1] + 1) if indices else 1)
    return {
        "fps": 1000.0,
        "frames_indices": indices,
        "total_num_frames": total,
        "duration": clip.window.duration,
        "do_sample_frames": False,
    }


def _jpeg_base64(frame: Any, quality: int) -> str:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGB").save(
        buffer, format="JPEG", quality=quality
    )
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _merge(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(body)
    for key, value in extra.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _server_message(raw: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else a short snippet of the body."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return body_snippet(raw)
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(error.get(key), str):
                    return error[key].strip()
        if isinstance(error, str):
            return error.strip()
        if isinstance(data.get("detail"), str):
            return data["detail"].strip()
    return body_snippet(raw)


def _capped(seconds: float | None) -> float | None:
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
