"""What every video-aware judging pass shares: the frames a judge sees, reply checks, the run directory.

Every video-aware pass (ground-truth audit, pairwise comparison, event verification) shows the judge the
same kind of input, made here once: ``num_frames`` frames spread evenly over the whole video, scaled to at
most ``max_pixels`` pixels, JPEG quality 85, each labelled with its presentation time. The passes also
share the small checks applied to the judge's JSON (:func:`reply_text`, :func:`reply_label`) and the
run-directory rules (:func:`open_judge_run`: ``header.json`` with the settings, resumed only with the
same settings).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vidspan.errors import VidspanError
from vidspan.eval.caption_samples import CaptionBenchmark, CaptionSample
from vidspan.eval.rundir import RunError, git_sha, now, versions, write_json
from vidspan.judge.base import Frame, Judge
from vidspan.video import SamplingConfig, sample_clip

logger = logging.getLogger(__name__)

JPEG_QUALITY = 85
DEFAULT_NUM_FRAMES = 16
DEFAULT_MAX_PIXELS = 448 * 448
FORMAT_VERSION = 1
HEADER = "header.json"

Progress = Callable[[int, int, str], None]
"""``progress(done, total, message)``."""


def video_frames(
    path: str | os.PathLike[str],
    *,
    num_frames: int = DEFAULT_NUM_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[Frame, ...]:
    """Sample ``num_frames`` evenly spaced frames of a video for a judge.

    The count is rounded to even and capped at the frames the file holds; a frame chosen twice (a very
    short video) is sent once. Sizes keep the aspect ratio with sides a multiple of 32.

    Args:
        path: A local video file.
        num_frames: Frames to sample (>= 2).
        max_pixels: Per-frame pixel ceiling (>= 1024).

    Returns:
        Frames in time order, each with its presentation time in source seconds.

    Raises:
        ValueError: On a bad ``num_frames`` or ``max_pixels``.
        VideoError: When the file cannot be used.
    """
    check_frame_settings(num_frames, max_pixels)
    config = SamplingConfig(num_frames=num_frames, min_frames=2, max_frames=max(num_frames, 2),
                            max_pixels=max_pixels, min_pixels=min(max_pixels, 128 * 32 * 32))  # fmt: skip
    clip = sample_clip(path, config)
    frames: list[Frame] = []
    seen: set[int] = set()
    indices = clip.frame_indices or tuple(range(clip.num_frames))
    for position, (index, seconds) in enumerate(zip(indices, clip.timestamps, strict=True)):
        if index in seen:
            continue
        seen.add(index)
        frames.append(Frame(seconds=round(float(seconds), 3), jpeg=encode_jpeg(clip.frames[position])))
    logger.debug("%s: %d judge frames of %s", path, len(frames), clip.size)
    return tuple(frames)


def check_frame_settings(num_frames: int, max_pixels: int) -> None:
    """Raise ``ValueError`` on frame settings :func:`video_frames` cannot use (check before a long run)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 2:
        raise ValueError(f"Invalid num_frames: {num_frames!r}. It must be an integer >= 2.")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 32 * 32:
        raise ValueError(f"Invalid max_pixels: {max_pixels!r}. It must be an integer >= 1024 (32 x 32).")


def encode_jpeg(rgb: np.ndarray) -> bytes:
    """JPEG bytes (quality 85) of one ``(H, W, 3)`` uint8 RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def reply_text(item: dict[str, Any], key: str, *, required: bool = False) -> str:
    """``item[key]`` as a stripped string (missing or null: empty); ``ValueError`` when it is no string."""
    value = item.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f'"{key}" must be a {"non-empty " if required else ""}string')
    return value.strip()


def reply_label(value: Any, allowed: tuple[str, ...], what: str) -> str:
    """A label from ``allowed`` (case, spaces and hyphens forgiven: "Not visible" is ``not_visible``)."""
    label = value.strip().lower().replace(" ", "_").replace("-", "_") if isinstance(value, str) else value
    if label not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return str(label)


def sample_frames(
    benchmark: CaptionBenchmark, sample: CaptionSample, num_frames: int, max_pixels: int
) -> tuple[Frame, ...] | str:
    """The judge frames of a sample's video, or why there are none (a missing or unreadable video)."""
    path = benchmark.video_paths.get(sample.video)
    if path is None:
        return f"video {sample.video} is missing from {benchmark.video_dir}"
    try:
        return video_frames(path, num_frames=num_frames, max_pixels=max_pixels)
    except (VidspanError, OSError, ValueError) as exc:
        logger.warning("cannot read video %s: %s", path, exc)
        return f"cannot read video {path}: {exc}"


