"""Frame sampling speed and fidelity: vidspan's VideoReader.sample vs qwen-vl-utils 0.0.14 fetch_video.

Both sample the same plan (Marlin's settings: 2 fps, 4-240 frames, <= 200,704 px per frame, factor 32);
qwen-vl-utils decodes with torchcodec (``FORCE_QWENVL_VIDEO_READER=torchcodec``) and resizes with
torchvision bicubic + antialias on the whole clip; vidspan decodes with PyAV (sparse runs between
keyframes, ``skip_frame=NONREF`` on unwanted frames, two decoders on separate stretches of the file) and
resizes each frame with Pillow bicubic as soon as it is decoded.

Run ``python benchmarks/sampling.py`` (``--help`` for options). It needs the ``bench`` extra
(``qwen-vl-utils==0.0.14``), torch, torchvision and torchcodec, and the ffmpeg CLI to generate the
10-minute 1280x720 clip on first use.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ["FORCE_QWENVL_VIDEO_READER"] = "torchcodec"  # read once, when qwen_vl_utils is imported

from vidspan.models.torchvision_compat import ensure_torchvision  # noqa: E402

ensure_torchvision()

import torch  # noqa: E402
from qwen_vl_utils import vision_process as qwen  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402
from torchvision.transforms import functional as tvf  # noqa: E402

from vidspan.types import Span  # noqa: E402
from vidspan.video import SamplingConfig, VideoReader, smart_resize  # noqa: E402
from vidspan.video.plan import frame_pixel_budget, select_frames  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
SHARED_NAMES = [
    "asl-eat.mkv",
    "asl-walk.mkv",
    "car-detection.mp4",
    "bottle-detection.mp4",
    "one-by-one-person-detection.mp4",
]
LONG_NAME = "long720.mp4"
LONG_COMMAND = [
    "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
    "-i", "testsrc2=size=1280x720:duration=600:rate=30",
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
]  # fmt: skip
PATCH_SIZE = 16  # Qwen3-VL / Qwen3.5 / Marlin: factor 32
CONFIG = SamplingConfig(fps=2.0, min_frames=4, max_frames=240, max_pixels=200704, min_pixels=128 * 32 * 32)


def qwen_element(path: Path) -> dict[str, object]:
    """The video element qwen-vl-utils gets: the same plan as ``CONFIG``."""
    return {
        "video": str(path),
        "fps": CONFIG.fps,
        "min_frames": CONFIG.min_frames,
        "max_frames": CONFIG.max_frames,
        "max_pixels": CONFIG.max_pixels,
        "min_pixels": CONFIG.min_pixels,
    }


def run_qwen(path: Path) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """qwen-vl-utils end to end: uint8 (T, H, W, 3) frames (float output rounded), timestamps, indices."""
    video, meta = qwen.fetch_video(
        qwen_element(path), image_patch_size=PATCH_SIZE, return_video_metadata=True
    )
    frames = video.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    times = np.asarray(meta["frames_indices"], dtype=np.float64) / float(meta["fps"])
    return frames, times, [int(i) for i in meta["frames_indices"]]


def run_vidspan(path: Path) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """vidspan end to end (probe, index, plan, decode, resize)."""
    with VideoReader(path) as reader:
        clip = reader.sample(CONFIG)
    return clip.frames, np.asarray(clip.timestamps), list(clip.frame_indices)


@dataclass
class Result:
    """Measurements for one file."""

    name: str
    qwen_seconds: list[float] = field(default_factory=list)
    vidspan_seconds: list[float] = field(default_factory=list)
    qwen_frames: int = 0
    vidspan_frames: int = 0
    size: tuple[int, int] = (0, 0)
    same_size: bool = False
    same_indices: bool = False
    max_dt: float = float("nan")
    max_diff: int = -1
    mean_diff: float = float("nan")
    breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return min(self.qwen_seconds) / min(self.vidspan_seconds)


def measure(path: Path, repeats: int, breakdown: bool) -> Result:
    """Alternate the two samplers ``repeats`` times (so both see the same machine load); best of each."""
    result = Result(path.name)
    ours = theirs = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        theirs = run_qwen(path)
        result.qwen_seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = run_vidspan(path)
        result.vidspan_seconds.append(time.perf_counter() - t0)
    assert ours is not None and theirs is not None
    (q_frames, q_times, q_indices), (v_frames, v_times, v_indices) = theirs, ours
    result.same_indices = q_indices == v_indices
    result.qwen_frames, result.vidspan_frames = len(q_frames), len(v_frames)
    result.size = (int(v_frames.shape[1]), int(v_frames.shape[2]))
    result.same_size = q_frames.shape == v_frames.shape
    if len(q_times) == len(v_times):
        result.max_dt = float(np.abs(q_times - v_times).max())
    if result.same_size:
        diff = np.abs(q_frames.astype(np.int16) - v_frames.astype(np.int16))
        result.max_diff, result.mean_diff = int(diff.max()), float(diff.mean())
    if breakdown:
        result.breakdown = where_time_goes(path)
    return result


def where_time_goes(path: Path) -> dict[str, float]:
    """Time the stages of each sampler once."""
    from torchcodec.decoders import VideoDecoder

    stages: dict[str, float] = {}
    ele = qwen_element(path)
    t0 = time.perf_counter()
    decoder = VideoDecoder(str(path), num_ffmpeg_threads=int(os.environ.get("TORCHCODEC_NUM_THREADS", 8)))
    stages["qwen: open + exact scan"] = time.perf_counter() - t0
    meta = decoder.metadata
    n = qwen.smart_nframes(ele, total_frames=meta.num_frames, video_fps=meta.average_fps)
    indices = torch.linspace(0, meta.num_frames - 1, n).round().long().tolist()
    t0 = time.perf_counter()
    video = decoder.get_frames_at(indices=indices).data
    stages["qwen: decode (get_frames_at)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    min_pixels, max_pixels = frame_pixel_budget(n, CONFIG)
    size = smart_resize(
        meta.height, meta.width, factor=2 * PATCH_SIZE, min_pixels=min_pixels, max_pixels=max_pixels
    )
    tvf.resize(video, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    stages["qwen: resize (torchvision, whole clip)"] = time.perf_counter() - t0
    del video

    t0 = time.perf_counter()
    reader = VideoReader(path)
    stages["vidspan: probe + packet index"] = time.perf_counter() - t0
    wanted = sorted(
        set(select_frames(reader.frame_times, Span(0, reader.info.duration_seconds), CONFIG).tolist())
    )
    t0 = time.perf_counter()
    reader._decode_into(wanted, lambda i, frame: None)
    stages["vidspan: decode only (sparse, NONREF skip)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    reader._decode_runs(wanted, lambda i, frame: None, skip_unwanted=False)
    stages["vidspan: decode only, without the NONREF skip"] = time.perf_counter() - t0
    workers, reader._workers = reader._workers, 1
    t0 = time.perf_counter()
    reader._decode_into(wanted, lambda i, frame: None)
    stages["vidspan: decode only, one decoder (frame threads)"] = time.perf_counter() - t0
    reader._workers = workers
    t0 = time.perf_counter()
    reader.sample(CONFIG)
    sample = time.perf_counter() - t0
    stages["vidspan: RGB + resize (sample - decode only)"] = (
        sample - stages["vidspan: decode only (sparse, NONREF skip)"]
    )
    runs = reader._plan_runs(reader._position(reader._index.frame_pts[wanted]))
    fed = sum(r.end - r.start + 1 for r in runs)
    stages["vidspan: packets fed / total"] = fed / len(reader._index.packet_pts)
    reader.close()
    return stages


def long_clip(cache_dir: Path, explicit: Path | None) -> Path:
    """The 10-minute 1280x720 30 fps H.264 clip: given, cached, at /tmp/clips, or generated into the cache."""
    if explicit is not None:
        return explicit
    cached = cache_dir / LONG_NAME
    for candidate in (cached, Path("/tmp/clips") / LONG_NAME):
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg CLI is needed to generate the 10-minute clip (or pass --long-clip)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / (LONG_NAME + ".part.mp4")
    print(f"generating {cached} (a few minutes) ...", file=sys.stderr, flush=True)
    subprocess.run([*LONG_COMMAND, str(partial)], check=True)
    partial.rename(cached)
    return cached


def machine() -> str:
    """One line describing the machine and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import av
    import torchcodec

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; PyAV {av.__version__} "
        f"(FFmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), torchcodec "
        f"{torchcodec.__version__}, torch {torch.__version__}, qwen-vl-utils 0.0.14"
    )


