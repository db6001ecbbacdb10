"""Frame-count, pixel-budget, frame-selection and windowing rules (pure functions, no decoding)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidspan.types import Span
from vidspan.video import SamplingConfig, plan_windows, select_frames, smart_nframes, smart_resize
from vidspan.video.plan import frame_pixel_budget

MARLIN = SamplingConfig()  # fps 2, 4..240 frames, 200,704 px, factor 32


@pytest.fixture(scope="module")
def qwen(qwen_vl_utils):
    """qwen-vl-utils 0.0.14's vision_process module (see the root conftest's ``qwen_vl_utils``)."""
    return qwen_vl_utils


# --- SamplingConfig ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0}, r"Invalid fps: 0\. It must be > 0\."),
        ({"fps": -1.5}, r"Invalid fps: -1\.5\. It must be > 0\."),
        ({"fps": math.nan}, r"Invalid fps: nan\. It must be > 0\."),
        ({"min_frames": 0}, r"Invalid min_frames: 0\. It must be an integer >= 1\."),
        ({"max_frames": 1}, r"Invalid max_frames: 1\. It must be an integer >= 2\."),
        ({"min_frames": 10, "max_frames": 8}, r"Invalid max_frames: 8\. It must be >= min_frames \(10\)\."),
        ({"max_pixels": 0}, r"Invalid max_pixels: 0\. It must be an integer >= 1\."),
        (
            {"max_pixels": 1000, "min_pixels": 2000},
            r"Invalid max_pixels: 1000\. It must be >= min_pixels \(2000\)",
        ),
        ({"min_pixels": -4}, r"Invalid min_pixels: -4\. It must be an integer >= 1\."),
        ({"total_pixels": 0}, r"Invalid total_pixels: 0\. It must be an integer >= 1\."),
        ({"patch_factor": 0}, r"Invalid patch_factor: 0\. It must be an integer >= 1\."),
        ({"num_frames": 1}, r"Invalid num_frames: 1\. It must be an integer >= 2\."),
        ({"max_frames": 2.5}, r"Invalid max_frames: 2\.5\. It must be an integer >= 2\."),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplingConfig(**kwargs)


def test_config_defaults_are_marlins():
    assert (MARLIN.fps, MARLIN.min_frames, MARLIN.max_frames, MARLIN.max_pixels) == (2.0, 4, 240, 200704)
    assert MARLIN.frame_min_pixels == 128 * 32 * 32
    assert MARLIN.window_seconds == 120.0
    assert SamplingConfig(patch_factor=28).frame_min_pixels == 128 * 28 * 28
    assert SamplingConfig(fps=1.0, max_frames=64).window_seconds == 64.0
    assert SamplingConfig(max_pixels=50_000).frame_min_pixels == 50_000  # lowering only the ceiling works


# --- smart_nframes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "fps", "expected"),
    [  # video-sampling.md §1.3: the shared clips with Marlin's defaults
        (47, 30.0, 4),  # asl-eat: 3.13 -> clamped to 4
        (89, 30.0, 4),  # asl-walk: 5.93 -> floor to even gives 4, not 6
        (377, 12.5, 60),  # car: 60.3 -> 60
        (1189, 179 / 6, 78),  # bottle: 79.7 -> 78
        (1394, 10.0, 240),  # one-by-one: 278.8 -> capped at 240
    ],
)
def test_smart_nframes_worked_examples(frames, fps, expected):
    assert smart_nframes(frames, frames / fps, MARLIN) == expected


def test_smart_nframes_edges():
    assert smart_nframes(0, 0.0, MARLIN) == 2  # nothing to sample: the caller repeats a frame
    assert smart_nframes(1, 0.04, MARLIN) == 2
    assert smart_nframes(3, 0.1, MARLIN) == 2  # capped at the source count, floored to even
    assert smart_nframes(5, 0.2, MARLIN) == 4
    assert smart_nframes(1000, 100.0, SamplingConfig(num_frames=7)) == 8  # nearest even (7/2 -> 4 * 2)
    assert smart_nframes(5, 0.2, SamplingConfig(num_frames=16)) == 4  # fixed count capped at the source
    assert smart_nframes(10_000, 10_000.0, SamplingConfig(min_frames=5, max_frames=9)) == 8
    assert smart_nframes(10_000, 1.0, SamplingConfig(min_frames=5, max_frames=9)) == 6
    with pytest.raises(ValueError, match=r"Invalid duration_seconds: -1\.0\. It must be"):
        smart_nframes(10, -1.0, MARLIN)
    with pytest.raises(ValueError, match=r"Invalid num_source_frames: -1\. It must be >= 0\."):
        smart_nframes(-1, 1.0, MARLIN)


@settings(max_examples=300, deadline=None)
@given(
    frames=st.integers(2, 100_000),
    fps_source=st.floats(1.0, 240.0),
    fps=st.floats(0.1, 10.0),
    min_frames=st.integers(1, 64),
    extra=st.integers(0, 800),
)
def test_smart_nframes_matches_qwen_vl_utils(qwen, frames, fps_source, fps, min_frames, extra):
    config = SamplingConfig(fps=fps, min_frames=min_frames, max_frames=max(2, min_frames + extra))
    ele = {"fps": fps, "min_frames": config.min_frames, "max_frames": config.max_frames}
    try:
        expected = qwen.smart_nframes(ele, total_frames=frames, video_fps=fps_source)
    except ValueError:  # qwen-vl-utils raises where the clamps cross; we return at least 2
        return
    # same float arithmetic, float noise included (3.9999999999999996 floors to 2 in both)
    assert smart_nframes(frames, frames / fps_source, config) == expected


# --- smart_resize and the pixel budget --------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "expected_wh"),
    [  # video-sampling.md §1.4 with Marlin's ceiling and factor 32
        (640, 480, (512, 384)),
        (640, 360, (576, 320)),
        (768, 432, (576, 320)),
        (1280, 720, (576, 320)),
        (1920, 1080, (576, 320)),
        (128, 96, (448, 320)),  # upscaled to the 128-token floor
    ],
)
def test_smart_resize_worked_table(width, height, expected_wh):
    min_pixels, max_pixels = frame_pixel_budget(240, MARLIN)
    h, w = smart_resize(height, width, factor=32, min_pixels=min_pixels, max_pixels=max_pixels)
    assert (w, h) == expected_wh


def test_smart_resize_errors():
    with pytest.raises(ValueError, match=r"Invalid aspect ratio: 201\.0 \(201x1\)\. It must be <= 200\."):
        smart_resize(1, 201, factor=32, min_pixels=1, max_pixels=10**9)
    with pytest.raises(ValueError, match=r"Invalid max_pixels: 10\. It must be >= min_pixels \(20\)\."):
        smart_resize(100, 100, factor=32, min_pixels=20, max_pixels=10)
    with pytest.raises(ValueError, match=r"Invalid frame size: 0x10\. Both sides must be > 0\."):
        smart_resize(10, 0, factor=32, min_pixels=1, max_pixels=10)


@settings(max_examples=400, deadline=None)
@given(
    height=st.integers(8, 4000),
    width=st.integers(8, 4000),
    factor=st.sampled_from([28, 32]),
    min_tokens=st.integers(4, 256),
    extra_tokens=st.integers(0, 2000),
)
def test_smart_resize_matches_qwen_vl_utils(qwen, height, width, factor, min_tokens, extra_tokens):
    if max(height, width) / min(height, width) > 200:
        return
    min_pixels = min_tokens * factor * factor
    max_pixels = (min_tokens + extra_tokens) * factor * factor
    expected = qwen.smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    assert (
        smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels) == expected
    )


@settings(max_examples=200, deadline=None)
@given(
    num_frames=st.integers(2, 768).map(lambda n: n - n % 2),
    total_tokens=st.one_of(st.none(), st.integers(100, 200_000)),
    max_tokens=st.integers(128, 1000),
    factor=st.sampled_from([28, 32]),
)
def test_frame_pixel_budget_matches_fetch_video(qwen, num_frames, total_tokens, max_tokens, factor):
    """Reproduces the budget lines of qwen-vl-utils 0.0.14 ``fetch_video`` with its own constants."""
    total_pixels = None if total_tokens is None else total_tokens * factor * factor
    config = SamplingConfig(
        max_pixels=max_tokens * factor * factor, total_pixels=total_pixels, patch_factor=factor
    )
    min_pixels = qwen.VIDEO_MIN_TOKEN_NUM * factor * factor
    total = total_pixels if total_pixels is not None else math.inf
    ceiling = max(
        min(qwen.VIDEO_MAX_TOKEN_NUM * factor * factor, total / num_frames * qwen.FRAME_FACTOR),
        int(min_pixels * 1.05),
    )
    assert frame_pixel_budget(num_frames, config) == (min_pixels, min(config.max_pixels, ceiling))


def test_frame_pixel_budget_total_pixels_lowers_the_ceiling():
    config = SamplingConfig(total_pixels=24 * 200704)  # 24 frames' worth at 200,704 px
    assert frame_pixel_budget(24, config) == (131072, 200704)
    min_pixels, max_pixels = frame_pixel_budget(240, config)
    assert max_pixels == int(131072 * 1.05)  # the floor wins over total / n * 2
    with pytest.raises(ValueError, match=r"Invalid num_frames: 0\. It must be > 0\."):
        frame_pixel_budget(0, config)


# --- select_frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [2, 3, 10, 47, 89, 377, 1189, 1394, 18000])
@pytest.mark.parametrize("fps", [10.0, 12.5, 179 / 6, 30.0])
def test_select_frames_equals_linspace_on_constant_rate(total, fps):
    times = np.arange(total) / fps
    duration = total / fps
    picked = select_frames(times, Span(0, duration), MARLIN)
    n = smart_nframes(total, duration, MARLIN)
    expected = np.round(np.linspace(0, total - 1, n)).astype(int)
    assert picked.tolist() == expected.tolist()


def test_nearest_frame_ties_go_to_even_index():
    # with an even frame count, linspace over a constant-rate grid never lands half-way between two frames;
    # on irregular times it can, and the tie goes to the even index like torch.round
    from vidspan.video.plan import _nearest

    times = np.array([0.0, 1.0, 2.0, 3.0])
    assert _nearest(times, np.array([0.5, 1.5, 2.5, 0.49, 0.51])).tolist() == [0, 2, 2, 0, 1]


def test_select_frames_by_time_on_variable_rate():
    times = np.concatenate([np.arange(50) / 10, 5 + np.arange(150) / 30])  # 10 fps then 30 fps
    picked = select_frames(times, Span(0, 10), SamplingConfig(num_frames=8))
    assert np.allclose(times[picked], [0.0, 1.4, 2.8, 4.3, 5.7, 7.1333, 8.5333, 9.9667], atol=1e-3)
    index_based = np.round(np.linspace(0, 199, 8)).astype(int)
    assert np.abs(times[index_based] - index_based / 20.0).max() > 1.0  # the average-fps shortcut is wrong


def test_select_frames_windows_and_single_frames():
    times = np.arange(300) / 30  # 10 s at 30 fps
    picked = select_frames(times, Span(2.0, 4.0), MARLIN)
    assert picked.tolist() == [60, 80, 99, 119]  # 60 frames over 2 s -> 4 frames
    assert select_frames(times, Span(5.0, 5.0), MARLIN).tolist() == [150, 150]  # a point in time
    assert select_frames(times, Span(5.01, 5.02), MARLIN).tolist() == [150, 150]  # between frames
    assert select_frames(np.array([0.0]), Span(0, 1), MARLIN).tolist() == [0, 0]
    assert select_frames(times, Span(20.0, 30.0), MARLIN).tolist() == [299, 299]
    with pytest.raises(
        ValueError, match=r"Invalid frame_times: shape \(0,\)\. It must be a non-empty 1-D array\."
    ):
        select_frames(np.array([]), Span(0, 1), MARLIN)


# --- plan_windows -----------------------------------------------------------------------------------


def test_plan_windows_short_video_is_one_window():
    assert plan_windows(30.0, window_seconds=120, overlap_seconds=10) == [Span(0.0, 30.0)]
    assert plan_windows(120.0, window_seconds=120, overlap_seconds=10) == [Span(0.0, 120.0)]
    assert plan_windows(5.0, window_seconds=120, overlap_seconds=10, start_seconds=1.5) == [Span(1.5, 6.5)]


def test_plan_windows_long_video_overlaps_and_ends_at_the_end():
    windows = plan_windows(600.0, window_seconds=120, overlap_seconds=0)
    assert [w.to_tuple() for w in windows] == [(0, 120), (120, 240), (240, 360), (360, 480), (480, 600)]
    windows = plan_windows(300.0, window_seconds=120, overlap_seconds=10)
    assert len(windows) == 3 and windows[0].start == 0.0 and windows[-1].end == 300.0
    assert all(a.end - b.start >= 10 - 1e-6 for a, b in zip(windows, windows[1:], strict=False))


@settings(max_examples=200, deadline=None)
@given(
    duration=st.floats(0.0, 20_000.0),
    window=st.floats(1.0, 600.0),
    overlap_fraction=st.floats(0.0, 0.9),
    start=st.floats(0.0, 100.0),
)
def test_plan_windows_properties(duration, window, overlap_fraction, start):
    overlap = window * overlap_fraction
    windows = plan_windows(duration, window_seconds=window, overlap_seconds=overlap, start_seconds=start)
    # bounds are rounded to microseconds
    assert math.isclose(windows[0].start, start, abs_tol=1e-6)
    assert math.isclose(windows[-1].end, start + duration, abs_tol=2e-6)
    for w in windows:
        assert w.duration <= window + 2e-6
    for a, b in zip(windows, windows[1:], strict=False):
        assert b.start > a.start
        assert a.end - b.start >= overlap - 2e-6  # consecutive windows share at least the overlap
    if duration > window:  # as few windows as the overlap allows
        assert len(windows) == math.ceil((duration - overlap) / (window - overlap) - 1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_seconds": 0, "overlap_seconds": 0}, r"Invalid window_seconds: 0\. It must be > 0\."),
        (
            {"window_seconds": 10, "overlap_seconds": 10},
            r"Invalid overlap_seconds: 10\. It must be >= 0 and < window_seconds \(10\)\.",
        ),
        ({"window_seconds": 10, "overlap_seconds": -1}, r"Invalid overlap_seconds: -1\. It must be"),
    ],
)
def test_plan_windows_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_windows(100.0, **kwargs)
    with pytest.raises(ValueError, match=r"Invalid duration_seconds: -1\.0\. It must be"):
        plan_windows(-1.0, window_seconds=10, overlap_seconds=0)