def open_judge_run(
    directory: Path, identity: dict[str, Any], benchmark: CaptionBenchmark, judge: Judge, **fields: Any
) -> dict[str, Any]:
    """Create a judge-run directory with its ``header.json``, or reopen one made with the same ``identity``.

    Args:
        directory: The run directory (new, empty, or holding a run to resume).
        identity: Every setting that changes the results (``identity["kind"]`` names the pass); a run is
            resumed only when all of them match.
        benchmark: The benchmark judged (its name, videos, sample count and missing videos go in the header).
        judge: The judge (its name goes in the header; its settings belong in ``identity``).
        **fields: More header fields.

    Returns:
        The header.

    Raises:
        RunError: The directory holds another run, a run with other settings, or other files.
    """
    identity = json.loads(json.dumps(identity, default=str))
    header_path = directory / HEADER
    if header_path.exists():
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"Cannot read {header_path}: {exc}") from exc
        changed = [k for k, v in identity.items() if header.get("identity", {}).get(k) != v]
        if changed:
            raise RunError(f"{directory} holds a run made with other settings ({', '.join(changed)}); "
                           "use another output directory to start a new run.")  # fmt: skip
        logger.info("resuming the run in %s", directory)
        return header
    if directory.exists() and any(directory.iterdir()):
        raise RunError(
            f"{directory} is not empty and holds no vidspan run; choose an empty or new directory."
        )
    directory.mkdir(parents=True, exist_ok=True)
    header = {
        "format_version": FORMAT_VERSION, "kind": identity["kind"], "benchmark": benchmark.name,
        "videos": benchmark.video_dir, "judge": judge.name, "num_samples": len(benchmark.samples),
        "missing_videos": list(benchmark.missing_videos), **fields, "identity": identity,
        "versions": versions(), "git_sha": git_sha(), "started_at": now(), "finished_at": None,
    }  # fmt: skip
    write_json(header_path, header)
    return header


def judge_samples(
    samples: Sequence[CaptionSample],
    work: Callable[[CaptionSample], dict[str, Any]],
    path: Path,
    *,
    total: int,
    max_workers: int = 1,
    progress: Progress | None = None,
) -> None:
    """Run ``work`` on each sample, ``max_workers`` at a time, appending each record to ``path`` as it ends.

    Records are JSON lines written from this thread only, in the order samples finish; an interrupted run
    keeps every finished line. ``total`` counts the samples of the whole run (for ``progress``).
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"Invalid max_workers: {max_workers!r}. It must be an integer >= 1.")
    done = total - len(samples)
    pool = ThreadPoolExecutor(max_workers, thread_name_prefix="vidspan-judge")
    try:
        with path.open("a", encoding="utf-8") as out:
            for future in as_completed([pool.submit(work, sample) for sample in samples]):
                record = future.result()
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                done += 1
                if progress:
                    progress(done, total, str(record.get("id")))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def usage_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """A judge's usage between two ``judge.usage.to_dict()`` snapshots (what one run cost)."""
    return {key: value - before.get(key, 0) for key, value in after.items()}


def finish_judge_run(directory: Path, header: dict[str, Any], summary: dict[str, Any], report: str) -> None:
    """Write ``summary.json`` and ``report.md`` and stamp the header's ``finished_at``."""
    write_json(directory / "summary.json", summary)
    (directory / "report.md").write_text(report, encoding="utf-8")
    header["finished_at"] = now()
    write_json(directory / HEADER, header)
