"""Frame counts on constant-rate files equal qwen-vl-utils 0.0.14's in every container (issue 13, item 3).

qwen-vl-utils' torchcodec reader plans ``n = num_frames / average_fps * fps`` from torchcodec's metadata.
Containers round pts differently (Matroska and WebM to 1 ms, MP4 to the stream's own ticks), so a
duration rebuilt from rounded pts can fall just below an even boundary where that formula does not; the
plan must use the same two quantities. The clips are tiny (64x48) and generated once per module.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from support.clips import run_ffmpeg
from vidspan.types import Span
from vidspan.video import SamplingConfig, open_video, select_frames
from vidspan.windows import plan_video, sampling_for

RATES = ("24000/1001", "25", "30", "50", "60000/1001", "60")
DURATIONS = (3, 7, 10)  # whole seconds: n = 2 x duration lands exactly on an even boundary
CONTAINERS = ("mkv", "webm", "mp4")
CLIPS = list(itertools.product(CONTAINERS, RATES, DURATIONS))

_CODECS = {
    "mkv": ("-c:v", "libx264", "-preset", "ultrafast"),
    "mp4": ("-c:v", "libx264", "-preset", "ultrafast"),
    "webm": ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "50k"),
}


@pytest.fixture(scope="module")
def rate_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, int], Path]:
    """Every (container, rate, seconds) clip: ``ffmpeg -f lavfi -i testsrc2=size=64x48:duration=D:rate=R
    <codec> -pix_fmt yuv420p clip.EXT`` (x264 ultrafast; VP9 realtime for WebM)."""
    folder = tmp_path_factory.mktemp("rates")

    def make(key: tuple[str, str, int]) -> Path:
        container, rate, seconds = key
        out = folder / f"r{rate.replace('/', '_')}_{seconds}s.{container}"
        source = f"testsrc2=size=64x48:duration={seconds}:rate={rate}"
        run_ffmpeg("-f", "lavfi", "-i", source, *_CODECS[container], "-pix_fmt", "yuv420p", str(out))
        return out

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CLIPS, pool.map(make, CLIPS), strict=True))


def _qwen_count(vision_process, path: Path, config: SamplingConfig) -> tuple[int, int, float]:
    """qwen-vl-utils' frame count for the whole file, from what its torchcodec reader reads."""
    from torchcodec.decoders import VideoDecoder

    metadata = VideoDecoder(str(path)).metadata  # the reader's call (exact seek mode)
    ele = {"fps": config.fps, "min_frames": config.min_frames, "max_frames": config.max_frames}
    n = vision_process.smart_nframes(ele, total_frames=metadata.num_frames, video_fps=metadata.average_fps)
    return n, metadata.num_frames, metadata.average_fps


@pytest.mark.parametrize("container", CONTAINERS)
def test_frame_count_equals_qwen_vl_utils_in_every_container(qwen_vl_utils, rate_clips, container):
    pytest.importorskip("torchcodec")
    settings = sampling_for(32)
    config = settings.sampling
    wrong = []
    for (kind, rate, seconds), path in rate_clips.items():
        if kind != container:
            continue
        expected, total, average_fps = _qwen_count(qwen_vl_utils, path, config)
        info, plans = plan_video(path, settings)
        assert len(plans) == 1 and not info.is_vfr
        assert info.num_frames == total
        assert info.fps == average_fps  # torchcodec's content duration, to the bit
        with open_video(path) as reader:
            picked = reader.select(
                Span(info.start_seconds, info.start_seconds + info.duration_seconds), config
            )
        index_based = np.round(np.linspace(0, total - 1, expected)).astype(int)
        if plans[0].num_frames != expected or picked.tolist() != index_based.tolist():
            wrong.append(f"{rate} fps {seconds} s: {plans[0].num_frames} frames {picked.tolist()}, "
                         f"qwen-vl-utils {expected} frames {index_based.tolist()}")  # fmt: skip
    assert not wrong, f"{container}: " + "; ".join(wrong)


def test_rounded_pts_do_not_move_the_count_below_an_even_boundary():
    # 60 fps on 1 ms ticks: 180 frames whose last pts is 2.983 s and whose container says 3.000 s. The pts
    # alone read 2.9997 s (4 frames); the frame count over the average rate reads 3 s (6, qwen-vl-utils)
    times = np.round(np.arange(180) * 1000 / 60) / 1000
    config = SamplingConfig()
    assert len(select_frames(times, Span(0, 3.0), config, average_fps=60.0)) == 6
    assert len(select_frames(times, Span(0, 3.0), config)) == 4  # a variable-rate file keeps its pts


def test_clips_hold_the_frames_their_rate_implies(rate_clips):
    # guards the fixture itself: every clip has round(rate x seconds) frames
    with open_video(rate_clips["mkv", "60", 3]) as reader:
        assert reader.info.num_frames == 180
    with open_video(rate_clips["mp4", "24000/1001", 10]) as reader:
        assert reader.info.num_frames == round(Fraction(24000, 1001) * 10)
