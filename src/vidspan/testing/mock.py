"""A scripted :class:`VideoModel` for tests and documentation examples.

It answers from a queue of canned replies (or a function of the clip and prompt) and records every call,
so tests can check what the model was shown: the window, the frame timestamps, the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidspan.models import families
from vidspan.models.base import Family, Generation, ModelSpec, VideoModel
from vidspan.models.registry import hookimpl
from vidspan.types import Clip, Span

Reply = str | Callable[[Clip, str], str]


@dataclass(frozen=True, slots=True)
class MockCall:
    """One recorded call."""

    window: Span
    timestamps: tuple[float, ...]
    frame_shape: tuple[int, ...]
    prompt: str
    max_new_tokens: int


class MockVideoModel(VideoModel):
    """Answers with canned replies; the last reply repeats when the queue runs out.

    Args:
        replies: Strings, or callables ``reply(clip, prompt) -> str``.
        family: The family whose prompts and output format the mock claims (default Marlin's).
        logprobs: Optional ``mean_logprob`` per reply (same order), to test ranking across windows.
        name: Registry name.
    """

    def __init__(
        self,
        replies: Sequence[Reply] = ("From 1.0 to 2.0.",),
        *,
        family: Family = families.MARLIN,
        logprobs: Sequence[float | None] | None = None,
        name: str = "mock",
    ):
        if not replies:
            raise ValueError("Invalid replies: []. It must hold at least one reply.")
        self.spec = ModelSpec(name=name, family=family, checkpoint="mock", backend="mock")
        self.replies = list(replies)
        self.logprobs = list(logprobs) if logprobs is not None else None
        self.history: list[MockCall] = []

    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        i = len(self.history)
        self.history.append(
            MockCall(clip.window, clip.timestamps, tuple(clip.frames.shape), prompt, max_new_tokens)
        )
        reply = self.replies[min(i, len(self.replies) - 1)]
        text = reply(clip, prompt) if callable(reply) else reply
        logprob = None
        if self.logprobs is not None:
            logprob = self.logprobs[min(i, len(self.logprobs) - 1)]
        return Generation(text=text, mean_logprob=logprob, timings={"generate": 0.0})

    def settings(self) -> dict[str, Any]:
        return super().settings() | {"mock": True}


class MockPlugin:
    """Registers a mock model under ``name`` through the real plugin manager (for CLI tests)."""

    def __init__(self, model: MockVideoModel):
        self.model = model

    @hookimpl
    def register_models(self, register: Callable[[ModelSpec], None]) -> None:
        register(self.model.spec)

    @hookimpl
    def register_backends(self, register: Callable[[str, Callable[..., VideoModel]], None]) -> None:
        register("mock", lambda spec, **options: self.model)
