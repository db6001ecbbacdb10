"""Cutting clips with the ffmpeg CLI: stream copy, frame-exact re-encode, argument and failure handling."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidspan.cli.main import cli
from vidspan.errors import MissingDependencyError, VideoError
from vidspan.video import probe
from vidspan.video.cut import cut_clip

GOP_SECONDS = 4.8  # car-detection.mp4: 12.5 fps, a keyframe every 60 frames
START, END = 6.0, 9.2  # 1.2 s after the keyframe at 4.8 s


@pytest.fixture(scope="module")
def car(shared_videos: Path) -> Path:
    return shared_videos / "car-detection.mp4"


def test_precise_cut_is_frame_exact(car, tmp_path):
    out = cut_clip(car, START, END, tmp_path / "precise.mp4", precise=True)
    info = probe(out)
    frame = 1 / probe(car).fps
    assert out == tmp_path / "precise.mp4"
    assert info.codec == "h264"
    assert info.duration_seconds == pytest.approx(END - START, abs=frame + 1e-6)
    assert info.start_seconds == pytest.approx(0.0, abs=1e-3)
    assert info.num_frames == pytest.approx((END - START) / frame, abs=1)
    assert list(tmp_path.iterdir()) == [out]


def test_stream_copy_starts_at_the_keyframe_before_start(car, tmp_path):
    out = cut_clip(car, START, END, tmp_path / "copy.mp4")
    info = probe(out)
    assert info.start_seconds == pytest.approx(0.0, abs=1e-3)
    assert END - START - 0.1 <= info.duration_seconds <= END - START + GOP_SECONDS
    assert list(tmp_path.iterdir()) == [out]


def test_the_range_is_clipped_to_the_video(car, tmp_path):
    duration = probe(car).duration_seconds
    out = cut_clip(car, duration - 1.0, duration + 50, tmp_path / "tail.mkv", precise=True)
    assert probe(out).duration_seconds == pytest.approx(1.0, abs=0.1)
    with pytest.raises(
        ValueError, match=r"Invalid start_seconds: 31.0. It must be before the end of the video"
    ):
        cut_clip(car, 31.0, 40.0, tmp_path / "none.mp4")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (-1.0, 2.0, r"Invalid start_seconds: -1.0. It must be >= 0"),
        (3.0, 3.0, r"Invalid end_seconds: 3.0. It must be greater than start_seconds \(3.0\)"),
        (float("nan"), 2.0, r"Invalid start_seconds: nan. It must be a finite number"),
        (0.0, float("inf"), r"Invalid end_seconds: inf. It must be a finite number"),
    ],
)
def test_invalid_times(car, tmp_path, start, end, message):
    with pytest.raises(ValueError, match=message):
        cut_clip(car, start, end, tmp_path / "out.mp4")


def test_refuses_to_overwrite_unless_asked(car, tmp_path):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists. Pass overwrite=True"):
        cut_clip(car, 0.0, 1.0, out)
    assert out.read_bytes() == b"keep me"
    cut_clip(car, 0.0, 1.0, out, overwrite=True)
    assert probe(out).duration_seconds > 0.5


def test_unreadable_input_raises_video_error(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 10)
    with pytest.raises(VideoError, match="Cannot read video .*notes.mp4"):
        cut_clip(fake, 0.0, 1.0, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


def test_failed_cut_leaves_no_temporary_file(car, tmp_path):
    out = tmp_path / "clip.unknownext"  # ffmpeg cannot pick a muxer for it
    with pytest.raises(VideoError, match="ffmpeg could not cut"):
        cut_clip(car, 0.0, 1.0, out)
    assert list(tmp_path.iterdir()) == []


def test_missing_ffmpeg_is_a_clear_error(car, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="needs the ffmpeg CLI on PATH"):
        cut_clip(car, 0.0, 1.0, tmp_path / "out.mp4")


def test_cli_cuts_with_clock_times(car, tmp_path):
    out = tmp_path / "cli.mp4"
    result = CliRunner().invoke(cli, ["clip", str(car), "0:06", "00:00:09.2", "-o", str(out), "--precise"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert probe(out).duration_seconds == pytest.approx(3.2, abs=0.09)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.mp4", "0", "1"], "Error: Cannot read video missing.mp4: no such file"),
        (["{car}", "5", "4"], "Error: Invalid END: 4. It must be after START (5)."),
        (["{car}", "1:75", "4"], "Error: Invalid START: '1:75'. It must be seconds"),
        (["{car}", "0", "1"], "Error: Output {out} already exists. Pass overwrite=True (--overwrite)"),
    ],
)
def test_cli_errors_are_one_line(car, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"x")
    argv = ["clip", *(a.format(car=car) for a in args), "-o", str(out)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(out=out)), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4"]
