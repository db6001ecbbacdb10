"""A tiny random Molmo2 checkpoint (``allenai/Molmo2-*``-shaped), built offline in about a second.

It uses transformers' own ``Molmo2Processor`` / ``Molmo2ForConditionalGeneration``, so tests can check the
per-frame timestamps Molmo2 writes into its prompt, token counts, ``generate`` and save/load without
downloading weights. Random weights produce garbage text: assert shapes, counts and timestamps, never words.

The layout follows the released checkpoints: the tokenizer is byte-level Qwen-style (built like
:mod:`support.tiny_models`'), ``bos_token`` is ``<|im_end|>`` (the processor prepends it), Molmo2's image
and frame tokens live in the ``additional_vocab_size`` embedding rows that the LM head cannot produce, the
chat template puts the ``<|video|>`` placeholder before the user turn, and video frames are pooled 3x3.
The vision tower takes an 84x84 crop (a 6x6 grid of 14-pixel patches, pooled to 2x2 tokens per frame);
the processor squashes every frame, whatever its size, to that crop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.tiny_models import SEED, _tokenizer

# Molmo2's vision tokens, in the released tokenizer's order (ids 151936-151945 there).
MOLMO2_SPECIALS = (
    "<im_start>",
    "<im_end>",
    "<im_patch>",
    "<im_col>",
    "<low_res_im_start>",
    "<|image|>",
    "<im_low>",
    "<frame_start>",
    "<frame_end>",
    "<|video|>",
)
CROP_SIZE = 84
PATCH_SIZE = 14
POOLING = [3, 3]

# Jinja: media placeholders first (as the released template does), then the turns. An assistant turn is
# closed by the next user turn's leading <|im_end|>.
MOLMO2_TEMPLATE = (
    "{%- set n = namespace(images=0, videos=0) -%}"
    "{%- for m in messages -%}{%- if m.content is not string -%}{%- for p in m.content -%}"
    "{%- if p.type == 'image' -%}{%- set n.images = n.images + 1 -%}"
    "{%- elif p.type == 'video' -%}{%- set n.videos = n.videos + 1 -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{%- endfor -%}"
    "{%- if n.images == 1 -%}{{- '<|image|>' -}}{%- else -%}"
    "{%- for i in range(n.images) -%}{{- 'Image ' ~ (i + 1) ~ '<|image|>' -}}{%- endfor -%}{%- endif -%}"
    "{%- for i in range(n.videos) -%}{{- '<|video|>' -}}{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m.content is string -%}{%- set text = m.content -%}{%- else -%}"
    "{%- set t = namespace(text='') -%}{%- for p in m.content if p.type == 'text' -%}"
    "{%- set t.text = t.text ~ (' ' if t.text else '') ~ p.text -%}{%- endfor -%}"
    "{%- set text = t.text -%}{%- endif -%}"
    "{%- if m.role == 'user' -%}{%- if not loop.first -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{{- '<|im_start|>user\\n' + text + '<|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>assistant\\n' + text -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def build_tiny_molmo2(out_dir: str | Path) -> Path:
    """Build, seed and save a tiny random Molmo2 model with its tokenizer and processor.

    Args:
        out_dir: Directory to write (created if needed).

    Returns:
        ``out_dir`` as a ``Path``; loadable with ``AutoProcessor`` / ``Molmo2ForConditionalGeneration``
        (``local_files_only=True``).
    """
    import torch

    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()  # the processors below import torchvision, as they do when a model loads
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _molmo2_tokenizer()
    processor = _processor(tokenizer)
    torch.manual_seed(SEED)
    model = _model(tokenizer).eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _molmo2_tokenizer() -> Any:
    """The tiny Qwen byte-level tokenizer plus Molmo2's vision tokens, BOS and chat template."""
    tok = _tokenizer("qwen3_vl")
    tok.add_tokens(list(MOLMO2_SPECIALS), special_tokens=True)
    tok.bos_token = "<|im_end|>"  # as in allenai/Molmo2-*: the processor prepends it to every prompt
    tok.image_token = "<|image|>"
    tok.video_token = "<|video|>"
    tok.chat_template = MOLMO2_TEMPLATE
    return tok


def _processor(tokenizer: Any) -> Any:
    from transformers import Molmo2ImageProcessor, Molmo2Processor, Molmo2VideoProcessor

    crop = {"height": CROP_SIZE, "width": CROP_SIZE}
    mean_std = dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    image_processor = Molmo2ImageProcessor(
        size=crop, patch_size=PATCH_SIZE, pooling_size=[2, 2], max_crops=2, **mean_std
    )
    video_processor = Molmo2VideoProcessor(
        size=crop, patch_size=PATCH_SIZE, pooling_size=POOLING, num_frames=16, max_fps=2, **mean_std
    )
    return Molmo2Processor(
        image_processor=image_processor,
        video_processor=video_processor,
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
    )


def _model(tokenizer: Any) -> Any:
    """A ~0.2 M-parameter Molmo2: 2 ViT layers (width 32), a 3x3 pooling adapter, 2 text layers (width 64)."""
    from transformers import GenerationConfig, Molmo2Config, Molmo2ForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (*MOLMO2_SPECIALS, "<|im_end|>", "<|endoftext|>")}
    base_vocab = min(ids[t] for t in MOLMO2_SPECIALS)  # the LM head covers the text tokens only
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        image_size=[CROP_SIZE, CROP_SIZE],
        patch_size=PATCH_SIZE,
    )
    adapter = dict(
        vision_feature_layer=[-1, -2],
        hidden_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=64,
        text_hidden_size=64,
    )
    text = dict(
        vocab_size=base_vocab,
        additional_vocab_size=len(tokenizer) - base_vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4},
    )
    config = Molmo2Config(
        vision_config=vision,
        adapter_config=adapter,
        text_config=text,
        image_start_token_id=ids["<im_start>"],
        low_res_image_start_token_id=ids["<low_res_im_start>"],
        image_end_token_id=ids["<im_end>"],
        image_patch_id=ids["<im_patch>"],
        frame_start_token_id=ids["<frame_start>"],
        frame_end_token_id=ids["<frame_end>"],
    )
    model = Molmo2ForConditionalGeneration(config)
    # allenai/Molmo2-*'s generation config: BOS = EOS = <|im_end|>, pad = <|endoftext|>
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|im_end|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]
    )
    return model
