"""``vidspan export`` and ``vidspan search --reel`` through click, on caption files and a real library."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidspan.cli.export import export_command, register
from vidspan.cli.library import search_command
from vidspan.export import chapters_from_events, to_srt, to_webvtt, to_youtube_chapters
from vidspan.library.embed import default_embedder
from vidspan.library.open import open_index
from vidspan.types import Caption, Event, Span

EVENTS = (
    Event(Span(0.5, 6.0), "A hand reaches for the bottle."),
    Event(Span(12.0, 18.5), "The bottle is lifted <high> & turned."),
    Event(Span(25.0, 30.0), "The bottle is put back."),
)
CAR_EVENTS = (Event(Span(1.0, 5.0), "A car drives through the lot."),)


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def ffprobe_json(path: Path, *what: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", *what, str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.fixture
def caption_json(shared_videos, tmp_path) -> Path:
    """What ``vidspan caption VIDEO --json`` prints."""
    caption = Caption(scene="Bottles on a table.", events=EVENTS, raw="Scene: ...", model="mock")
    payload = {"video": str(shared_videos / "bottle-detection.mp4"), "model": "mock"} | caption.to_dict()
    payload |= {"format_ok": True, "violations": [], "windows": [[0.0, 39.855]], "settings": {}}
    path = tmp_path / "bottle.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


@pytest.fixture(scope="module")
def library(shared_videos, tmp_path_factory) -> Path:
    """A real SQLite library of two shared clips, with real embeddings of hand-written captions."""
    db = tmp_path_factory.mktemp("library") / "lib.sqlite"
    embedder = default_embedder()
    with open_index(db) as index:
        for name, events in (("bottle-detection.mp4", EVENTS), ("car-detection.mp4", CAR_EVENTS)):
            caption = Caption(scene="A scene.", events=events, raw="", model="mock")
            vectors = embedder.embed([e.description for e in events])
            index.add_video(shared_videos / name, hashlib.sha256(name.encode()).hexdigest(), caption, vectors)
    return db


def test_register_adds_the_command():
    import click

    group = click.Group()
    register(group)
    assert group.commands["export"] is export_command


def test_vtt_to_stdout_from_a_caption_file(caption_json):
    result = invoke(export_command, caption_json, "--format", "vtt")
    assert result.exit_code == 0, result.output
    assert result.stdout == to_webvtt(EVENTS) and "&lt;high&gt; &amp;" in result.stdout
    assert result.stderr == ""


def test_srt_file_with_the_format_from_the_extension(caption_json, tmp_path):
    out = tmp_path / "subs.srt"
    result = invoke(export_command, caption_json, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == to_srt(EVENTS) and result.stdout == ""
    assert result.stderr == f"wrote {out}\n"
    again = invoke(export_command, caption_json, "-o", out)
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert invoke(export_command, caption_json, "-o", out, "--overwrite").exit_code == 0


def test_chapters_probe_the_video_named_in_the_caption_file(caption_json):
    result = invoke(export_command, caption_json, "--format", "chapters")
    assert result.exit_code == 0, result.output
    assert result.stdout == to_youtube_chapters(chapters_from_events(EVENTS, 39.855))
    assert result.stdout.startswith("0:00 A hand reaches for the bottle.\n0:12 ")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["missing.json", "--format", "vtt"], 1, "Cannot read caption file missing.json: no such file."),
        (["{bad}", "--format", "vtt"], 1, "Invalid caption file"),
        (["{list}", "--format", "vtt"], 1, "no 'events' list"),
        (["{event}", "--format", "srt"], 1, "event 1: no 'description'"),
        (["{span}", "--format", "srt"], 1, "event 2: Invalid span: start=5.0, end=1.0"),
        (["{caption}"], 2, "Missing option '--format'"),
        (["{caption}", "--format", "vtt", "--mux-into", "x.mp4"], 2, "--mux-into needs --format chapters"),
        (["{nameless}", "--format", "otio"], 2, "--format otio needs the video: pass --video"),
        (["{caption}", "--format", "otio", "--video", "gone.mp4"], 1, "Cannot read video gone.mp4"),
        (["{short}", "--format", "chapters", "--video", "{asl}"], 1, "Invalid duration_seconds: 2.966"),
    ],
)
def test_bad_input_is_one_readable_line(args, code, message, caption_json, shared_videos, tmp_path):
    files = {
        "{bad}": "{not json",
        "{list}": "[1, 2]",
        "{event}": '{"events": [{"start": 1, "end": 5}]}',
        "{span}": json.dumps({"events": [EVENTS[0].to_dict(), {"start": 5, "end": 1, "description": "b"}]}),
        "{nameless}": '{"events": []}',
        "{short}": '{"events": [{"start": 0, "end": 1, "description": "x"}]}',
    }
    paths = {"{caption}": str(caption_json), "{asl}": str(shared_videos / "asl-walk.mkv")}
    for key, text in files.items():
        paths[key] = str(tmp_path / f"{key.strip('{}')}.json")
        Path(paths[key]).write_text(text)
    result = invoke(export_command, *[paths.get(a, a) for a in args])
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert message in result.stderr
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output


def test_caption_file_source_finds_a_relative_video_beside_it(shared_videos, tmp_path, monkeypatch):
    from vidspan.export import ExportSource

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"")
    payload = {"video": "clip.mp4", "events": [e.to_dict() for e in EVENTS], "windows": [[0, 30], [20, 39.9]]}
    (folder / "clip.json").write_text(json.dumps(payload))
    monkeypatch.chdir(tmp_path)
    source = ExportSource.from_caption_json(folder / "clip.json")
    assert source.video == str(folder / "clip.mp4") and source.duration_seconds == 39.9
    assert source.events == EVENTS


def test_otio_from_the_library(library, shared_videos, tmp_path):
    otio = pytest.importorskip("opentimelineio")
    video = shared_videos / "bottle-detection.mp4"
    out = tmp_path / "bottle.otio"
    result = invoke(export_command, video, "--db", library, "--format", "otio-clips", "-o", out)
    assert result.exit_code == 0, result.output
    (track,) = otio.adapters.read_from_file(str(out)).tracks
    assert [clip.name for clip in track] == [e.description for e in EVENTS]
    assert {clip.media_reference.target_url for clip in track} == {video.resolve().as_uri()}
    printed = invoke(export_command, video, "--db", library, "--format", "otio")
    assert printed.exit_code == 0, printed.output
    (clip,) = otio.adapters.read_from_string(printed.stdout, "otio_json").tracks[0]
    assert [m.name for m in clip.markers] == [e.description for e in EVENTS]


def test_chapters_from_the_library_muxed_into_a_copy(library, shared_videos, tmp_path):
    video = shared_videos / "bottle-detection.mp4"
    copy = tmp_path / "chaptered.mp4"
    result = invoke(export_command, video, "--db", library, "--format", "chapters", "--mux-into", copy)
    assert result.exit_code == 0, result.output
    titles = result.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in titles] == ["0:00", "0:12", "0:25"]
    chapters = ffprobe_json(copy, "-show_chapters")["chapters"]
    assert [c["tags"]["title"] for c in chapters] == [line.split(" ", 1)[1] for line in titles]
    assert [float(c["start_time"]) for c in chapters] == [0.0, 12.0, 25.0]
    assert f"wrote {copy}" in result.stderr


def test_a_video_missing_from_the_library(library, shared_videos, monkeypatch, tmp_path):
    result = invoke(export_command, shared_videos / "asl-eat.mkv", "--db", library, "--format", "vtt")
    assert result.exit_code == 1
    assert "asl-eat.mkv is not in the library" in result.stderr and "vidspan index" in result.stderr
    monkeypatch.setenv("VIDSPAN_INDEX", str(tmp_path / "none.sqlite"))
    missing = invoke(export_command, shared_videos / "asl-eat.mkv", "--format", "vtt")
    assert missing.exit_code == 1 and "No index at" in missing.stderr


def test_search_reel_joins_the_hits(library, tmp_path):
    reel = tmp_path / "reel.mp4"
    result = invoke(search_command, "bottle car", "--db", library, "-n", "3", "--json", "--reel", reel)
    assert result.exit_code == 0, result.output
    assert f"wrote {reel}" in result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 3
    assert {Path(h["video"]).name for h in hits} == {"bottle-detection.mp4", "car-detection.mp4"}
    info = ffprobe_json(reel, "-show_streams", "-show_format")
    assert any(s["codec_type"] == "video" for s in info["streams"])
    total = sum(h["end"] - h["start"] for h in hits)
    assert float(info["format"]["duration"]) == pytest.approx(total, abs=0.3)
    none = invoke(search_command, "zebra", "--db", library, "--path", "*.mkv", "--reel", tmp_path / "no.mp4")
    assert none.exit_code == 0 and "no reel written" in none.stderr and not (tmp_path / "no.mp4").exists()
