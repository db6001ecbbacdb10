"""Fixtures for model tests: the four tiny random checkpoints (built once per session) and clip makers."""

from __future__ import annotations

from pathlib import Path

import pytest

VFR_TIMES = (0.0, 1.2, 2.5, 3.7, 5.0, 6.23, 7.5, 8.73)
VFR_MARKERS = ["<0.6 seconds>", "<3.1 seconds>", "<5.6 seconds>", "<8.1 seconds>"]
PATCH_FACTOR = {"qwen2_5_vl": 28, "qwen3_vl": 32, "qwen3_5": 32, "marlin": 32}


def make_family(kind: str, **overrides):
    """A test family for one tiny model kind (prompts are placeholders)."""
    from vidspan.models.base import Family

    fields = dict(
        name={"qwen2_5_vl": "qwen2.5-vl", "qwen3_vl": "qwen3-vl", "qwen3_5": "qwen3.5"}.get(kind, kind),
        patch_factor=PATCH_FACTOR[kind],
        time_encoding="mrope" if kind == "qwen2_5_vl" else "text-markers",
        caption_prompt="Describe the clip.",
        find_prompt='When does "{event}" happen?',
        enable_thinking=False if kind in ("qwen3_5", "marlin") else None,
    )
    return Family(**(fields | overrides))


def make_spec(kind: str, checkpoint: str | Path, **family_overrides):
    """A ``ModelSpec`` for a tiny model."""
    from vidspan.models.base import ModelSpec

    family = make_family(kind, **family_overrides)
    return ModelSpec(name=f"tiny-{kind}", family=family, checkpoint=str(checkpoint))


def make_clip(factor: int, timestamps=VFR_TIMES, window=(0.0, 10.0), seed: int = 0):
    """A clip of random uint8 frames, 2x3 merged tokens on the ``factor`` grid, at the given frame times."""
    import numpy as np

    from vidspan.types import Clip, Span, VideoInfo

    shape = (len(timestamps), 2 * factor, 3 * factor, 3)
    frames = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    info = VideoInfo(
        path="synthetic.mp4",
        duration_seconds=window[1],
        fps=30.0,
        num_frames=round(window[1] * 30),
        width=3 * factor,
        height=2 * factor,
        rotation=0,
        codec="h264",
        container="mp4",
        is_vfr=True,
    )
    return Clip(frames=frames, timestamps=tuple(timestamps), window=Span(*window), video=info)


@pytest.fixture(scope="session")
def loaded_models(tiny_model_dirs):
    """``{kind: TransformersModel}`` with each kind's default test family, loaded once."""
    from vidspan.models.transformers_backend import TransformersModel

    return {kind: TransformersModel(make_spec(kind, path)) for kind, path in tiny_model_dirs.items()}


@pytest.fixture(name="tiny_family", scope="session")
def _make_family_fixture():
    """:func:`make_family` for tests."""
    return make_family


@pytest.fixture(name="tiny_spec", scope="session")
def _make_spec_fixture():
    """:func:`make_spec` for tests."""
    return make_spec


@pytest.fixture(name="tiny_clip", scope="session")
def _make_clip_fixture():
    """:func:`make_clip` for tests."""
    return make_clip
