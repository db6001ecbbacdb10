"""The main job as a new user runs it: the installed ``vidspan`` in a fresh process, a local checkpoint.

No test shim reaches these processes (the root conftest applies none, and each command runs in its own
interpreter), so they fail exactly when a user's would: for instance when PyPI's CUDA torchvision sits
next to a CPU torch and vidspan does not apply its own fallback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

FALLBACK_LINE = "using its pure-Python transforms only"


def vidspan_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``vidspan ARGS`` through the installed console script, with the environment a user's shell has."""
    exe = Path(sys.executable).with_name("vidspan")
    command = [str(exe)] if exe.exists() else [shutil.which("vidspan") or "vidspan"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {"HF_HUB_OFFLINE": "1"}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=240, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def torchvision_needs_fallback() -> bool:
    """Whether a plain ``import torchvision`` fails here (PyPI's CUDA build beside a CPU torch)."""
    done = subprocess.run(
        [sys.executable, "-c", "import torchvision"], capture_output=True, text=True, timeout=120
    )
    return done.returncode != 0


def assert_loaded_cleanly(done: subprocess.CompletedProcess, needs_fallback: bool) -> None:
    assert "Error:" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    # -v shows the fallback's one INFO line exactly when this machine needs it
    assert (FALLBACK_LINE in done.stderr) == needs_fallback, done.stderr


def test_caption_with_local_checkpoint(tiny_model_dirs, shared_videos, tmp_path, torchvision_needs_fallback):
    done = vidspan_command(
        "-v",
        "caption",
        str(shared_videos / "asl-walk.mkv"),
        "-m",
        str(tiny_model_dirs["marlin"]),
        "--max-new-tokens",
        "12",
        "--json",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert_loaded_cleanly(done, torchvision_needs_fallback)
    result = json.loads(done.stdout)
    assert {"caption", "scene", "events"} <= set(result)
    assert result["settings"]["checkpoint"] == str(tiny_model_dirs["marlin"])
    assert isinstance(result["events"], list)


def test_find_with_local_checkpoint(tiny_model_dirs, shared_videos, tmp_path, torchvision_needs_fallback):
    done = vidspan_command(
        "-v",
        "find",
        str(shared_videos / "asl-eat.mkv"),
        "a hand moves",
        "-m",
        str(tiny_model_dirs["qwen3_vl"]),
        "--max-new-tokens",
        "8",
        "--json",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode in (0, 1), done.stderr  # 1 = not found, like grep; random weights rarely find it
    assert_loaded_cleanly(done, torchvision_needs_fallback)
    hit = json.loads(done.stdout)
    assert hit["query"] == "a hand moves" and "raw" in hit and hit["raw"]


def test_index_with_local_checkpoint(tiny_model_dirs, shared_videos, tmp_path, torchvision_needs_fallback):
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(shared_videos / "asl-eat.mkv", videos / "eat.mkv")
    os.symlink(shared_videos / "asl-walk.mkv", videos / "walk.mkv")
    db = tmp_path / "lib.sqlite"
    done = vidspan_command(
        "-v",
        "index",
        str(videos),
        "--db",
        str(db),
        "-m",
        str(tiny_model_dirs["qwen3_5"]),
        "--max-new-tokens",
        "12",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert_loaded_cleanly(done, torchvision_needs_fallback)
    with sqlite3.connect(db) as con:
        paths = sorted(Path(p).name for (p,) in con.execute("SELECT path FROM videos"))
    assert paths == ["asl-eat.mkv", "asl-walk.mkv"]  # symlinks are stored as the files they point at


def test_eval_grounding_with_local_checkpoint(
    tiny_model_dirs, shared_videos, tmp_path, torchvision_needs_fallback
):
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(shared_videos / "asl-walk.mkv", videos / "walk.mkv")
    annotations = tmp_path / "charades-timelens.json"
    annotations.write_text(
        json.dumps({"walk": {"duration": 3.0, "spans": [[1, 2]], "queries": ["a hand moves"]}})
    )
    run_dir = tmp_path / "run"
    done = vidspan_command(
        "-v",
        "eval",
        "grounding",
        "--bench",
        "charades-timelens",
        "--annotations",
        str(annotations),
        "--videos",
        str(videos),
        "-m",
        str(tiny_model_dirs["qwen2_5_vl"]),
        "--max-frames",
        "8",
        "--max-new-tokens",
        "8",
        "--out",
        str(run_dir),
        "--no-progress",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert_loaded_cleanly(done, torchvision_needs_fallback)
    metrics = json.loads(done.stdout)
    assert metrics["num_samples"] == 1 and metrics["num_failed"] == 0
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["raw"]
