"""What every model backend implements, and what a model family declares about itself."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vidspan.types import Clip

logger = logging.getLogger(__name__)

TimeEncoding = Literal["text-markers", "mrope", "frame-prefix", "frame-timestamps"]
OutputFormat = Literal["marlin", "timelens"]


@dataclass(frozen=True, slots=True)
class Family:
    """How a family of checkpoints is prompted and how it answers.

    Attributes:
        name: Family id, e.g. ``"marlin"``, ``"qwen3-vl"``.
        patch_factor: Pixels per merged vision token side (28 for Qwen2.5-VL, 32 for Qwen3.x).
        time_encoding: How the model is told the time of each frame: ``"text-markers"`` (Qwen3-VL /
            Qwen3.5 ``<t seconds>`` before each 2-frame patch), ``"mrope"`` (Qwen2.5-VL absolute-time
            rotary positions), ``"frame-prefix"`` (TimeLens-7B text timestamps before every frame),
            ``"frame-timestamps"`` (Molmo2: ``f"{t:.1f} "`` written by its processor before every frame).
        caption_prompt: The prompt for :func:`vidspan.caption`.
        find_prompt: The prompt for :func:`vidspan.find`; ``{event}`` is replaced by the query.
        output_format: ``"marlin"`` (``Scene:``/``Events:``/``<a - b>``, ``From a to b.``) or
            ``"timelens"`` (``The event happens in a - b seconds.``).
        strip_think: Remove a leading ``<think>`` block from answers.
        caption_max_new_tokens: Default generation budget for captions.
        find_max_new_tokens: Default generation budget for grounding answers.
        outer_vision_wrapper: Keep the chat template's outer ``<|vision_start|>``/``<|vision_end|>`` pair
            around Qwen3.x video groups (transformers >= 5.10 behaviour). ``False`` reproduces the prompt
            the models were trained on (only ``<|video_pad|>`` is expanded).
        enable_thinking: Value of the chat template's ``enable_thinking`` switch, or ``None`` to not pass it.
    """

    name: str
    patch_factor: int
    time_encoding: TimeEncoding
    caption_prompt: str
    find_prompt: str
    output_format: OutputFormat = "marlin"
    strip_think: bool = False
    caption_max_new_tokens: int = 2048
    find_max_new_tokens: int = 64
    outer_vision_wrapper: bool = False
    enable_thinking: bool | None = None

    def render_find_prompt(self, event: str, template: str | None = None) -> str:
        """The grounding prompt for a query: ``template`` (default: the family's) with ``{event}`` filled."""
        return (self.find_prompt if template is None else template).replace("{event}", event.strip())


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One named model: a checkpoint (hub id or local directory) of a family, served by a backend."""

    name: str
    family: Family
    checkpoint: str
    backend: str = "transformers"
    aliases: tuple[str, ...] = ()
    description: str = ""
    gated: bool = False


@dataclass(frozen=True, slots=True)
class Generation:
    """One answer from a model.

    ``mean_logprob`` is the mean log-probability of the generated tokens when the backend reports it.
    """

    text: str
    mean_logprob: float | None = None
    num_prompt_tokens: int | None = None
    num_generated_tokens: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


class VideoModel(ABC):
    """A loaded model that answers prompts about a clip.

    Subclasses implement :meth:`generate`. :meth:`generate_many` may be overridden to share work between
    several prompts about the same clip (the default calls :meth:`generate` once per prompt).
    """

    spec: ModelSpec

    @property
    def name(self) -> str:
        """Registry name of the model."""
        return self.spec.name

    @property
    def family(self) -> Family:
        """The model's family (prompts, time encoding, output format)."""
        return self.spec.family

    @abstractmethod
    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        """Answer ``prompt`` about ``clip`` with greedy decoding."""

    def generate_many(self, clip: Clip, prompts: Sequence[str], *, max_new_tokens: int) -> list[Generation]:
        """Answer several prompts about the same clip."""
        return [self.generate(clip, p, max_new_tokens=max_new_tokens) for p in prompts]

    def settings(self) -> dict[str, Any]:
        """Everything that shapes the answers, for the record (prompts, versions, device, dtype)."""
        return {"model": self.spec.name, "checkpoint": self.spec.checkpoint, "backend": self.spec.backend}
