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
