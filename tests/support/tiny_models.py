"""Tiny random Qwen2.5-VL / Qwen3-VL / Qwen3.5 / Marlin-shaped checkpoints, built offline in under a second.

They use the real processor and model classes of transformers, so tests can check prompt expansion,
timestamp markers, token counts, rope indices, ``generate`` and save/load without downloading weights.
Random weights produce garbage text: assert shapes, counts and markers, never the generated words.

The ``"marlin"`` kind mimics ``NemoStation/Marlin-2B``'s directory: a Qwen3.5 checkpoint whose
``config.json`` names ``MarlinForConditionalGeneration`` and an ``auto_map`` into a ``modeling_marlin.py``.
Our ``modeling_marlin.py`` raises on import, which proves that a loader never executes checkpoint code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KINDS = ("qwen2_5_vl", "qwen3_vl", "qwen3_5", "marlin")
SEED = 1234

SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
)

# Jinja: newlines are written inside expressions, since `{%- -%}` tags swallow literal ones.
_TEMPLATE_HEAD = (
    "{%- for m in messages -%}{{- '<|im_start|>' + m.role + '\\n' -}}"
    "{%- if m.content is string -%}{{- m.content -}}{%- else -%}{%- for p in m.content -%}"
    "{%- if p.type == 'video' -%}{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif p.type == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif p.type == 'text' -%}{{- p.text -}}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
)
_THINK_SWITCH = (
    "{%- if enable_thinking is defined and not enable_thinking -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
)
QWEN_VL_TEMPLATE = _TEMPLATE_HEAD + "{%- endif -%}"
QWEN3_5_TEMPLATE = _TEMPLATE_HEAD + _THINK_SWITCH + "{%- endif -%}"

RAISING_MODELING_MARLIN = '''"""Stand-in for Marlin-2B's remote code: vidspan must never import it."""

