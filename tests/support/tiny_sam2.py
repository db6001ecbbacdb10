"""A tiny random SAM2-video checkpoint (``facebook/sam2.1-hiera-*``-shaped), built offline in about a second.

It uses transformers' own ``Sam2VideoModel`` / ``Sam2VideoProcessor``, so tests can run the real prompt,
propagation and mask post-processing path without downloading weights. Random weights produce garbage
masks: assert shapes, keys and round trips, never mask quality.

The model sees 128x128 frames (the released checkpoints: 1024x1024): a four-stage Hiera of 1/1/2/1 blocks
(widths 8/16/32/64, the fourth block attending globally) gives feature maps of 32, 16, 8 and 4 pixels
a side; the FPN keeps the first three (strides 4, 8, 16), so the memory attention's rotary grid and the
prompt encoder's embedding grid are 8x8, and the mask down-sampler's total stride (16) maps a 128-pixel
mask onto that grid too. The hidden width is 128 and the memory 64 channels wide: transformers' memory
attention takes 64-channel memories whatever the config says, and it only reshapes object pointers
correctly when they are wider than the memory (split into 64-wide tokens). One memory-attention layer
and one memory-fuser block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.tiny_models import SEED

IMAGE_SIZE = 128
HIDDEN = 128  # wider than the memory: transformers 5.23 mis-shapes object pointers when they are equal
MEMORY_CHANNELS = 64  # transformers hard-codes the memory attention's key width (kv_in_dim=64)


def build_tiny_sam2(out_dir: str | Path) -> Path:
    """Build, seed and save a tiny random SAM2-video model with its processor.

    Args:
        out_dir: Directory to write (created if needed).

    Returns:
        ``out_dir`` as a ``Path``; loadable with ``Sam2VideoModel`` / ``Sam2VideoProcessor``
        ``.from_pretrained(out_dir, local_files_only=True)``.
    """
    import torch

    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()  # the image and video processors import torchvision
    from transformers import Sam2VideoModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model = Sam2VideoModel(_config()).eval()
    model.save_pretrained(out)
    _processor().save_pretrained(out)
    return out


def _config() -> Any:
    from transformers import Sam2VideoConfig

    stride = IMAGE_SIZE // 16  # the lowest-resolution feature map kept (stride 16)
    backbone = dict(
        model_type="sam2_hiera_det_model",
        image_size=[IMAGE_SIZE, IMAGE_SIZE],
        hidden_size=8,
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        window_positional_embedding_background_size=[4, 4],
        global_attention_blocks=[3],  # not a stage's first block, which pools its queries
    )
    vision = dict(
        model_type="sam2_vision_model",
        backbone_config=backbone,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[4 * stride] * 2, [2 * stride] * 2, [stride] * 2],
        fpn_hidden_size=HIDDEN,
    )
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=HIDDEN, image_size=IMAGE_SIZE, patch_size=16),
        mask_decoder_config=dict(
            hidden_size=HIDDEN, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=HIDDEN
        ),
        image_size=IMAGE_SIZE,
        num_maskmem=3,
        max_object_pointers_in_encoder=4,
        memory_attention_hidden_size=HIDDEN,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[stride, stride],
        memory_encoder_hidden_size=HIDDEN,
        memory_encoder_output_channels=MEMORY_CHANNELS,
        mask_downsampler_embed_dim=HIDDEN,
        memory_fuser_num_layers=1,
        memory_fuser_embed_dim=HIDDEN,
        memory_fuser_intermediate_dim=64,
    )


def _processor() -> Any:
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    mask_side = 4 * IMAGE_SIZE // 16
    image_processor = Sam2ImageProcessor(size=size, mask_size={"height": mask_side, "width": mask_side})
    return Sam2VideoProcessor(
        image_processor=image_processor, video_processor=Sam2VideoVideoProcessor(size=size)
    )
