"""VideoReader: sparse decoding equals a full decode; sampling by time, rotation, sizes, qwen parity."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from vidspan.errors import VideoError
from vidspan.types import Clip, Span
from vidspan.video import SamplingConfig, VideoReader, open_video, sample_clip, select_frames, smart_resize
from vidspan.video.plan import frame_pixel_budget

SHARED_NAMES = [
    "asl-eat.mkv",
    "asl-walk.mkv",
    "car-detection.mp4",
    "bottle-detection.mp4",
    "one-by-one-person-detection.mp4",
]


def full_decode(path: Path, pts: set[int]) -> dict[int, np.ndarray]:
    """The reference: decode every frame in order with PyAV defaults, keep the RGB of those with ``pts``."""
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.pts in pts:
                frames[frame.pts] = frame.to_ndarray(format="rgb24")
    return frames


def assert_identical_to_full_decode(reader: VideoReader, indices: np.ndarray) -> None:
    got = reader.decode(indices)
    pts = reader._index.frame_pts[indices].tolist()
    reference = full_decode(reader.path, set(pts))
    for k, p in enumerate(pts):
        assert np.array_equal(got[k], reference[p]), f"frame {indices[k]} (pts {p}) differs"


@pytest.fixture
def no_fallback(caplog):
    """Fail when the reader had to fall back from sparse decoding (it logs a warning when it does)."""
    caplog.set_level(logging.WARNING, logger="vidspan.video")
    yield
    assert not [r for r in caplog.records if r.name.startswith("vidspan.video")], caplog.text


@pytest.mark.parametrize("name", SHARED_NAMES)
def test_sparse_decoding_is_identical_on_shared_clips(shared_videos, name, no_fallback):
    with open_video(shared_videos / name) as reader:
        n = len(reader.frame_times)
        plan = select_frames(reader.frame_times, Span(0, reader.info.duration_seconds), SamplingConfig())
        extra = np.random.default_rng(7).choice(n, size=min(n, 12), replace=False)
        assert_identical_to_full_decode(reader, np.concatenate([plan, extra, [n - 1, 0]]))


def test_sparse_decoding_is_identical_with_b_frames(cfr_clip, no_fallback):
    with av.open(str(cfr_clip)) as container:
        kinds = {int(frame.pict_type) for frame in container.decode(video=0)}
    assert int(av.video.frame.PictureType.B) in kinds  # the clip has B-frames, which the NONREF skip drops
    with open_video(cfr_clip) as reader:
        assert_identical_to_full_decode(reader, np.arange(0, 180, 7))
        assert_identical_to_full_decode(reader, np.array([179, 3, 3, 31, 30, 29, 90]))  # any order, repeats
        assert_identical_to_full_decode(reader, np.arange(180))


def test_sparse_decoding_is_identical_with_open_gops(open_gop_clip, no_fallback):
    with open_video(open_gop_clip) as reader:
        assert_identical_to_full_decode(reader, np.arange(0, 100, 3))
        assert_identical_to_full_decode(reader, np.array([17, 18, 19, 20, 21, 38, 39, 41, 99]))


def test_stream_without_timestamps_is_decoded_in_order(raw_h264, cfr_clip):
    with open_video(raw_h264) as raw, open_video(cfr_clip) as mp4:
        assert raw.info.num_frames == 180
        assert np.allclose(raw.frame_times, mp4.frame_times)
        indices = np.array([0, 31, 100, 179, 31])
        assert np.array_equal(raw.decode(indices), mp4.decode(indices))
        assert raw.sample().frame_indices == mp4.sample().frame_indices


def test_sparse_decoding_skips_and_plain_runs_agree(cfr_clip):
    with open_video(cfr_clip) as reader:
        wanted = list(range(2, 180, 11))
        results = []
        for skip in (True, False):
            frames: dict[int, np.ndarray] = {}

            def keep(i: int, frame: av.VideoFrame, frames: dict[int, np.ndarray] = frames) -> None:
                frames[i] = frame.to_ndarray(format="rgb24")

            assert reader._decode_runs(wanted, keep, skip_unwanted=skip) == set(wanted)
            results.append(frames)
        assert all(np.array_equal(results[0][i], results[1][i]) for i in wanted)


@pytest.mark.parametrize("name", SHARED_NAMES)
def test_frame_plan_equals_qwen_vl_utils_indices(shared_videos, name, qwen_vl_utils):
    """Choosing by time gives qwen-vl-utils' ``round(linspace(0, total - 1, n))`` on constant-rate files."""
    torch = pytest.importorskip("torch")
    qwen = qwen_vl_utils
    with open_video(shared_videos / name) as reader:
        info = reader.info
        ele = {"fps": 2.0, "max_frames": 240}
        n = qwen.smart_nframes(ele, total_frames=info.num_frames, video_fps=info.fps)
        expected = torch.linspace(0, info.num_frames - 1, n).round().long().tolist()
        picked = select_frames(
            reader.frame_times, Span(0, info.duration_seconds), SamplingConfig(max_frames=240)
        )
    assert picked.tolist() == expected


