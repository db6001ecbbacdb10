"""Second-stage grounding of search hits and cutting hits into clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.library.indexer import index_paths
from vidspan.library.refine import export_hits, ground_hits
from vidspan.library.sqlite import VideoIndex
from vidspan.models import register_plugin, unregister_plugin
from vidspan.testing.mock import MockPlugin, MockVideoModel
from vidspan.video import probe

CAPTIONS = {
    "bottle-detection": "Scene: Bottles.\nEvents:\n<20.0 - 26.0> A hand lifts a bottle from the table.\n",
    "car-detection": "Scene: A parking lot.\nEvents:\n<1.0 - 5.0> A car drives through the lot.\n",
}


def reply(clip, prompt: str) -> str:
    if "Identify the timestamps" in prompt:
        return "From 8.0 to 12.0."  # window-relative, as the model sees it
    return CAPTIONS[Path(clip.video.path).stem]


@pytest.fixture(scope="module")
def library(shared_videos, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("lib") / "lib.sqlite"
    files = [shared_videos / "bottle-detection.mp4", shared_videos / "car-detection.mp4"]
    index_paths(files, MockVideoModel([reply]), db, fps=0.1, min_frames=2, max_pixels=4096)
    return db


def test_ground_replaces_spans_with_the_models_answer_in_source_time(library):
    model = MockVideoModel([reply])
    with VideoIndex(library, create=False) as index:
        hits = index.search("a hand lifts a bottle", limit=2)
    assert Path(hits[0].video).stem == "bottle-detection" and (hits[0].start, hits[0].end) == (20.0, 26.0)
    grounded = ground_hits(hits, "a hand lifts a bottle", model, top=1, padding_seconds=10, max_frames=8)
    first = grounded[0]
    assert first.grounding["window"] == (10.0, 36.0)
    assert (first.start, first.end) == (18.0, 22.0)  # window start 10 s + the answer 8-12 s
    assert first.grounding["caption_span"] == (20.0, 26.0) and first.grounding["format_ok"]
    assert grounded[1] == hits[1]  # only the top hit was grounded
    assert model.history[0].prompt.endswith('"a hand lifts a bottle" takes place. Output the time range as '
                                            '"From <start> to <end>." (numbers in seconds).')  # fmt: skip


def test_export_cuts_every_hit(library, tmp_path):
    with VideoIndex(library, create=False) as index:
        hits = index.search("car", limit=1)
    paths = export_hits(hits, tmp_path / "clips", precise=True)
    assert [p.name for p in paths] == ["car-detection_00001.00-00005.00.mp4"]
    assert probe(paths[0]).duration_seconds == pytest.approx(4.0, abs=0.2)


def test_search_cli_ground_and_export(library, tmp_path):
    model = MockVideoModel([reply], name="mock")
    plugin = MockPlugin(model)
    register_plugin(plugin)
    try:
        args = ["search", "a hand lifts a bottle", "--db", str(library), "--limit", "1", "--ground",
                "-m", "mock", "--max-frames", "8", "--export", str(tmp_path / "out"), "--json"]
        result = CliRunner().invoke(cli, args)
    finally:
        unregister_plugin(plugin)
    assert result.exit_code == 0, result.output
    hit = json.loads(result.stdout)["hits"][0]
    assert hit["grounding"]["raw"] == "From 8.0 to 12.0." and hit["start"] < hit["end"]
    assert len(list((tmp_path / "out").glob("*.mp4"))) == 1 and "wrote" in result.stderr
