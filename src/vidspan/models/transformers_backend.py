"""Local inference with Hugging Face transformers: Qwen2.5-VL, Qwen3-VL, Qwen3.5, Marlin-2B (and Molmo2, in
``vidspan.models.molmo2``).

Frames arrive already sampled and sized (a :class:`~vidspan.types.Clip`), so the processor neither samples
nor resizes. Each frame's true presentation time reaches the processor through millisecond metadata
(``fps=1000``, ``frames_indices`` = milliseconds since the window start), so Qwen3.x ``<t seconds>`` markers
are correct on variable-frame-rate files and start at 0 for every window.

Checkpoint code is never executed: Marlin-2B (``MarlinForConditionalGeneration``) loads through the stock
``Qwen3_5ForConditionalGeneration``, which its remote class subclasses without changing the forward pass.

Decoded answers drop special tokens except ``<think>`` / ``</think>``, which are kept whatever the tokenizer
marks them as, so a leading think block looks the same for every checkpoint (vidspan's parser strips it).
``mean_logprob`` averages, over every generated token including a final end-of-sequence token, the
log-softmax of the scores the token was chosen from (after the checkpoint's logits processors, e.g. a
repetition penalty). Decoding is greedy, so the chosen token is the arg-max: a logits processor records
the maximum log-probability at each step instead of keeping every step's full-vocabulary scores (which
would cost about 2 GB for 2,048 tokens of a 248k vocabulary).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.errors import MissingDependencyError, ModelError
from vidspan.models.base import Generation, ModelSpec, VideoModel
from vidspan.models.hub import resolve_checkpoint
from vidspan.models.torchvision_compat import ensure_torchvision
from vidspan.types import Clip

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "The transformers backend needs torch and transformers>=5.7. "
    "Install with: pip install torch==2.13.0 'vidspan[qwen]'"
)
MIN_TRANSFORMERS = (5, 7)
MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen3_5": "Qwen3_5ForConditionalGeneration",
    "molmo2": "Molmo2ForConditionalGeneration",
}
REMOTE_ARCHITECTURES = {"MarlinForConditionalGeneration": "qwen3_5"}
KEPT_SPECIAL_TOKENS = ("<think>", "</think>")
_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}
_TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


@dataclass(frozen=True)
class PromptInputs:
    """What the model is given for one prompt about one clip.

    Attributes:
        inputs: The processor's ``BatchFeature`` (input ids, pixel values, grid sizes, ...), on the CPU.
        text: The expanded prompt exactly as tokenized (special tokens and ``<t seconds>`` markers included).
        chat_text: The chat template's output after the outer-wrapper choice, before video expansion.
        outer_vision_wrapper: Whether the expanded Qwen3.x prompt has an outer ``<|vision_start|>`` ...
            ``<|vision_end|>`` pair around the timestamped groups (``None`` for other time encodings).
    """

    inputs: Any
    text: str
    chat_text: str
    outer_vision_wrapper: bool | None

    @property
    def num_prompt_tokens(self) -> int:
        """Length of the tokenized prompt."""
        return int(self.inputs["input_ids"].shape[-1])


def import_backend() -> tuple[Any, Any]:
    """``(torch, transformers)``, or :class:`MissingDependencyError` when either is missing or too old."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(INSTALL_HINT) from exc
    version = tuple(int(p) for p in re.findall(r"\d+", transformers.__version__)[:2])
    if version < MIN_TRANSFORMERS:
        raise MissingDependencyError(INSTALL_HINT)
    ensure_torchvision()  # before any video processor imports it
    return torch, transformers


def clip_to_video_inputs(clip: Clip, *, pad_to_pairs: bool = True) -> tuple[Any, Any]:
    """``(frames, VideoMetadata)`` for the processor, timed in milliseconds since the clip's window start.

    With ``pad_to_pairs`` an odd number of frames is made even by repeating the last frame and its time,
    since the Qwen vision towers merge frames in pairs (Molmo2 takes any count: it passes False).
    """
    import numpy as np
    from transformers.video_utils import VideoMetadata

    frames = np.asarray(clip.frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"Invalid clip frames: shape {frames.shape}, dtype {frames.dtype}. "
            "They must be uint8 (T, H, W, 3) with T >= 1."
        )
    times = list(clip.timestamps)
    if pad_to_pairs and len(frames) % 2:
        frames = np.concatenate([frames, frames[-1:]])
        times.append(times[-1])
    start = clip.window.start
    indices = [max(0, round((t - start) * 1000)) for t in times]
    meta = VideoMetadata(
        total_num_frames=max(round(clip.window.duration * 1000), indices[-1] + 1),
        fps=1000.0,
        frames_indices=indices,
        duration=clip.window.duration,
        height=int(frames.shape[1]),
        width=int(frames.shape[2]),
    )
    return frames, meta