def test_sample_on_vfr_keeps_true_timestamps(vfr_clip):
    with av.open(str(vfr_clip)) as container:
        stream = container.streams.video[0]
        true_pts = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.size)
    with open_video(vfr_clip) as reader:
        assert np.allclose(reader.frame_times, true_pts)
        clip = reader.sample(SamplingConfig(num_frames=8))
    assert clip.frame_indices == (0, 14, 28, 43, 71, 114, 156, 199)
    assert np.allclose(clip.timestamps, [true_pts[i] for i in clip.frame_indices], rtol=0, atol=1e-12)
    assert np.allclose(clip.timestamps, [0.0, 1.4, 2.8, 4.3, 5.7, 7.1333, 8.5333, 9.9667], atol=1e-3)
    # the index / average-fps shortcut would put frames up to 1.4 s away from where they are
    index_based = np.round(np.linspace(0, 199, 8)).astype(int)
    claimed = index_based / clip.video.fps
    assert np.abs(np.asarray(true_pts)[index_based] - claimed).max() > 1.0
    gaps = np.diff(clip.timestamps)
    assert gaps.max() - gaps.min() < 0.2  # evenly spread in time, not bunched in the 30 fps half


def test_sample_default_marlin_settings(cfr_clip):
    clip = sample_clip(cfr_clip)
    assert isinstance(clip, Clip)
    assert clip.num_frames == 12  # 6 s x 2 fps
    assert clip.frames.dtype == np.uint8
    assert clip.size == smart_resize(180, 320, factor=32, min_pixels=131072, max_pixels=200704) == (288, 512)
    assert clip.window == Span(0.0, 6.0)
    assert clip.frame_indices == tuple(np.round(np.linspace(0, 179, 12)).astype(int).tolist())
    assert np.allclose(clip.timestamps, np.asarray(clip.frame_indices) / 30.0)


def test_sample_window(cfr_clip):
    with open_video(cfr_clip) as reader:
        clip = reader.sample(SamplingConfig(), window=Span(2.0, 4.0))
        assert clip.window == Span(2.0, 4.0)
        assert clip.frame_indices == (60, 80, 99, 119)
        assert all(2.0 <= t < 4.0 for t in clip.timestamps)
        whole = reader.decode(list(clip.frame_indices), size=clip.size)
        assert np.array_equal(whole, clip.frames)
        with pytest.raises(ValueError, match=r"Invalid window: 7\.0-9\.0 s\. It must overlap the video"):
            reader.sample(window=Span(7.0, 9.0))


def test_resize_uses_pillow_bicubic(cfr_clip):
    from PIL import Image

    with open_video(cfr_clip) as reader:
        small = reader.decode([10], size=(96, 160))[0]
        full = reader.decode([10])[0]
    expected = np.asarray(Image.fromarray(full).resize((160, 96), Image.Resampling.BICUBIC))
    assert np.array_equal(small, expected)


def test_rotated_clip_frames_are_rotated(cfr_clip, rotated_clip):
    with open_video(cfr_clip) as plain, open_video(rotated_clip) as rotated:
        assert rotated.info.rotation == 90
        upright = plain.decode([0, 45, 170])
        turned = rotated.decode([0, 45, 170])
        assert turned.shape == (3, 320, 180, 3)
        assert np.array_equal(turned, np.rot90(upright, k=1, axes=(1, 2)))  # 90° counterclockwise
        clip = rotated.sample()
    h, w = smart_resize(320, 180, factor=32, min_pixels=131072, max_pixels=200704)
    assert clip.size == (h, w) and h > w


