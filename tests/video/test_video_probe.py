"""probe(): what a file holds, read from its content, and one clear VideoError per kind of bad input."""

from __future__ import annotations

import math
import re

import pytest

from vidspan.errors import VideoError
from vidspan.types import Span
from vidspan.video import SamplingConfig, probe, select_frames

SHARED_CLIPS = {
    # name: (frames, fps, duration seconds, width, height, frames sampled with Marlin's defaults)
    "asl-eat.mkv": (47, 30.0, 1.566, 640, 480, 4),
    "asl-walk.mkv": (89, 30.0, 2.966, 640, 480, 4),
    "car-detection.mp4": (377, 12.5, 30.16, 768, 432, 60),
    "bottle-detection.mp4": (1189, 29.83, 39.85, 640, 360, 78),
    "one-by-one-person-detection.mp4": (1394, 10.0, 139.4, 768, 432, 240),
}


@pytest.mark.parametrize("name", sorted(SHARED_CLIPS))
def test_probe_shared_clips_match_their_table(shared_videos, name):
    frames, fps, duration, width, height, _ = SHARED_CLIPS[name]
    info = probe(shared_videos / name)
    assert info.num_frames == frames
    assert math.isclose(info.fps, fps, rel_tol=2e-3)
    assert isinstance(info.fps, float)
    assert math.isclose(info.duration_seconds, duration, abs_tol=0.01)
    assert (info.width, info.height, info.rotation) == (width, height, 0)
    assert info.codec == "h264"
    assert info.container == ("matroska" if name.endswith(".mkv") else "mp4")
    assert info.start_seconds == 0.0
    assert not info.is_vfr
    assert math.isclose(info.num_frames / info.fps, info.duration_seconds, rel_tol=1e-9)


@pytest.mark.parametrize("name", sorted(SHARED_CLIPS))
def test_shared_clips_sampled_frame_counts(shared_videos, name):
    """The worked frame counts of video-sampling.md §1.3 with Marlin's settings (max_frames=240)."""
    info = probe(shared_videos / name)
    from vidspan.video import open_video

    with open_video(shared_videos / name) as reader:
        picked = select_frames(
            reader.frame_times, Span(0, info.duration_seconds), SamplingConfig(max_frames=240)
        )
    assert len(picked) == SHARED_CLIPS[name][5]


def test_probe_matches_torchcodec_metadata(shared_videos):
    """Frame count and average fps agree with torchcodec's exact-mode scan (what qwen-vl-utils reads)."""
    decoders = pytest.importorskip("torchcodec.decoders")
    for name in SHARED_CLIPS:
        meta = decoders.VideoDecoder(str(shared_videos / name)).metadata
        info = probe(shared_videos / name)
        assert info.num_frames == meta.num_frames
        assert math.isclose(info.fps, meta.average_fps, rel_tol=1e-9)
        assert math.isclose(info.duration_seconds, meta.duration_seconds, rel_tol=1e-9)


def test_probe_constant_rate_clip(cfr_clip):
    info = probe(cfr_clip)
    assert (info.num_frames, info.width, info.height) == (180, 320, 180)
    assert info.fps == 30.0
    assert math.isclose(info.duration_seconds, 6.0)
    assert not info.is_vfr
    assert info.to_dict()["path"] == str(cfr_clip)


def test_probe_variable_rate_clip(vfr_clip):
    info = probe(vfr_clip)
    assert info.num_frames == 200
    assert info.is_vfr
    assert math.isclose(info.duration_seconds, 10.0, abs_tol=1e-6)
    assert math.isclose(info.fps, 20.0, rel_tol=1e-6)  # the average, not either real rate


def test_probe_rotated_clip_swaps_width_and_height(rotated_clip):
    info = probe(rotated_clip)
    assert info.rotation == 90
    assert (info.width, info.height) == (180, 320)


def test_probe_odd_size_and_one_second(odd_size_clip, one_second_clip):
    odd = probe(odd_size_clip)
    assert (odd.width, odd.height, odd.num_frames, odd.container) == (333, 197, 30, "matroska")
    one = probe(one_second_clip)
    assert (one.num_frames, one.fps) == (30, 30.0)
    assert math.isclose(one.duration_seconds, 1.0)


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("truncated_mp4", r"the file is truncated: it is an MP4/MOV file without its index \(moov atom\)"),
        (
            "truncated_faststart_mp4",
            r"the file is truncated: its index lists 40 frames but only \d+ are present",
        ),
        ("truncated_mkv", r"the file is truncated: its header says 4\.00 s but the data ends at \d\.\d\d s"),
        (
            "text_as_mp4",
            r"not a video file or an unsupported format \(Invalid data found when processing input\)",
        ),
        ("empty_mp4", r"the file is empty \(0 bytes\)"),
        ("audio_only", r"it has no video stream"),
        ("undecodable_mp4", r"its video stream cannot be decoded: no frame came out"),
    ],
)
def test_bad_files_raise_video_error(request, fixture, reason):
    path = request.getfixturevalue(fixture)
    with pytest.raises(VideoError, match=re.escape(f"Cannot read video {path}: ") + reason) as info:
        probe(path)
    assert info.value.path == str(path)


def test_missing_path_and_directory(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoError, match=re.escape(f"Cannot read video {missing}: no such file")):
        probe(missing)
    with pytest.raises(
        VideoError, match=re.escape(f"Cannot read video {tmp_path}: it is a directory, not a video file")
    ):
        probe(tmp_path)


def test_still_image_is_not_a_video(tmp_path):
    from PIL import Image

    path = tmp_path / "frame.mp4"
    Image.new("RGB", (64, 48), "red").save(path, format="PNG")
    with pytest.raises(
        VideoError, match=r"not a video file or an unsupported format \(a still image: png_pipe\)"
    ):
        probe(path)
