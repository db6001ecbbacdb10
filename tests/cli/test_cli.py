"""The vidspan command: output shapes, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.models import register_plugin, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel

CAPTION = (
    "<think>\n\n</think>\n\nScene: A person signs.\nEvents:\n"
    "<0.0 - 1.0> The hands rise.\n<1.0 - 2.5> The hands move forward.\n"
)


@pytest.fixture
def mock_model():
    model = MockVideoModel([CAPTION], name="mock")
    plugin = MockPlugin(model)
    register_plugin(plugin)
    yield model
    unregister_plugin(plugin)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_caption_text_and_json(mock_model, shared_videos):
    video = str(shared_videos / "asl-walk.mkv")
    result = run("caption", video, "-m", "mock", "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Scene: A person signs."
    assert "00:01.0 - 00:02.5  The hands move forward." in result.stdout
    result = run("caption", video, "-m", "mock", "--json", "--no-progress")
    data = json.loads(result.stdout)
    assert data["events"] == [
        {"start": 0.0, "end": 1.0, "description": "The hands rise."},
        {"start": 1.0, "end": 2.5, "description": "The hands move forward."},
    ]
    assert data["caption"] == CAPTION and data["format_ok"] is True
    assert data["settings"]["fps"] == 2.0


def test_caption_progress_goes_to_stderr(mock_model, shared_videos):
    result = run("caption", str(shared_videos / "asl-walk.mkv"), "-m", "mock")
    assert "[1/1]" in result.stderr and "[1/1]" not in result.stdout


def test_find_json_and_exit_codes(mock_model, shared_videos):
    mock_model.replies = ["<think>\n\n</think>\n\nFrom 0.5 to 2.0."]
    video = str(shared_videos / "asl-walk.mkv")
    result = run("find", video, "hands move", "--json", "--no-progress", "-m", "mock")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["span"] == [0.5, 2.0] and data["format_ok"] is True and data["query"] == "hands move"
    result = run("find", video, "a", "b", "--json", "--no-progress", "-m", "mock")
    assert [d["query"] for d in json.loads(result.stdout)] == ["a", "b"]
    mock_model.replies = ["I do not see it."]
    result = run("find", video, "a dog", "--no-progress", "-m", "mock")
    assert result.exit_code == 1 and "a dog: not found" in result.stdout


def test_models_lists_registry():
    result = run("models")
    assert result.exit_code == 0
    assert (
        "marlin-2b" in result.stdout
        and "NemoStation/Marlin-2B" in result.stdout
        and "default" in result.stdout
    )
    data = json.loads(run("models", "--json").stdout)
    assert {"marlin-2b", "qwen3-vl-8b", "qwen2.5-vl-7b"} <= {m["name"] for m in data["models"]}
    assert {"transformers", "openai"} <= set(data["backends"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["caption", "missing.mp4"], "Error: Cannot read video missing.mp4: no such file."),
        (["caption", "{video}", "-m", "qwen2-vl"], "Did you mean: qwen2.5-vl-"),
        (["caption", "{video}", "-m", "mock", "--fps", "0"], "Invalid fps: 0"),
        (
            ["caption", "{video}", "-m", "mock", "--window", "10", "--overlap", "20"],
            "Invalid overlap_seconds",
        ),
        (["find", "{video}", "  ", "-m", "mock"], "Invalid query"),
        (
            ["caption", "{video}", "-m", "mock", "--base-url", "http://127.0.0.1:9/v1", "--family", "marlin"],
            "connection refused",
        ),
    ],
)
def test_bad_input_is_one_line(mock_model, shared_videos, tmp_path, args, message):
    args = [a.replace("{video}", str(shared_videos / "asl-eat.mkv")) for a in args]
    result = CliRunner().invoke(cli, [*args, "--no-progress"])
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["caption", "{dir}", "-m", "mock", "--no-progress"],
        ["find", "{dir}", "a door opens", "-m", "mock", "--no-progress"],
        ["probe", "{dir}"],
        ["clip", "{dir}", "0", "1", "-o", "{dir}/out.mp4"],
    ],
)
def test_a_directory_as_video_is_the_same_one_line(mock_model, tmp_path, args):
    result = CliRunner().invoke(cli, [a.replace("{dir}", str(tmp_path)) for a in args])
    assert result.exit_code == 1  # a bad video, not click's usage error (2)
    assert result.stderr == f"Error: Cannot read video {tmp_path}: it is a directory, not a video file\n"


def test_not_a_video_is_one_line(mock_model, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello, this is not a video\n" * 10)
    result = CliRunner().invoke(cli, ["caption", str(bad), "-m", "mock", "--no-progress"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and f"Cannot read video {bad}" in result.stderr


def test_default_model_without_weights_says_what_to_do(shared_videos, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["caption", str(shared_videos / "asl-eat.mkv"), "--no-progress"])
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert "NemoStation/Marlin-2B" in line and "--model" in line and "--base-url" in line


def test_debug_shows_traceback(mock_model, tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "caption", str(tmp_path / "x.mp4"), "-m", "qwen2-vl"])
    # --debug re-raises: CliRunner captures the exception instead of a one-line message
    assert result.exit_code != 0


def _vidspan_process(*args: str, env_extra: dict[str, str] | None = None):
    """The installed CLI in a fresh process, as a user runs it: no test shim for torchvision."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {"HF_HUB_OFFLINE": "1"}
    code = "import sys; from vidspan.cli.main import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env=env | (env_extra or {}))  # fmt: skip


def test_new_user_without_weights_gets_the_weights_sentence(shared_videos, tmp_path):
    done = _vidspan_process("caption", str(shared_videos / "asl-walk.mkv"), "--no-progress",
                            env_extra={"HF_HOME": str(tmp_path / "hf")})  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "The weights of NemoStation/Marlin-2B are not available here" in done.stderr


def test_new_user_bad_video_and_bad_setting_fail_before_any_model_loads(shared_videos, tmp_path):
    done = _vidspan_process("caption", str(shared_videos / "SOURCE.md"), "--no-progress")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert f"Cannot read video {shared_videos / 'SOURCE.md'}" in done.stderr
    done = _vidspan_process(
        "find", str(shared_videos / "asl-eat.mkv"), "a hand", "--fps", "-1", "--no-progress"
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "Invalid fps: -1.0. It must be > 0." in done.stderr