def test_odd_size_clip(odd_size_clip):
    with open_video(odd_size_clip) as reader:
        assert reader.decode([0]).shape == (1, 197, 333, 3)
        clip = reader.sample()
    min_pixels, max_pixels = frame_pixel_budget(clip.num_frames, SamplingConfig())
    assert clip.size == smart_resize(197, 333, factor=32, min_pixels=min_pixels, max_pixels=max_pixels)
    assert clip.size[0] % 32 == 0 and clip.size[1] % 32 == 0


def test_one_second_clip(one_second_clip):
    clip = sample_clip(one_second_clip)
    assert clip.num_frames == 4  # 1 s x 2 fps = 2, raised to min_frames
    assert clip.frame_indices == (0, 10, 19, 29)
    assert clip.size == (320, 448)  # 128x96 upscaled to the 128-token floor


def test_single_frame_window_repeats_the_frame(cfr_clip):
    clip = sample_clip(cfr_clip, window=Span(1.0, 1.0))
    assert clip.frame_indices == (30, 30)
    assert np.array_equal(clip.frames[0], clip.frames[1])


def test_decode_argument_errors(cfr_clip):
    reader = open_video(cfr_clip)
    with pytest.raises(IndexError, match=r"Invalid frame index: 180\. It must be in \[0, 180\)\."):
        reader.decode([0, 180])
    with pytest.raises(IndexError, match=r"Invalid frame index: -1\. It must be in \[0, 180\)\."):
        reader.decode([-1])
    with pytest.raises(ValueError, match=r"Invalid size: \(0, 10\)\. It must be \(height, width\)"):
        reader.decode([0], size=(0, 10))
    assert reader.decode([]).shape == (0, 180, 320, 3)
    with pytest.raises(ValueError, match=r"read-only"):
        reader.frame_times[0] = 5.0
    reader.close()
    with pytest.raises(ValueError, match=r"Invalid reader: .* is closed\."):
        reader.decode([0])


def test_open_errors_name_the_file(tmp_path, text_as_mp4):
    with pytest.raises(VideoError, match=r"Cannot read video .*nope\.mp4: no such file"):
        open_video(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match=r"Cannot read video .*notes\.mp4: not a video file"):
        sample_clip(text_as_mp4)


def test_concurrent_sampling_from_one_reader(cfr_clip):
    with open_video(cfr_clip) as reader:
        expected = reader.sample(window=Span(0, 3)).frames
        results: list[np.ndarray] = []
        threads = [
            threading.Thread(target=lambda: results.append(reader.sample(window=Span(0, 3)).frames))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 3 and all(np.array_equal(r, expected) for r in results)


def test_video_package_does_not_import_torch():
    code = "import sys, vidspan.video; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_pixels_close_to_qwen_vl_utils(shared_videos, qwen_vl_utils):
    """Same frames as qwen-vl-utils 0.0.14 fetch_video (torchcodec), pixels within a few levels."""
    pytest.importorskip("torchcodec")
    qwen = qwen_vl_utils
    path = shared_videos / "asl-walk.mkv"
    ele = {
        "video": str(path),
        "fps": 2.0,
        "max_frames": 240,
        "max_pixels": 200704,
        "min_pixels": 128 * 32 * 32,
    }
    try:
        video, meta, _ = qwen.VIDEO_READER_BACKENDS["torchcodec"](ele)
    except Exception as exc:  # noqa: BLE001 - an environment without a working torchcodec
        pytest.skip(f"torchcodec reader unavailable: {exc}")
    clip = sample_clip(path)
    assert list(clip.frame_indices) == list(meta["frames_indices"])
    assert np.allclose(clip.timestamps, np.asarray(meta["frames_indices"]) / 30.0, atol=1e-3)
    from torchvision.transforms import InterpolationMode, functional

    theirs = functional.resize(
        video, list(clip.size), interpolation=InterpolationMode.BICUBIC, antialias=True
    )
    theirs = theirs.float().round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    diff = np.abs(theirs.astype(int) - clip.frames.astype(int))
    assert diff.mean() < 0.25 and diff.max() <= 16, (diff.mean(), diff.max())
    assert math.isclose(clip.video.fps, float(meta["fps"]), rel_tol=1e-9)