class TransformersModel(VideoModel):
    """A Qwen-family video model run in-process with transformers (greedy decoding).

    Args:
        spec: The model's registry entry; ``spec.checkpoint`` is a local directory or a Hub id.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; default CUDA when available, else CPU.
        dtype: ``"bfloat16"``, ``"float16"`` or ``"float32"``; default bfloat16 on CUDA (float16 where the
            GPU lacks bfloat16) and float32 on CPU.

    Raises:
        MissingDependencyError: torch or transformers is missing.
        ModelUnavailableError: The checkpoint cannot be found or downloaded.
        ModelError: The checkpoint's ``model_type`` is not supported, or loading failed.
    """

    def __init__(self, spec: ModelSpec, *, device: str | None = None, dtype: str | None = None):
        self.spec = spec
        if spec.family.time_encoding == "frame-prefix":
            raise ModelError(
                f"The transformers backend does not support {spec.name}'s frame-prefix time encoding "
                "(TimeLens-7B) yet."
            )
        # where the weights are comes first: without them nothing else matters, and finding out needs
        # no torch import
        self.checkpoint_dir = resolve_checkpoint(spec.checkpoint)
        torch, transformers = import_backend()
        self.model_type, class_name = _model_class_name(self.checkpoint_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _dtype_name(dtype, self.device, torch)
        try:
            model_class = getattr(transformers, class_name)
            self.processor = transformers.AutoProcessor.from_pretrained(
                self.checkpoint_dir, local_files_only=True
            )
            self.model = model_class.from_pretrained(
                self.checkpoint_dir, local_files_only=True, dtype=getattr(torch, self.dtype)
            )
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            raise ModelError(f"Cannot load {spec.name} from {self.checkpoint_dir}: {exc}") from exc
        self.model.to(self.device)
        self.model.eval()
        self.eos_token_ids = _eos_token_ids(self.model, self.processor.tokenizer)
        tokenizer = self.processor.tokenizer
        kept = {tokenizer.convert_tokens_to_ids(t) for t in KEPT_SPECIAL_TOKENS if t in tokenizer.get_vocab()}
        self._dropped_ids = set(tokenizer.all_special_ids) - kept
        self._outer_wrapper_seen: bool | None = None
        logger.info(
            "Loaded %s (%s) from %s on %s/%s",
            spec.name,
            class_name,
            self.checkpoint_dir,
            self.device,
            self.dtype,
        )

    # -- prompts -------------------------------------------------------------------------------------

    def chat_text(self, prompt: str) -> str:
        """The chat template's text for one user turn (video first, then ``prompt``), before video expansion.

        For Qwen3.x text-marker families with ``outer_vision_wrapper=False`` the template's
        ``<|vision_start|><|video_pad|><|vision_end|>`` becomes a bare ``<|video_pad|>``; every transformers
        version then expands it without an outer pair, as the models were trained.
        """
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
        thinking = self.family.enable_thinking
        kwargs = {} if thinking is None else {"enable_thinking": thinking}
        text = self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **kwargs
        )
        if self.family.time_encoding == "text-markers" and not self.family.outer_vision_wrapper:
            start, end, video = self._vision_tokens()
            text = text.replace(start + video + end, video)
        return text

    def build_inputs(self, clip: Clip, prompt: str) -> PromptInputs:
        """The processor inputs and the expanded prompt text for ``prompt`` about ``clip``."""
        return self.build_many(clip, [prompt])[0]

    def build_many(self, clip: Clip, prompts: Sequence[str]) -> list[PromptInputs]:
        """:meth:`build_inputs` for several prompts, running the video processor once."""
        if not prompts:
            return []
        frames, meta = clip_to_video_inputs(clip)
        self._check_frame_size(frames)
        texts = [self.chat_text(p) for p in prompts]
        # The processor can report the text it expanded the video into (ProcessorMixin's
        # return_text_replacement_offsets); later prompts then reuse the processed video tensors.
        share = len(texts) > 1 and hasattr(type(self.processor), "return_text_replacement_offsets")
        extra = {"return_text_replacement_offsets": True} if share else {}
        first = self._process(texts[0], frames, meta, **extra)
        offsets = first.pop("text_replacement_offsets", None) or [[]]
        replacements = [o["replacement"] for o in offsets[0] if o.get("type") == "video"]
        video_part = {k: v for k, v in first.items() if k not in _TEXT_KEYS}
        _, _, video_token = self._vision_tokens()
        built = [self._prompt_inputs(first, texts[0])]
        for text in texts[1:]:
            if replacements:
                inputs = self._tokenize(text.replace(video_token, replacements[0], 1), set(first.keys()))
                inputs.update(video_part)
            else:  # processors that cannot report it: process the video again
                inputs = self._process(text, frames, meta)
            built.append(self._prompt_inputs(inputs, text))
        return built

    def _process(self, text: str, frames: Any, meta: Any, **extra: Any) -> Any:
        return self.processor(
            text=[text],
            videos=[frames],
            video_metadata=[meta],
            do_sample_frames=False,
            do_resize=False,
            return_tensors="pt",
            **extra,
        )

    # -- generation ----------------------------------------------------------------------------------

    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        """Answer ``prompt`` about ``clip`` with greedy decoding."""
        return self.generate_many(clip, [prompt], max_new_tokens=max_new_tokens)[0]

    def generate_many(self, clip: Clip, prompts: Sequence[str], *, max_new_tokens: int) -> list[Generation]:
        """Answer several prompts about one clip; the video is preprocessed once and shared.

        Each answer's ``timings["preprocess"]`` is an equal share of the joint preprocessing time.
        """
        if max_new_tokens < 1:
            raise ValueError(f"Invalid max_new_tokens={max_new_tokens}. It must be at least 1.")
        started = time.perf_counter()
        built = self.build_many(clip, prompts)
        preprocess = (time.perf_counter() - started) / max(1, len(built))
        return [self._generate_one(b, max_new_tokens, preprocess) for b in built]

    def _generate_one(self, built: PromptInputs, max_new_tokens: int, preprocess: float) -> Generation:
        import torch

        # A fresh dict: the CPU tensors shared between prompts stay on the CPU, one device copy at a time.
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in built.inputs.items()}
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        from transformers import LogitsProcessorList

        recorder = _greedy_logprob_recorder()
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=self.eos_token_ids,
                    pad_token_id=self._pad_token_id(),
                    logits_processor=LogitsProcessorList([recorder]),
                    return_dict_in_generate=True,
                )
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ModelError(f"{self.spec.name} failed while generating: {exc}") from exc
        generate = time.perf_counter() - started
        started = time.perf_counter()
        new = out.sequences[0, built.num_prompt_tokens :].tolist()
        text = self.processor.tokenizer.decode(
            [t for t in new if t not in self._dropped_ids], skip_special_tokens=False
        )
        return Generation(
            text=text,
            mean_logprob=float(torch.stack(recorder.values).mean()) if recorder.values else None,
            num_prompt_tokens=built.num_prompt_tokens,
            num_generated_tokens=len(new),
            timings={
                "preprocess": preprocess,
                "generate": generate,
                "detokenize": time.perf_counter() - started,
            },
        )

    # -- record --------------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Base settings plus device, dtype, versions, prompt-shaping choices and the resolved checkpoint."""
        import torch
        import transformers

        template = self.processor.chat_template or getattr(self.processor.tokenizer, "chat_template", None)
        template = template or ""
        if isinstance(template, dict):
            template = template.get("default", json.dumps(template, sort_keys=True))
        return super().settings() | {
            "family": self.family.name,
            "model_type": self.model_type,
            "model_class": type(self.model).__name__,
            "checkpoint_path": str(self.checkpoint_dir),
            "device": self.device,
            "dtype": self.dtype,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "time_encoding": self.family.time_encoding,
            "outer_vision_wrapper": self.family.outer_vision_wrapper,
            "outer_vision_wrapper_seen": self._outer_wrapper_seen,
            "enable_thinking": self.family.enable_thinking,
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
            "eos_token_ids": list(self.eos_token_ids),
            "decoding": "greedy",
        }

    # -- internals -----------------------------------------------------------------------------------

    def _vision_tokens(self) -> tuple[str, str, str]:
        p = self.processor
        return (
            getattr(p, "vision_start_token", "<|vision_start|>"),
            getattr(p, "vision_end_token", "<|vision_end|>"),
            getattr(p, "video_token", "<|video_pad|>"),
        )

    def _check_frame_size(self, frames: Any) -> None:
        vp = self.processor.video_processor
        factor = int(vp.patch_size) * int(vp.merge_size)
        height, width = int(frames.shape[1]), int(frames.shape[2])
        if height % factor or width % factor:
            raise ValueError(
                f"Invalid clip frame size {height}x{width}: {self.spec.name} needs multiples of {factor} "
                f"pixels; sample the clip with patch_factor={factor}."
            )

    def _tokenize(self, text: str, keys: set[str]) -> dict[str, Any]:
        import torch

        encoded = self.processor.tokenizer([text], return_tensors="pt", return_token_type_ids=False)
        inputs = {k: v for k, v in encoded.items() if k in keys}
        if "mm_token_type_ids" in keys:
            ids = self.processor.create_mm_token_type_ids(encoded["input_ids"])
            inputs["mm_token_type_ids"] = torch.tensor(ids, dtype=torch.long)
        return inputs

    def _prompt_inputs(self, inputs: Any, chat_text: str) -> PromptInputs:
        from transformers import BatchFeature

        if not isinstance(inputs, BatchFeature):
            inputs = BatchFeature(inputs)
        text = self.processor.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=False)
        seen = None
        if self.family.time_encoding == "text-markers":
            start, _, _ = self._vision_tokens()
            seen = re.search(re.escape(start) + r"<\d+(?:\.\d+)? seconds>", text) is not None
            if seen != self.family.outer_vision_wrapper and self._outer_wrapper_seen is None:
                logger.warning(
                    "%s asked for outer_vision_wrapper=%s but this transformers processor produced %s.",
                    self.spec.name,
                    self.family.outer_vision_wrapper,
                    "an outer pair" if seen else "no outer pair",
                )
            self._outer_wrapper_seen = seen
        return PromptInputs(inputs=inputs, text=text, chat_text=chat_text, outer_vision_wrapper=seen)

    def _pad_token_id(self) -> int:
        pad = self.model.generation_config.pad_token_id
        if pad is None:
            pad = self.processor.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.eos_token_ids[0]


