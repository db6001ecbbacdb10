"""The OpenAI chat format that vidspan's client, server and OpenAI-compatible judge all speak.

One spelling for each piece, so the two ends cannot drift apart:

- a frame shown as an image is a ``"<t> seconds:"`` text part followed by its ``image_url`` part
  (:func:`timestamped_image_parts`; the server reads the label back with :data:`TIME_LABEL`);
- JPEG frames travel as base64 data URLs, one per image or all in one ``data:video/jpeg;base64,<f1>,<f2>``
  frame list whose times are stated in milliseconds (:func:`frame_list_metadata`);
- a reply's text, usage and token log-probabilities are read by :func:`read_reply`, which accepts the
  content-parts form some servers send.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vidspan.types import Clip

# "<t> seconds:" as written by frame_label, and the looser forms other clients send ("3 s", "<3.0 sec>:")
TIME_LABEL = re.compile(r"^\s*<?\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\s*>?\s*:?\s*$", re.IGNORECASE)


def frame_label(seconds: float) -> str:
    """The text part that times the image after it."""
    return f"{seconds:.1f} seconds:"


def jpeg_data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def timestamped_image_parts(frames: Iterable[tuple[float, bytes]]) -> list[dict[str, Any]]:
    """``[label, image, label, image, ...]`` content parts for ``(seconds, jpeg bytes)`` frames."""
    parts: list[dict[str, Any]] = []
    for seconds, jpeg in frames:
        parts.append({"type": "text", "text": frame_label(seconds)})
        parts.append({"type": "image_url", "image_url": {"url": jpeg_data_url(jpeg)}})
    return parts


def encode_jpeg(frame: Any, quality: int) -> bytes:
    """One uint8 RGB frame as JPEG bytes."""
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGB").save(
        buffer, format="JPEG", quality=quality
    )
    return buffer.getvalue()


def frame_list_url(jpegs: Iterable[bytes]) -> str:
    """All frames in one ``video_url``: ``data:video/jpeg;base64,<f1>,<f2>,...`` (vLLM's frame-list form)."""
    return "data:video/jpeg;base64," + ",".join(base64.b64encode(j).decode("ascii") for j in jpegs)


def frame_list_metadata(clip: Clip) -> dict[str, Any]:
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


@dataclass(frozen=True)
class Reply:
    """What a chat-completions reply says: the first choice's text and the request's usage."""

    text: str
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    served_model: str | None
    mean_logprob: float | None
    has_choice: bool


def read_reply(reply: dict[str, Any]) -> Reply:
    """Read ``choices[0]`` (content string or content parts), ``usage``, ``model`` and token logprobs."""
    choices = reply.get("choices")
    has_choice = isinstance(choices, list) and bool(choices)
    choice = _object(choices[0]) if has_choice else {}
    message = _object(choice.get("message"))
    content = message.get("content")
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    usage = _object(reply.get("usage"))
    served = reply.get("model")
    reason = choice.get("finish_reason")
    refusal = message.get("refusal")
    return Reply(
        text=content if isinstance(content, str) else "",
        finish_reason=reason if isinstance(reason, str) else None,
        refusal=refusal if isinstance(refusal, str) and refusal else None,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        served_model=served if isinstance(served, str) and served else None,
        mean_logprob=_mean_logprob(choice.get("logprobs")),
        has_choice=has_choice,
    )


def _mean_logprob(logprobs: Any) -> float | None:
    values: list[float] = []
    if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
        for entry in logprobs["content"]:
            value = entry.get("logprob") if isinstance(entry, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                values.append(float(value))
    return sum(values) / len(values) if values else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
