"""Molmo2 (Allen AI) through transformers' own ``molmo2`` classes: points, counts and tracks in video.

The frames arrive sampled (a :class:`~vidspan.types.Clip`) and go to ``Molmo2Processor`` as they are, with
millisecond metadata (``fps=1000``, ``frames_indices`` = milliseconds since the window start), so the
timestamp the processor writes before each frame (``f"{t:.1f} "``, Molmo2's per-frame-compact mode,
``frame_index / fps``) is the frame's true presentation time in the window, also on variable-frame-rate
files. Unlike the Qwen towers, Molmo2 takes any number of frames (no padding to pairs) and resizes each
frame to its own crop size, so the clip's frames need no particular multiple. Checkpoint code is never run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from vidspan.models.base import Generation
from vidspan.models.transformers_backend import PromptInputs, TransformersModel, clip_to_video_inputs
from vidspan.types import Clip

logger = logging.getLogger(__name__)

VIDEO_TOKEN = "<|video|>"


class Molmo2Model(TransformersModel):
    """A Molmo2 checkpoint run in-process (greedy decoding); same arguments as :class:`TransformersModel`."""

    def chat_text(self, prompt: str) -> str:
        """The chat template's text for one user turn: the video, then ``prompt``."""
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def build_many(self, clip: Clip, prompts: Sequence[str]) -> list[PromptInputs]:
        """The processor inputs for each prompt about ``clip`` (the video is processed per prompt)."""
        frames, meta = clip_to_video_inputs(clip, pad_to_pairs=False)
        built = []
        for prompt in prompts:
            text = self.chat_text(prompt)
            inputs = self.processor(
                text=[text],
                videos=[frames],
                video_metadata=[meta],
                do_sample_frames=False,
                return_tensors="pt",
            )
            expanded = self.processor.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=False)
            built.append(
                PromptInputs(inputs=inputs, text=expanded, chat_text=text, outer_vision_wrapper=None)
            )
        return built

    def generate_many(self, clip: Clip, prompts: Sequence[str], *, max_new_tokens: int) -> list[Generation]:
        if max_new_tokens < 1:
            raise ValueError(f"Invalid max_new_tokens={max_new_tokens}. It must be at least 1.")
        started = time.perf_counter()
        built = self.build_many(clip, prompts)
        preprocess = (time.perf_counter() - started) / max(1, len(built))
        return [self._generate_one(b, max_new_tokens, preprocess) for b in built]

    def settings(self) -> dict[str, Any]:
        vp = self.processor.video_processor
        size = getattr(vp, "size", None)
        return super().settings() | {
            "frame_timestamps": "per-frame-compact (f'{t:.1f} ')",
            "processor_frame_size": dict(size) if size is not None else None,
        }

    def _vision_tokens(self) -> tuple[str, str, str]:
        return ("<frame_start>", "<frame_end>", getattr(self.processor, "video_token", VIDEO_TOKEN))

    def _check_frame_size(self, frames: Any) -> None:  # Molmo2 resizes every frame to its crop size
        return None