def _greedy_logprob_recorder() -> Any:
    """A logits processor that keeps, per step, the log-probability of the greedy (arg-max) choice."""
    import torch
    from transformers import LogitsProcessor

    class GreedyLogprobRecorder(LogitsProcessor):
        def __init__(self) -> None:
            self.values: list[Any] = []

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            self.values.append(torch.log_softmax(scores[0].float(), dim=-1).max())  # stays on device
            return scores

    return GreedyLogprobRecorder()


def _model_class_name(checkpoint_dir: Path) -> tuple[str, str]:
    """``(model_type, class name)`` from ``config.json``; remote architectures map to stock classes."""
    try:
        config = json.loads((checkpoint_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read {checkpoint_dir / 'config.json'}: {exc}") from exc
    model_type = str(config.get("model_type", ""))
    for arch in config.get("architectures") or []:
        if REMOTE_ARCHITECTURES.get(arch) == model_type:
            stock = MODEL_CLASSES[model_type]
            logger.info("Loading %s with the stock %s; checkpoint code is never run", arch, stock)
    if model_type not in MODEL_CLASSES:
        raise ModelError(
            f"Unsupported model_type {model_type!r} in {checkpoint_dir / 'config.json'}; "
            f"the transformers backend supports: {', '.join(MODEL_CLASSES)}."
        )
    return model_type, MODEL_CLASSES[model_type]


def _dtype_name(dtype: str | None, device: str, torch: Any) -> str:
    if dtype is None:
        if not device.startswith("cuda"):
            return "float32"
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ValueError(f"Invalid dtype {dtype!r}. Choose one of: bfloat16, float16, float32.")
    return name


def _eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every end-of-sequence id the checkpoint declares (generation config first, then the model config)."""
    found: list[int] = []
    for value in (
        model.generation_config.eos_token_id,
        getattr(model.config, "eos_token_id", None),
        tokenizer.convert_tokens_to_ids(tokenizer.eos_token) if tokenizer.eos_token else None,
    ):
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if token is not None and int(token) not in found:
                found.append(int(token))
    return found
