"""caption() / find() / the CLI through the real transformers path, on real clips, with tiny random models.

Random weights give random text, so these tests check the pipeline (loading, sampling, prompts, timestamps,
windows, result shapes, parsing never failing), not the words.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

import vidspan
from support.clips import run_ffmpeg as ffmpeg
from vidspan.cli.main import cli
from vidspan.models import families
from vidspan.parse import parse_caption
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
        # the prompt the model was asked, rendered for this query (the template is kept beside it)
        assert hit.settings["prompt"] == families.TIMELENS_FIND_PROMPT.replace("{event}", hit.query)
        assert hit.settings["prompt_template"] == families.TIMELENS_FIND_PROMPT
        assert "{event}" not in hit.settings["prompt"]


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
    from vidspan.models.openai import serve
    from vidspan.models.registry import resolve
    from vidspan.models.transformers_backend import TransformersModel

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
    # the server's raw text came back and the client parsed the scene and events from exactly that text
    duration = vidspan.probe(shared_videos / "asl-eat.mkv").duration_seconds
    parsed = parse_caption(data["caption"], duration_seconds=duration)
    assert data["scene"] == parsed.scene
    assert data["events"] == [e.to_dict() for e in parsed.events]


def test_variable_frame_rate_file_gives_true_time_markers(tiny_model_dirs, tmp_path):
    """A VFR file → vidspan's sampler → the real Qwen3.5 processor: every marker is a true pts average."""
    from vidspan.models.registry import resolve
    from vidspan.models.transformers_backend import TransformersModel
    from vidspan.video import SamplingConfig, open_video, sample_clip

    vfr = tmp_path / "vfr.mp4"  # 10 s: the first 5 s at 10 fps, the last 5 s at 30 fps
    select = "select='if(lt(t,5),not(mod(n,3)),1)'"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:duration=10:rate=30", "-vf", select, "-fps_mode", "vfr",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", str(vfr))  # fmt: skip
    clip = sample_clip(vfr, SamplingConfig(fps=1.0, max_pixels=64 * 64, min_pixels=32 * 32))
    assert len(clip.timestamps) == 10
    spacing = [b - a for a, b in zip(clip.timestamps, clip.timestamps[1:], strict=False)]
    assert max(spacing) - min(spacing) < 0.15  # evenly spread in time, not bunched in the 30 fps half
    model = TransformersModel(resolve(str(tiny_model_dirs["qwen3_5"])))
    text = model.build_inputs(clip, "When?").text
    pairs = zip(clip.timestamps[0::2], clip.timestamps[1::2], strict=True)
    expected = [f"<{(a + b) / 2:.1f} seconds>" for a, b in pairs]
    found = re.findall(r"<\d+\.\d seconds>", text)
    assert found == expected
    # the index / average-fps shortcut would have been wrong on this file by more than a second
    with open_video(vfr) as reader:
        times, info = reader.frame_times, reader.info
    indices = np.round(np.linspace(0, len(times) - 1, 10)).astype(int)
    assert np.max(np.abs(indices / info.fps - times[indices])) > 1.0


def test_grounding_run_with_a_real_model(tiny_model_dirs, shared_videos, tmp_path):
    """A benchmark run through the transformers path: every sample gets a raw answer and an IoU."""
    from vidspan.eval.grounding.datasets import load_benchmark
    from vidspan.eval.grounding.metrics import temporal_iou
    from vidspan.eval.grounding.run import run_grounding

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "eat.mkv").symlink_to(shared_videos / "asl-eat.mkv")
    annotations = tmp_path / "charades-timelens.json"
    data = {"eat": {"duration": 1.6, "spans": [[0, 1], [1, 1.5]], "queries": ["a hand moves.", "it stops"]}}
    annotations.write_text(json.dumps(data))
    bench = load_benchmark("charades-timelens", annotations, videos)
    run = run_grounding(bench, str(tiny_model_dirs["qwen3_vl"]), tmp_path / "run", max_new_tokens=8)
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [r["query"] for r in records] == ["a hand moves", "it stops"]
    gts = [(0.0, 1.0), (1.0, 1.5)]
    for record, gt in zip(records, gts, strict=True):
        assert record["error"] is None and record["raw"]  # the model answered; nothing crashed
        # each IoU is the one the recorded span earns against this sample's ground truth
        span = tuple(record["span"]) if record["span"] is not None else None
        assert record["iou"] == pytest.approx(temporal_iou(span, gt))
    assert run.metrics["num_scored"] == 2
    assert run.header["settings"]["patch_factor"] == 32
    assert run.header["model_settings"]["outer_vision_wrapper"] is False
