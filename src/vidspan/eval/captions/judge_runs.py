"""Judge runs shared by the reference audit and the pairwise comparison: run directories, thread-pooled
judging, reply checks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.rundir import HEADER, RunDir
from vidspan.judge.base import Judge
from vidspan.windows import Progress

logger = logging.getLogger(__name__)

__all__ = [
    "HEADER", "finish_judge_run", "judge_samples", "open_judge_run", "reply_label", "reply_text",
    "usage_since",
]  # fmt: skip

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


def open_judge_run(
    directory: Path, identity: dict[str, Any], benchmark: CaptionBenchmark, judge: Judge, **fields: Any
) -> RunDir:
    """Open (create or resume) a judge run's :class:`~vidspan.eval.rundir.RunDir`, locked for this process.

    Args:
        directory: The run directory (new, empty, or holding a run to resume).
        identity: Every setting that changes the results (``identity["kind"]`` names the pass); a run is
            resumed only when all of them match.
        benchmark: The benchmark judged (its name, videos, sample count and missing videos go in the header).
        judge: The judge (its name goes in the header; its settings belong in ``identity``).
        **fields: More header fields.

    Raises:
        RunError: The directory holds another run, a run with other settings, other files, or another
            process is writing it.
    """
    return RunDir.open(
        directory, identity["kind"], identity, benchmark=benchmark.name, videos=benchmark.video_dir,
        judge=judge.name, num_samples=len(benchmark.samples), missing_videos=list(benchmark.missing_videos),
        **fields,
    )  # fmt: skip


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


def finish_judge_run(run: RunDir, summary: dict[str, Any], report: str) -> None:
    """Write ``summary.json`` and ``report.md`` and stamp the header finished."""
    run.write_json("summary.json", summary)
    run.write_text("report.md", report)
    run.finish()
