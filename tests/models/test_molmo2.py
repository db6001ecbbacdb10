"""Molmo2 through transformers on a tiny random checkpoint: frame timestamps, no padding, generate, API."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

import vidspan
from support.moving import Motion, moving_clip
from support.tiny_molmo2 import build_tiny_molmo2
from vidspan.models import get_model
from vidspan.models.molmo2 import Molmo2Model
from vidspan.types import Span
from vidspan.video import SamplingConfig, open_video

SAMPLING = SamplingConfig(fps=2.0, max_frames=7, min_frames=3, max_pixels=96 * 160, min_pixels=32 * 32)


@pytest.fixture(scope="module")
def tiny_molmo2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_molmo2(tmp_path_factory.mktemp("tiny") / "molmo2")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return moving_clip(tmp_path_factory.mktemp("molmo2-clip") / "moving.mp4", Motion(duration=6.0))


def test_a_local_molmo2_directory_loads_as_molmo2(tiny_molmo2) -> None:
    vm = get_model(str(tiny_molmo2))
    assert isinstance(vm, Molmo2Model) and vm.family.name == "molmo2"
    assert vm.settings()["model_class"] == "Molmo2ForConditionalGeneration"


def test_each_frame_is_labelled_with_its_time_in_the_window_unpadded(tiny_molmo2, clip_path) -> None:
    vm = get_model(str(tiny_molmo2))
    with open_video(clip_path) as reader:
        sampled = reader.sample(SAMPLING, window=Span(1.5, 5.0))
    clip = replace(sampled, frames=sampled.frames[:5], timestamps=sampled.timestamps[:5])
    assert clip.num_frames == 5  # an odd count: the Qwen path would pad it to 6
    built = vm.build_inputs(clip, "Point to red square")
    written = re.findall(r"(\d+\.\d) <frame_start>", built.text)
    assert written == [f"{t - 1.5:.1f}" for t in clip.timestamps]
    assert built.text.count("<frame_start>") == clip.num_frames
    assert built.text.rstrip().endswith("assistant")


def test_generate_returns_text_and_a_score(tiny_molmo2, clip_path) -> None:
    vm = get_model(str(tiny_molmo2))
    with open_video(clip_path) as reader:
        clip = reader.sample(SAMPLING)
    generation = vm.generate(clip, "Track red square in 2 FPS.", max_new_tokens=8)
    assert isinstance(generation.text, str) and generation.num_generated_tokens <= 8
    assert generation.mean_logprob is not None and math.isfinite(generation.mean_logprob)
    assert generation.timings["generate"] > 0


def test_point_and_find_run_end_to_end_on_the_real_model(tiny_molmo2, clip_path) -> None:
    options = {"fps": 2.0, "max_frames": 7, "max_pixels": 96 * 160, "min_pixels": 32 * 32}
    options["max_new_tokens"] = 12
    pointing = vidspan.point(clip_path, "red square", model=str(tiny_molmo2), **options)
    assert pointing.model == str(tiny_molmo2) and len(pointing.raw) == len(pointing.windows) == 2
    assert pointing.settings["task"] == "point" and "Point to red square" in pointing.settings["prompt"]
    hit = vidspan.find(clip_path, "a red square", model=str(tiny_molmo2), **options)
    assert isinstance(hit.raw, str)
