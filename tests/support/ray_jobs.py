"""Models for the Ray tests. They live in a module (not in a test file) so Ray workers can import them:
the tests put this folder on the workers' PYTHONPATH."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

from vidspan.models.base import Generation
from vidspan.testing.mock import MockVideoModel
from vidspan.types import Clip

ANSWERS = {
    "a hand moves to the mouth": "From 0.0 to 1.0.",
    "the hand goes down": "From 1.5 to 1.0.",
    "a car enters": "it enters at about 4 s to 8 s",
    "a person walks in": "From 24.6 to 30.4.",
}


def grounding_reply(clip: Clip, prompt: str) -> str:
    """A scripted answer per query, the same in every process."""
    for query, answer in ANSWERS.items():
        if f'"{query}"' in prompt:
            return answer
    return "no idea"


def caption_reply(clip: Clip, prompt: str) -> str:
    """A caption that depends only on the window (so every process writes the same one)."""
    start, end = 0.0, math.floor(clip.window.duration * 10) / 10
    name = Path(clip.video.path).stem
    return f"Scene: {name}.\nEvents:\n<{start} - {end}> Something happens in {name}.\n"


class KillableModel(MockVideoModel):
    """Answers like the scripted mock, but the first process to see ``victim`` SIGKILLs itself there.

    Whether the kill has happened is a file (``marker``), so the restarted actor answers normally.
    """

    def __init__(self, reply, victim: str, marker: str, **kwargs):
        super().__init__([reply], **kwargs)
        self.victim, self.marker = victim, marker

    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        if Path(clip.video.path).stem == self.victim and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().generate(clip, prompt, max_new_tokens=max_new_tokens)


class ScriptedEngine:
    """Stands in for Ray's vLLM stages (the GPU edge): reads a caption row's request as vLLM would (a
    JPEG frame list timed at the row's ``fps``) and answers on that clock, one event from the first frame
    to the last; the rows of the videos in ``refuse`` come back as engine error rows."""

    def __init__(self, refuse: tuple[int, ...] = ()):
        self.refuse = refuse

    def __call__(self, row: dict) -> dict:
        url = row["messages"][0]["content"][0]["video_url"]["url"]
        head, _, frames = url.partition(",")
        assert head == "data:video/jpeg;base64", head
        n = len(frames.split(","))
        out = {k: v for k, v in row.items() if k not in ("messages", "sampling_params")}
        if int(row["key"]) in self.refuse:
            error = "prompt is longer than max_model_len\nsecond line"
            return out | {"generated_text": "", "__inference_error__": error}
        last = (n - 1) / row["fps"]
        text = f"Scene: {n} frames.\nEvents:\n<0.0 - {last:.2f}> Frames one to {n}.\n"
        return out | {"generated_text": text, "__inference_error__": None}


def distinct_letters_reward(prompts: list, completions: list, **_columns) -> list[float]:
    """A TRL-signature reward that tells a tiny random policy's completions apart: distinct letters used."""
    return [float(len({c for c in text.lower() if c.isalpha()})) for text in completions]