raise RuntimeError("vidspan must not execute checkpoint code")
'''


def build_tiny_models(root: str | Path) -> dict[str, Path]:
    """Build every kind of tiny model under ``root`` (one sub-directory per kind)."""
    root = Path(root)
    return {kind: build_tiny_model(kind, root / kind) for kind in KINDS}


def build_tiny_model(kind: str, out_dir: str | Path) -> Path:
    """Build, seed and save a tiny random model with its tokenizer and processor.

    Args:
        kind: ``"qwen2_5_vl"``, ``"qwen3_vl"``, ``"qwen3_5"`` or ``"marlin"``.
        out_dir: Directory to write (created if needed).

    Returns:
        ``out_dir`` as a ``Path``; loadable with ``AutoProcessor`` / ``AutoModelForImageTextToText``
        (``local_files_only=True``).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown tiny model kind {kind!r}. Choose one of: {', '.join(KINDS)}.")
    import torch

    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()  # the processors below import torchvision, as they do when a model loads
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(kind)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    processor = _processor(kind, tokenizer)
    torch.manual_seed(SEED)
    model = _model(kind, len(tokenizer), ids).eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if kind == "marlin":
        _make_marlin_shaped(out)
    return out


def _tokenizer(kind: str) -> Any:
    """Byte-level BPE without merges (every UTF-8 byte is one token) plus the Qwen specials."""
    from tokenizers import pre_tokenizers

    if kind in ("qwen3_5", "marlin"):
        from transformers import Qwen3_5Tokenizer as Tokenizer
    else:
        from transformers import Qwen2Tokenizer as Tokenizer

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab |= {t: len(vocab) + k for k, t in enumerate(SPECIALS)}
    tok = Tokenizer(
        vocab=vocab,
        merges=[],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        },
    )
    tok.add_special_tokens({"additional_special_tokens": list(SPECIALS[1:])})
    tok.chat_template = QWEN3_5_TEMPLATE if kind in ("qwen3_5", "marlin") else QWEN_VL_TEMPLATE
    return tok


def _processor(kind: str, tokenizer: Any) -> Any:
    """The family's real processor with small pixel budgets (vidspan passes pre-sized frames anyway)."""
    from transformers import Qwen2VLImageProcessor

    patch = 14 if kind == "qwen2_5_vl" else 16
    factor = 2 * patch
    image_processor = Qwen2VLImageProcessor(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": 4 * factor * factor, "longest_edge": 64 * factor * factor},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    template = tokenizer.chat_template
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        video_processor = Qwen2VLVideoProcessor(
            patch_size=patch,
            merge_size=2,
            temporal_patch_size=2,
            fps=2.0,
            size={"shortest_edge": 4 * factor * factor, "longest_edge": 1024 * factor * factor},
            cap_pixels_per_frame=True,
        )
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            video_processor=video_processor,
            tokenizer=tokenizer,
            chat_template=template,
        )
    from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

    video_processor = Qwen3VLVideoProcessor(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        fps=2.0,
        min_frames=4,
        max_frames=64,
        size={"shortest_edge": 4 * factor * factor, "longest_edge": 1024 * factor * factor},
        cap_pixels_per_frame=True,
        max_video_tokens=256,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return Qwen3VLProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        tokenizer=tokenizer,
        chat_template=template,
    )


def _model(kind: str, vocab_size: int, ids: dict[str, int]) -> Any:
    """A ~0.2 M-parameter model of the family (configs follow models-and-prompts.md §9.5 / §9.9)."""
    text: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision: dict[str, Any] = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=64,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )
    mm_ids = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        rope = dict(rope_type="default", rope_theta=1e4, mrope_section=[4, 2, 2])
        config = Qwen2_5_VLConfig(
            text_config=text | dict(rope_parameters=rope),
            vision_config=vision
            | dict(patch_size=14, window_size=56, fullatt_block_indexes=[1], tokens_per_second=2),
            **mm_ids,
        )
        return Qwen2_5_VLForConditionalGeneration(config)
    if kind == "qwen3_vl":
        from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

        rope = dict(rope_type="default", rope_theta=1e4, mrope_section=[4, 2, 2], mrope_interleaved=True)
        config = Qwen3VLConfig(
            text_config=text | dict(head_dim=16, rope_parameters=rope),
            vision_config=vision
            | dict(patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[0]),
            **mm_ids,
        )
        return Qwen3VLForConditionalGeneration(config)

    from transformers import GenerationConfig, Qwen3_5Config, Qwen3_5ForConditionalGeneration

    rope = dict(
        rope_type="default",
        rope_theta=1e4,
        partial_rotary_factor=0.25,
        mrope_section=[2, 1, 1],
        mrope_interleaved=True,
    )
    linear = dict(
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_conv_kernel_dim=4,
    )
    text_config = text | linear | dict(head_dim=32, rope_parameters=rope)
    vision_config = vision | dict(patch_size=16, num_position_embeddings=64)
    if kind == "qwen3_5":
        text_config["layer_types"] = ["linear_attention", "full_attention"]
        return Qwen3_5ForConditionalGeneration(
            Qwen3_5Config(text_config=text_config, vision_config=vision_config, **mm_ids)
        )
    # Marlin-shaped: 3 Gated-DeltaNet layers + 1 gated full-attention layer, tied embeddings, no DeepStack,
    # and Marlin's EOS layout (text eos = <|endoftext|>, top level eos = <|im_end|>, generation: both).
    text_config |= dict(
        num_hidden_layers=4,
        layer_types=["linear_attention"] * 3 + ["full_attention"],
        full_attention_interval=4,
        attn_output_gate=True,
        eos_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    config = Qwen3_5Config(
        text_config=text_config,
        vision_config=vision_config | dict(deepstack_visual_indexes=[]),
        tie_word_embeddings=True,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        use_cache=False,
        **mm_ids,
    )
    model = Qwen3_5ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|endoftext|>"], ids["<|im_end|>"]], use_cache=True
    )
    return model


def _make_marlin_shaped(out: Path) -> None:
    """Point ``config.json`` at remote code (as Marlin-2B does) and write remote code that must never run."""
    path = out / "config.json"
    config = json.loads(path.read_text())
    config["architectures"] = ["MarlinForConditionalGeneration"]
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_marlin.MarlinForConditionalGeneration"}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "modeling_marlin.py").write_text(RAISING_MODELING_MARLIN)
