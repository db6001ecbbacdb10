"""Chapters: YouTube's rules, FFmpeg metadata escaping, and a chaptered copy read back with ffprobe."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from vidspan.errors import VideoError
from vidspan.export import Chapter, chapters_from_events, mux_chapters, to_ffmetadata, to_youtube_chapters
from vidspan.types import Event, Span

BOTTLE_SECONDS = 39.855


def ev(start: float, end: float, text: str) -> Event:
    return Event(Span(start, end), text)


def ffprobe_chapters(path: Path) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_chapters", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)["chapters"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_short_events_are_merged_into_the_chapter_before():
    events = [
        ev(4.0, 6.0, "too soon after the first"),
        ev(0.6, 3.0, "A hand reaches  in"),
        ev(12.7, 15.0, "The bottle is lifted"),
        ev(19.0, 21.0, "merged into the lifting"),
        ev(25.0, 30.0, "The bottle is put down"),
        ev(33.0, 39.0, "too close to the end"),
    ]
    chapters = chapters_from_events(events, BOTTLE_SECONDS)
    assert chapters == [
        Chapter(0.0, "A hand reaches in"), Chapter(12.0, "The bottle is lifted"),
        Chapter(25.0, "The bottle is put down"),
    ]  # fmt: skip
    assert to_youtube_chapters(chapters, duration_seconds=BOTTLE_SECONDS) == (
        "0:00 A hand reaches in\n0:12 The bottle is lifted\n0:25 The bottle is put down\n"
    )


def test_a_late_first_event_gets_an_intro_and_long_videos_get_hours():
    events = [ev(95.0, 100.0, "Kick-off"), ev(1800.0, 1810.0, "Half time"), ev(3723.0, 3730.0, "Goal")]
    chapters = chapters_from_events(events, 3800.0, intro_title="Warm-up")
    assert to_youtube_chapters(chapters) == "0:00 Warm-up\n1:35 Kick-off\n30:00 Half time\n1:02:03 Goal\n"


def test_impossible_chapter_lists_raise_a_clear_value_error():
    with pytest.raises(ValueError, match=r"Invalid duration_seconds: 25\. .* at least 30 s long"):
        chapters_from_events([ev(0, 5, "a"), ev(10, 15, "b"), ev(20, 25, "c")], 25.0)
    with pytest.raises(ValueError, match=r"after merging chapters shorter than 10 s, 2 remain .* at least 3"):
        chapters_from_events([ev(0, 5, "a"), ev(3, 9, "b"), ev(15, 20, "c")], 31.0)
    with pytest.raises(ValueError, match="Invalid events: none"):
        chapters_from_events([], 60.0)


@pytest.mark.parametrize(
    ("chapters", "duration", "match"),
    [
        ([Chapter(0, "a"), Chapter(10, "b")], None, r"Invalid chapters: 2\. YouTube needs at least 3"),
        ([Chapter(1, "a"), Chapter(11, "b"), Chapter(21, "c")], None, r"It must be 0 \(0:00\)"),
        ([Chapter(0, "a"), Chapter(9.9, "b"), Chapter(30, "c")], None, r"chapter 2 start: 0:09 \('b'\)"),
        ([Chapter(0, "a"), Chapter(20, "b"), Chapter(15, "c")], None, r"chapter 3 start: 0:15"),
        ([Chapter(0, "a"), Chapter(10, "b"), Chapter(20, "c")], 29.5, r"Invalid last chapter start: 0:20"),
    ],
)
def test_youtube_rules_are_checked(chapters, duration, match):
    with pytest.raises(ValueError, match=match):
        to_youtube_chapters(chapters, duration_seconds=duration)


def test_chapter_validates_its_fields():
    with pytest.raises(ValueError, match="Invalid chapter start: -1"):
        Chapter(-1, "a")
    with pytest.raises(ValueError, match="Invalid chapter title"):
        Chapter(0, "  ")


def test_ffmetadata_escapes_special_characters():
    chapters = [Chapter(0, "a=b; c#d \\ e"), Chapter(12.3456, "line one\nline two")]
    assert to_ffmetadata(chapters, 20.0) == (
        ";FFMETADATA1\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=12346\ntitle=a\\=b\\; c\\#d \\\\ e\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=12346\nEND=20000\ntitle=line one\\\nline two\n"
    )
    with pytest.raises(ValueError, match="ascending order"):
        to_ffmetadata([Chapter(5, "a"), Chapter(5.0001, "b")], 20.0)
    with pytest.raises(ValueError, match="ascending order"):
        to_ffmetadata([Chapter(0, "a"), Chapter(20, "b")], 20.0)


def test_mux_writes_a_chaptered_copy_and_leaves_the_source_alone(shared_videos, tmp_path):
    video = shared_videos / "bottle-detection.mp4"
    before = sha256(video)
    chapters = [Chapter(0, "Start = here; #1"), Chapter(12.5, "Back\\slash"), Chapter(25, "Ünïcode end")]
    out = mux_chapters(video, chapters, tmp_path / "chaptered.mp4")
    assert out == tmp_path / "chaptered.mp4"
    found = ffprobe_chapters(out)
    assert [c["tags"]["title"] for c in found] == [c.title for c in chapters]
    assert [(float(c["start_time"]), float(c["end_time"])) for c in found] == pytest.approx(
        [(0.0, 12.5), (12.5, 25.0), (25.0, BOTTLE_SECONDS)], abs=1e-3
    )
    assert sha256(video) == before
    assert ffprobe_chapters(video) == []
    assert list(tmp_path.iterdir()) == [out], "no temporary files may be left behind"


def test_mux_refuses_the_source_existing_outputs_and_reports_ffmpeg_failures(shared_videos, tmp_path):
    chapters = [Chapter(0, "a"), Chapter(10, "b"), Chapter(20, "c")]
    copy = tmp_path / "copy.mp4"
    copy.write_bytes((shared_videos / "bottle-detection.mp4").read_bytes())
    before = sha256(copy)
    with pytest.raises(ValueError, match="It must differ from the source video"):
        mux_chapters(copy, chapters, tmp_path / "." / "copy.mp4", overwrite=True)
    existing = tmp_path / "existing.mp4"
    existing.write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        mux_chapters(copy, chapters, existing)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(VideoError, match=r"fake\.mp4: ffmpeg could not write chapters into .*out\.mp4: "):
        mux_chapters(fake, chapters, tmp_path / "out.mp4", duration_seconds=30.0)
    assert sha256(copy) == before and existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4", "existing.mp4", "fake.mp4"]
