"""vidspan index / search / library: output shapes, progress on stderr, default db, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.library.indexer import index_paths
from vidspan.models import register_plugin, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel

CAPTIONS = {
    "bottle-detection": (
        "Scene: Bottles on a table.\nEvents:\n"
        "<2.0 - 6.0> A hand lifts a bottle from the table.\n<8.0 - 12.0> The hand puts it back down.\n"
    ),
    "car-detection": (
        "Scene: A parking lot.\nEvents:\n<1.0 - 5.0> A car drives through the lot.\n"
        "<20.0 - 24.0> A red car leaves the frame.\n"
    ),
    "asl-walk": "Scene: A person signs.\nEvents:\n<0.0 - 1.0> The hands rise.\n",
}
FAST = ["--fps", "0.1", "--min-frames", "2", "--max-pixels", "4096", "-m", "mock"]


@pytest.fixture
def mock_model():
    model = MockVideoModel([lambda clip, prompt: CAPTIONS[Path(clip.video.path).stem]], name="mock")
    plugin = MockPlugin(model)
    register_plugin(plugin)
    yield model
    unregister_plugin(plugin)


@pytest.fixture
def videos(shared_videos, tmp_path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("bottle-detection.mp4", "car-detection.mp4", "asl-walk.mkv"):
        shutil.copy(shared_videos / name, folder / name)
    return folder


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def indexed(shared_videos, tmp_path_factory) -> Path:
    """A library of three clips, built once through the library API (``vidspan index`` is tested below)."""
    db = tmp_path_factory.mktemp("index") / "lib.sqlite"
    model = MockVideoModel([lambda clip, prompt: CAPTIONS[Path(clip.video.path).stem]])
    files = [shared_videos / n for n in ("bottle-detection.mp4", "car-detection.mp4", "asl-walk.mkv")]
    report = index_paths(files, model, db, fps=0.1, min_frames=2, max_pixels=4096)
    assert len(report.indexed) == 3
    return db


def test_index_prints_progress_with_eta_on_stderr_and_a_summary(mock_model, videos, tmp_path):
    db = tmp_path / "lib.sqlite"
    result = run("index", videos, "--db", db, *FAST)
    assert result.exit_code == 0, result.output
    assert "[1/3] captioning asl-walk.mkv" in result.stderr and "ETA" in result.stderr
    assert "[3/3] done" in result.stderr and "[1/3]" not in result.stdout
    assert result.stdout.startswith("Indexed 3 video(s) (5 events), 0 unchanged, 0 failed")
    again = run("index", videos, "--db", db, "--json", "--no-progress", *FAST)
    report = json.loads(again.stdout)
    assert len(report["skipped"]) == 3 and report["indexed"] == [] and again.stderr == ""


def test_search_text_and_json(indexed):
    result = run("search", "bottle", "--db", indexed)
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert "bottle-detection.mp4  00:02.0 - 00:06.0  A hand lifts a bottle from the table." in first
    result = run("search", "someone picks up a container", "--db", indexed, "--json", "--limit", "2")
    data = json.loads(result.stdout)
    assert data["query"] == "someone picks up a container" and len(data["hits"]) == 2
    hit = data["hits"][0]
    assert {"video", "start", "end", "score", "caption"} <= hit.keys()
    assert hit["caption"] == "A hand lifts a bottle from the table."
    assert hit["video"].endswith("bottle-detection.mp4")
    assert (hit["start"], hit["end"]) == (2.0, 6.0) and hit["score"] > 0


def test_search_filters(indexed):
    result = run("search", "car", "--db", indexed, "--json", "--path", "*car*", "--start", "10")
    data = json.loads(result.stdout)
    assert [h["caption"] for h in data["hits"]] == ["A red car leaves the frame."]
    data = json.loads(run("search", "car", "--db", indexed, "--json", "--path", "*.mkv").stdout)
    assert {Path(h["video"]).name for h in data["hits"]} == {"asl-walk.mkv"}
    none = run("search", "bottle", "--db", indexed, "--path", "nothing")
    assert none.stdout == "No matches for 'bottle'.\n"
    bad = run("search", "bottle", "--db", indexed, "--start", "5", "--end", "2")
    assert bad.exit_code == 1 and "Invalid time range" in bad.stderr


def test_library_lists_videos(indexed):
    result = run("library", "--db", indexed)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and "2 events  mock" in lines[1] and lines[1].endswith("bottle-detection.mp4")
    assert lines[-1].startswith("3 video(s), 5 events in ")
    data = json.loads(run("library", "--db", indexed, "--json").stdout)
    assert data["status"]["num_videos"] == 3
    assert [Path(v["path"]).name for v in data["videos"]] == ["asl-walk.mkv", "bottle-detection.mp4",
                                                             "car-detection.mp4"]  # fmt: skip


def test_default_db_lives_in_the_user_path(mock_model, videos):
    assert run("index", videos / "asl-walk.mkv", "--no-progress", *FAST).exit_code == 0
    expected = Path(os.environ["VIDSPAN_USER_PATH"]) / "index.sqlite"
    assert expected.is_file()
    assert "The hands rise." in run("search", "hands").stdout


def test_missing_index_is_one_line(tmp_path):
    missing = tmp_path / "none.sqlite"
    for command in (["search", "bottle"], ["library"]):
        result = run(*command, "--db", missing)
        assert result.exit_code == 1
        assert result.stderr == f"Error: No index at {missing}: run 'vidspan index PATH' first.\n"
        assert not missing.exists()


def test_index_of_a_missing_path_fails_cleanly(tmp_path):
    result = run("index", tmp_path / "nope.mp4", "--db", tmp_path / "lib.sqlite")
    assert result.exit_code == 2 and "does not exist" in result.stderr