def table(results: list[Result]) -> str:
    """The markdown table."""
    lines = [
        "| clip | frames (qwen / vidspan) | same indices | size (HxW) | qwen-vl-utils s | vidspan s "
        "| speed-up "
        "| max Δt s | max Δpx | mean Δpx |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.qwen_frames} / {r.vidspan_frames} | {'yes' if r.same_indices else 'no'} "
            f"| {r.size[0]}x{r.size[1]}"
            f"{'' if r.same_size else ' (sizes differ)'} | {min(r.qwen_seconds):.2f} "
            f"| {min(r.vidspan_seconds):.2f} "
            f"| {r.ratio:.2f}x | {r.max_dt:.2g} | {r.max_diff} | {r.mean_diff:.3f} |"
        )
    return "\n".join(lines)


def caption_stages(video: Path, model: str | None, cache_dir: Path, max_new_tokens: int) -> dict[str, float]:
    """Seconds per stage of one ``vidspan.caption()`` call (load, probe, decode, preprocess, generate, parse).

    Without ``model`` a tiny random Marlin-shaped checkpoint is built locally: decode and preprocess are
    then real costs, generate is the cost of a 0.2 M-parameter model (run with a real checkpoint for real
    generation numbers: ``--caption-model /path/to/Marlin-2B``).
    """
    import vidspan

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support: tiny checkpoints
    from support.tiny_models import build_tiny_model

    if model is None:
        model = str(build_tiny_model("marlin", cache_dir / "tiny-marlin"))
    result = vidspan.caption(video, model, max_new_tokens=max_new_tokens)
    stages = ("load", "probe", "decode", "preprocess", "generate", "detokenize", "parse", "total")
    return {stage: result.timings[stage] for stage in stages if stage in result.timings}


