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
import json
import logging
import mimetypes
import os
import time
from pathlib import Path
from typing import Any

from vidspan.errors import BackendConnectionError
from vidspan.http import Peer, check_transport_options, parse_base_url, post_json
from vidspan.models.base import Generation, ModelSpec, VideoModel
from vidspan.models.openai import wire
from vidspan.types import Clip

logger = logging.getLogger(__name__)

INPUT_MODES = ("video", "frames", "images")
MAX_RETRY_AFTER_SECONDS = 120.0
# a timeout is not retried: a server that could not answer this clip in time will not do better at once
MODEL_SERVER = Peer(
    "model server", BackendConnectionError, retry_timeouts=False, retry_bad_json=False,
    timeout_hint="Raise timeout_seconds or send a shorter clip.", refused_hint="Is it running?",
    redirect_hint="Pass the final URL as base_url.",
)  # fmt: skip
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
        self.base_url, self._basic_auth = parse_base_url(base_url, allow_credentials=True)
        self.served_model = served_model
        if not isinstance(served_model, str) or not served_model.strip():
            raise ValueError(f"Invalid served_model: {served_model!r}. It must be a non-empty model name.")
        if input_mode not in INPUT_MODES:
            raise ValueError(
                f"Invalid input_mode: {input_mode!r}. It must be one of {', '.join(INPUT_MODES)}."
            )
        self.input_mode = input_mode
        check_transport_options(timeout_seconds, max_retries, backoff_seconds)
        self.timeout_seconds = float(timeout_seconds)
        self.max_retries = max_retries
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
        reply = self._post("/chat/completions", payload)
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
            url = wire.frame_list_url(wire.encode_jpeg(f, self.jpeg_quality) for f in clip.frames)
            parts = [{"type": "video_url", "video_url": {"url": url}}]
            body["media_io_kwargs"] = {"video": wire.frame_list_metadata(clip)}
        else:
            parts = wire.timestamped_image_parts(
                (t - clip.window.start, wire.encode_jpeg(frame, self.jpeg_quality))
                for frame, t in zip(clip.frames, clip.timestamps, strict=False)
            )
        parts.append({"type": "text", "text": prompt})
        body["messages"] = [{"role": "user", "content": parts}]
        if self.family.enable_thinking is not None:
            body["chat_template_kwargs"] = {"enable_thinking": self.family.enable_thinking}
        return _merge(body, self.extra_body)

    # -- transport --------------------------------------------------------------------------------------

    def _post(self, path: str, payload: bytes) -> dict[str, Any]:
        headers = {}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif self._basic_auth:
            headers["Authorization"] = self._basic_auth
        return post_json(
            self.base_url + path, payload, peer=MODEL_SERVER, headers=headers, where=self.base_url,
            timeout_seconds=self.timeout_seconds, max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds, max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
        )  # fmt: skip

    def _read_reply(self, reply: dict[str, Any]) -> Generation:
        read = wire.read_reply(reply)
        if not read.has_choice:
            message = f"The model server returned an empty reply (no choices) from {self.base_url}."
            raise BackendConnectionError(message)
        if not read.text:  # whitespace is an answer; the parsers judge it
            reason = read.finish_reason
            detail = f"no content, finish_reason {reason!r}" if reason else "no content"
            raise BackendConnectionError(
                f"The model server returned an empty reply ({detail}) from {self.base_url}."
            )
        return Generation(
            text=read.text,
            mean_logprob=read.mean_logprob,
            num_prompt_tokens=read.prompt_tokens,
            num_generated_tokens=read.completion_tokens,
        )


# -- helpers --------------------------------------------------------------------------------------------


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
