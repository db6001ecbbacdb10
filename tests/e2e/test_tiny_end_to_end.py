"""caption() / find() / the CLI through the real transformers path, on real clips, with tiny random models.

Random weights give random text, so these tests check the pipeline (loading, sampling, prompts, timestamps,
windows, result shapes, parsing never failing), not the words.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import vidspan
from vidspan.cli.main import cli
from vidspan.models import families
from vidspan.types import Caption, Grounding


def test_caption_marlin_checkpoint_directory(tiny_model_dirs, shared_videos):
    cap = vidspan.caption(shared_videos / "asl-walk.mkv", str(tiny_model_dirs["marlin"]), max_new_tokens=12)
    assert isinstance(cap, Caption)
    assert cap.settings["checkpoint"].endswith("marlin")
    assert cap.settings["prompt"] == families.MARLIN_CAPTION_PROMPT
    assert cap.settings["outer_vision_wrapper"] is False
    assert {"decode", "preprocess", "generate", "parse", "total"} <= set(cap.timings)
    assert set(cap.to_dict()) == {"caption", "scene", "events"}
    for event in cap:
        assert 0 <= event.start <= event.end <= 3.0


def test_find_qwen3_vl_several_queries_on_real_clip(tiny_model_dirs, shared_videos):
    hits = vidspan.find(
        shared_videos / "car-detection.mp4",
        ["a car drives in", "a car parks"],
        str(tiny_model_dirs["qwen3_vl"]),
        max_new_tokens=8,
        max_frames=16,
        window_seconds=40,
    )
    assert [h.query for h in hits] == ["a car drives in", "a car parks"]
    for hit in hits:
        assert isinstance(hit, Grounding)
        assert hit.score is not None and 0 < hit.score <= 1
        assert hit.window is not None and hit.window.end == pytest.approx(30.2, abs=0.2)
        assert set(hit.to_dict()) == {"raw", "span", "format_ok"}
        assert "'a car" in hit.settings["prompt"] or "{event}" in hit.settings["prompt"]


def test_qwen2_5_vl_uses_factor_28(tiny_model_dirs, shared_videos):
    hit = vidspan.find(
        shared_videos / "bottle-detection.mp4",
        "a hand lifts a bottle",
        str(tiny_model_dirs["qwen2_5_vl"]),
        max_new_tokens=6,
        max_frames=8,
        max_pixels=128 * 28 * 28,
    )
    assert hit.settings["patch_factor"] == 28
    assert hit.settings["max_frames"] == 8


def test_long_video_windows_with_a_real_model(tiny_model_dirs, long_clip):
    cap = vidspan.caption(
        long_clip,
        str(tiny_model_dirs["qwen3_5"]),
        max_new_tokens=6,
        max_frames=8,
        window_seconds=100,
        overlap_seconds=10,
    )
    assert len(cap.windows) == 4
    assert cap.windows[0].start == 0 and cap.windows[-1].end == pytest.approx(300, abs=0.2)
    assert cap.raw.count("[window ") == 4
    hits = vidspan.find(
        long_clip,
        ["x", "y"],
        str(tiny_model_dirs["qwen3_5"]),
        max_new_tokens=6,
        max_frames=8,
        window_seconds=100,
        overlap_seconds=10,
    )
    assert all(len(h.candidates) == 4 for h in hits)
    assert all(h.window in cap.windows for h in hits)


def test_cli_with_checkpoint_directory(tiny_model_dirs, shared_videos):
    result = CliRunner().invoke(
        cli,
        [
            "find",
            str(shared_videos / "asl-eat.mkv"),
            "a hand moves",
            "--model",
            str(tiny_model_dirs["marlin"]),
            "--max-new-tokens",
            "8",
            "--json",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"query", "raw", "span", "format_ok", "score", "window"}


def test_cli_against_openai_compatible_server(tiny_model_dirs, shared_videos):
    from vidspan.models.registry import resolve
    from vidspan.models.transformers_backend import TransformersModel
    from vidspan.server.openai_api import serve

    model = TransformersModel(resolve(str(tiny_model_dirs["marlin"])))
    with serve(model, served_model="tiny-marlin") as server:
        result = CliRunner().invoke(
            cli,
            [
                "caption",
                str(shared_videos / "asl-eat.mkv"),
                "-m",
                "tiny-marlin",
                "--family",
                "marlin",
                "--base-url",
                server.base_url,
                "--max-new-tokens",
                "8",
                "--json",
                "--no-progress",
            ],
        )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["settings"]["base_url"] == server.base_url
    assert isinstance(data["caption"], str)
