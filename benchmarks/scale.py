"""Videos per minute: ``vidspan eval generate-captions`` in one process against Ray with 1 and 2 model actors.

Same videos, same tiny random Qwen3-VL checkpoint (built here, offline), same settings, one run. Ray's time
includes starting the local cluster and the actors' model load, which is its overhead on a small job.

It also measures the CPU stage alone at Marlin-2B's default plan (2 fps, up to 240 frames of 200,704 px per
window): seconds of video one core decodes per second, the number the N-GPU plan in docs/scale.md divides by.

    python benchmarks/scale.py [--videos ../shared/data/videos] [--repeat 1] [--only jobs|decode]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/support: tiny checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", default=str(ROOT.parent / "shared" / "data" / "videos"))
    parser.add_argument("--repeat", type=int, default=1, help="How many times each clip is listed.")
    parser.add_argument("--only", choices=("jobs", "decode"), default=None, help="Run one of the two parts.")
    args = parser.parse_args()
    videos = sorted(p for p in Path(args.videos).iterdir() if p.suffix in (".mp4", ".mkv"))
    if args.only != "decode":
        jobs(args, videos)
    if args.only != "jobs":
        decode(videos)


def decode(videos: list[Path]) -> None:
    """The decode task's cost per video at Marlin-2B's defaults, on one core of this machine."""
    import os

    from vidspan.models import families
    from vidspan.testing.mock import MockVideoModel
    from vidspan.video import open_video
    from vidspan.windows import decode_windows, prepare

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _, settings = prepare(MockVideoModel(["x"], family=families.MARLIN), None, {})
    print("\nCPU stage (decode_windows) at Marlin-2B's default plan, one process:")
    print("| video | size | video s | frames | decode s | video s per decode s |")
    print("|---|---|---:|---:|---:|---:|")
    total_video = total_decode = 0.0
    for video in videos:
        with open_video(video) as reader:
            info = reader.info
        started = time.perf_counter()
        windows = decode_windows(video, settings)
        seconds = time.perf_counter() - started
        frames = sum(w.clip.num_frames for w in windows)
        total_video, total_decode = total_video + info.duration_seconds, total_decode + seconds
        print(f"| {video.name} | {info.width}x{info.height} | {info.duration_seconds:.1f} | {frames} | "
              f"{seconds:.2f} | {info.duration_seconds / seconds:.0f} |")
    print(f"| all | | {total_video:.1f} | | {total_decode:.2f} | {total_video / total_decode:.0f} |")


def jobs(args: argparse.Namespace, videos: list[Path]) -> None:
    """generate-captions in one process, and on Ray with 1 and 2 model actors."""

    from support.tiny_models import build_tiny_model
    from vidspan.eval.benchmark import Benchmark
    from vidspan.eval.captions.generate import generate_captions
    from vidspan.eval.captions.samples import CaptionSample
    from vidspan.scale import RayOptions

    samples = tuple(CaptionSample(id=f"{i}-{v.name}", video=v.name, reference="", subset="all")
                    for i in range(args.repeat) for v in videos)  # fmt: skip
    bench = Benchmark("scale", str(args.videos), samples, str(args.videos), {v.name: v for v in videos})
    settings = {"fps": 1.0, "max_frames": 8, "min_frames": 2, "max_pixels": 64 * 64, "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model("qwen3_vl", Path(tmp) / "tiny"))
        rows = []
        runs = [("one process", None), ("Ray, 1 worker", RayOptions(workers=1)),
                ("Ray, 2 workers", RayOptions(workers=2, num_cpus=0.5, decode_cpus=0.5))]  # fmt: skip
        for label, ray in runs:
            started = time.perf_counter()
            result = generate_captions(bench, model, Path(tmp) / label.replace(" ", "_"), ray=ray, **settings)
            seconds = time.perf_counter() - started
            assert result["generated"] == len(samples), result
            rows.append((label, seconds))
    base = rows[0][1]
    print(f"{len(samples)} videos, tiny random Qwen3-VL, {settings}")
    print("| run | wall s | videos/min | vs one process |\n|---|---:|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {len(samples) / seconds * 60:.0f} | {base / seconds:.2f}x |")


if __name__ == "__main__":
    main()
