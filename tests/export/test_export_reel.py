"""Highlight reels: hits from videos of different sizes and frame rates joined into one MP4."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from vidspan.export import make_reel
from vidspan.library.types import SearchHit


def hit(video: Path, start: float, end: float) -> SearchHit:
    return SearchHit(video=str(video), start=start, end=end, score=1.0, caption="", video_id=1, event_id=1)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_reel_of_three_hits_from_two_videos(shared_videos, tmp_path):
    bottle = shared_videos / "bottle-detection.mp4"  # 640x360, 179/6 fps, no audio
    car = shared_videos / "car-detection.mp4"  # 768x432, 12.5 fps, AAC audio
    hits = [hit(bottle, 2.0, 5.0), hit(car, 20.0, 24.0), hit(bottle, 8.0, 10.5)]
    reel = make_reel(hits, tmp_path / "reel.mp4")
    assert reel.path == tmp_path / "reel.mp4" and list(tmp_path.iterdir()) == [reel.path]
    info = ffprobe(reel.path)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert len(video) == 1 and video[0]["codec_name"] == "h264"
    assert (video[0]["width"], video[0]["height"]) == (640, 360) == (reel.width, reel.height)
    assert Fraction(video[0]["r_frame_rate"]) == Fraction(179, 6) == reel.fps
    assert len(audio) == 1 and audio[0]["codec_name"] == "aac" and reel.has_audio
    expected = sum(h.end - h.start for h in hits)
    assert float(info["format"]["duration"]) == pytest.approx(expected, abs=0.3)
    assert reel.duration_seconds == pytest.approx(expected, abs=3 / 12.5)
    assert [(s.video, s.start) for s in reel.segments] == [(h.video, h.start) for h in hits]
    offsets = [s.offset_seconds for s in reel.segments]
    assert offsets[0] == 0.0
    for before, segment in zip(reel.segments, reel.segments[1:], strict=False):
        assert segment.offset_seconds == pytest.approx(before.offset_seconds + before.duration_seconds)
    for segment, h in zip(reel.segments, hits, strict=True):
        assert segment.end == pytest.approx(h.end, abs=1 / reel.fps)


def test_reel_without_audio_at_a_chosen_size_and_rate(shared_videos, tmp_path):
    bottle = shared_videos / "bottle-detection.mp4"
    reel = make_reel([hit(bottle, 38.5, 99.0)], tmp_path / "short.mp4", size=(320, 240), fps=10)
    info = ffprobe(reel.path)
    (video,) = info["streams"]
    assert video["codec_type"] == "video" and (video["width"], video["height"]) == (320, 240)
    assert video["r_frame_rate"] == "10/1" and not reel.has_audio
    assert reel.segments[0].end == pytest.approx(39.855, abs=0.1), "an end past the video is clipped"
    assert float(info["format"]["duration"]) == pytest.approx(39.855 - 38.5, abs=0.15)


def test_reel_refuses_bad_input_and_leaves_nothing_behind(shared_videos, tmp_path):
    bottle = shared_videos / "bottle-detection.mp4"
    with pytest.raises(ValueError, match="Invalid hits: none"):
        make_reel([], tmp_path / "r.mp4")
    with pytest.raises(ValueError, match=r"Invalid hit start: 45 in .*bottle-detection\.mp4"):
        make_reel([hit(bottle, 45.0, 50.0)], tmp_path / "r.mp4")
    with pytest.raises(ValueError, match="must not be one of the hits' videos"):
        make_reel([hit(bottle, 1.0, 2.0)], bottle, overwrite=True)
    with pytest.raises(ValueError, match="Invalid size: 321x240"):
        make_reel([hit(bottle, 1.0, 2.0)], tmp_path / "r.mp4", size=(321, 240))
    (tmp_path / "taken.mp4").write_text("keep")
    with pytest.raises(FileExistsError, match="already exists"):
        make_reel([hit(bottle, 1.0, 2.0)], tmp_path / "taken.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["taken.mp4"]