def make_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per sampler and clip; the best counts")
    parser.add_argument("--long-repeats", type=int, default=1, help="runs for the 10-minute clip")
    parser.add_argument("--videos", type=Path, default=SHARED_VIDEOS, help="folder with the shared clips")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "vidspan" / "bench")
    parser.add_argument("--long-clip", type=Path, default=None, help="use this file as the long clip")
    parser.add_argument("--skip-long", action="store_true", help="only the shared clips")
    parser.add_argument("--breakdown", action="store_true", help="also time the stages of each sampler")
    parser.add_argument("--caption-video", type=Path, default=SHARED_VIDEOS / "bottle-detection.mp4",
                        help="clip for the per-stage breakdown of one caption() call")
    parser.add_argument("--caption-model", default=None,
                        help="model for that call (default: a tiny random Marlin-shaped checkpoint)")
    parser.add_argument("--caption-max-new-tokens", type=int, default=64)
    parser.add_argument("--skip-caption", action="store_true", help="no caption() breakdown")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    args = make_parser().parse_args(argv)
    jobs = [(args.videos / name, args.repeats) for name in SHARED_NAMES if (args.videos / name).is_file()]
    if not args.skip_long:
        jobs.append((long_clip(args.cache_dir, args.long_clip), args.long_repeats))
    print(machine(), flush=True)
    results = []
    for path, repeats in jobs:
        result = measure(path, repeats, args.breakdown)
        results.append(result)
        print(
            f"{result.name}: qwen {min(result.qwen_seconds):.2f} s, "
            f"vidspan {min(result.vidspan_seconds):.2f} s "
            f"({result.ratio:.2f}x); frames {result.qwen_frames}/{result.vidspan_frames}, "
            f"same indices: {result.same_indices}; "
            f"max dt {result.max_dt:.2g} s; pixels max {result.max_diff} mean {result.mean_diff:.3f}",
            flush=True,
        )
        for stage, value in result.breakdown.items():
            unit = "" if "/" in stage else " s"
            print(f"    {stage}: {value:.2f}{unit}", flush=True)
    print()
    print(table(results))
    if not args.skip_caption and args.caption_video.is_file():
        stages = caption_stages(args.caption_video, args.caption_model, args.cache_dir,
                                args.caption_max_new_tokens)
        print(f"\nOne caption() call on {args.caption_video.name} "
              f"({args.caption_model or 'tiny random Marlin-shaped model'}):\n")
        print("| stage | seconds |\n|---|---:|")
        for stage, seconds in stages.items():
            print(f"| {stage} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
