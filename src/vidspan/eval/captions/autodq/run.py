"""AutoDQ caption evaluation (DREAM-1K, CaReBench CapST) with an optional video-aware pass: a run directory.

:func:`evaluate_captions` scores candidate captions against a :class:`CaptionBenchmark` with LLM judges
(the protocol: :mod:`~vidspan.eval.captions.autodq.scoring`; the prompts:
:mod:`~vidspan.eval.captions.autodq.prompts`; the aggregation: :mod:`~vidspan.eval.captions.autodq.metrics`)
and writes a directory:

- ``header.json``: format version, benchmark, judge and video-judge settings (identity, never a key),
  protocol options, prompt hashes, vidspan version, creation time, and one entry per session (start,
  finish, samples judged, judge usage);
- ``samples.jsonl``: one line per judged sample (id, subset, candidate, GT and candidate facts, every
  verdict with its reason for each pass, text and video scores, ``status``/``error``,
  ``video_status``/``video_error``, consensus counts), appended as samples finish; a later line for the
  same id replaces an earlier one;
- ``metrics.json``: per subset and OVERALL for text-only and video-aware scores, success/failed counts,
  DREAM-1K bucket tables, unscored samples with reasons, consensus disagreement, judge usage and cost;
- ``report.md``: the same for people.

Running again in the same directory resumes: scored samples whose candidate is unchanged are kept;
unscored ones (and those whose candidate changed) are judged again. Judge replies are also cached by the
judge layer, so a re-run costs nothing for questions already answered.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.errors import VideoError
from vidspan.eval.captions.autodq.metrics import NO_CANDIDATE, summarize
from vidspan.eval.captions.autodq.prompts import prompt_hashes
from vidspan.eval.captions.autodq.report import render_report
from vidspan.eval.captions.autodq.scoring import AutoDQOptions, score_sample
from vidspan.eval.captions.judge_frames import video_frames
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.rundir import FORMAT_VERSION, RunDir, now
from vidspan.eval.rundir import read_records as rundir_records
from vidspan.judge.base import Judge, JudgeError
from vidspan.windows import Progress

logger = logging.getLogger(__name__)

__all__ = ["CaptionEvalRun", "evaluate_captions", "read_records"]

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
REPORT = "report.md"
MAX_CONSECUTIVE_JUDGE_ERRORS = 10
"""A run stops (resumably) after this many samples in a row fail on judge transport errors."""


@dataclass(frozen=True, slots=True)
class CaptionEvalRun:
    """A finished (or partly finished) caption-evaluation run: its directory, header and metrics."""

    directory: Path
    header: dict[str, Any]
    metrics: dict[str, Any]

    def overall(self, kind: str = "events", mode: str = "text") -> dict[str, Any]:
        """The OVERALL row (``f1``, ``recall``, ``precision``, ``success``, ``failed``) of one table."""
        table = self.metrics["scores"][kind].get(mode)
        if table is None:
            raise ValueError(f"Invalid mode: {mode!r}. This run has no {mode} scores.")
        return table["overall"]


def evaluate_captions(
    benchmark: CaptionBenchmark,
    candidates: Mapping[str, str],
    judge: Judge,
    *,
    out_dir: str | os.PathLike[str],
    video_judge: Judge | None = None,
    frames_per_video: int = 16,
    frame_max_pixels: int = 448 * 448,
    consensus: int = 1,
    objects: bool = False,
    exclude: set[str] | frozenset[str] | None = None,
    progress: Progress | None = None,
    empty_events_score: float | None = 1.0,
    precision_positive: str = "entailment",
    lowercase_captions: bool = True,
    attempts: int = 3,
    max_workers: int = 1,
) -> CaptionEvalRun:
    """Score ``candidates`` on ``benchmark`` with AutoDQ into ``out_dir`` (resuming a run already there).

    Args:
        benchmark: From :func:`vidspan.eval.captions.datasets.load_caption_benchmark`.
        candidates: ``{sample_id: caption}`` (:func:`vidspan.eval.captions.datasets.load_candidates`). Samples
            without one are recorded as unscored (``"no candidate caption"``) and counted as failed.
        judge: Text judge for extraction and entailment.
        out_dir: The run directory.
        video_judge: Judge that sees frames, for the video-aware pass (``None``: text-only). It may be
            the same object as ``judge``.
        frames_per_video: Frames shown to the video judge, spread evenly over the video.
        frame_max_pixels: Pixel ceiling per frame.
        consensus: Asks per entailment / verification question (majority vote, ties conservative).
        objects: Also score object facts (CaReBench CapST).
        exclude: Sample ids to leave out entirely (e.g. ground-truth errors found by an audit); they are
            not judged and not counted, and the number excluded is reported.
        progress: ``progress(done, total, message)`` callback.
        empty_events_score: Score of an empty fact list: 1.0 (AutoDQ) or ``None`` (strict).
        precision_positive: ``"entailment"`` (AutoDQ) or ``"entailment+neutral"``.
        lowercase_captions: Lower-case captions before judging, as AutoDQ does.
        attempts: Asks per question before its replies count as unusable.
        max_workers: Samples judged in parallel threads (the judges must be thread-safe for > 1).

    Returns:
        The run with its metrics.

    Raises:
        RunError: ``out_dir`` holds a run made with other settings.
        JudgeError: Judge transport failed for many samples in a row (the run can be resumed).
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"Invalid max_workers: {max_workers!r}. It must be an integer >= 1.")
    options = AutoDQOptions(
        empty_events_score=empty_events_score,
        precision_positive=precision_positive,
        consensus=consensus,
        objects=objects,
        lowercase_captions=lowercase_captions,
        attempts=attempts,
        frames_per_video=frames_per_video,
        frame_max_pixels=frame_max_pixels,
    )
    excluded = frozenset(exclude or ())
    directory = Path(out_dir)
    with _open_run(directory, benchmark, judge, video_judge, options, candidates) as run:
        existing = run.records(SAMPLES)
        wanted = [s for s in benchmark.samples if s.id not in excluded]
        todo = [s for s in wanted if not _finished(existing.get(s.id), candidates.get(s.id))]
        logger.info("%d of %d samples to judge (%d already done, %d excluded)",
                    len(todo), len(wanted), len(wanted) - len(todo), len(excluded))  # fmt: skip
        _judge_session(run, todo, existing, benchmark, candidates, judge, video_judge, options, max_workers,
                       progress)  # fmt: skip
        records = [existing[s.id] for s in wanted if s.id in existing]
        metrics = _metrics(run.header, benchmark, records, len(excluded))
        run.write_json(METRICS, metrics)
        run.write_text(REPORT, render_report(run.header, metrics, records))
        run.finish()
        return CaptionEvalRun(directory=directory, header=run.header, metrics=metrics)


def _judge_session(
    run: RunDir,
    todo: list[CaptionSample],
    existing: dict[str, dict[str, Any]],
    benchmark: CaptionBenchmark,
    candidates: Mapping[str, str],
    judge: Judge,
    video_judge: Judge | None,
    options: AutoDQOptions,
    max_workers: int,
    progress: Progress | None,
) -> None:
    """Judge ``todo``, appending each record as it ends; the session (count, usage) goes in the header."""
    judges = (
        {"judge": judge} if video_judge in (None, judge) else {"judge": judge, "video_judge": video_judge}
    )
    before = {name: j.usage.to_dict() for name, j in judges.items()}
    started = now()
    done = 0
    try:
        with run.appending(SAMPLES) as append:
            for record in _judge_all(todo, benchmark, candidates, judge, video_judge, options, max_workers):
                append(record)
                existing[record["id"]] = record
                done += 1
                if progress is not None:
                    progress(done, len(todo), record["id"])
    finally:
        usage = {name: _delta(before[name], j.usage.to_dict()) for name, j in judges.items()}
        run.header.setdefault("sessions", []).append(
            {"started": started, "finished": now(), "samples_judged": done, "usage": usage}
        )
        run.save_header()


def read_records(directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The records of a run's ``samples.jsonl`` by sample id (the last line of an id wins); ``{}`` if none.

    Raises:
        RunError: A line is not a JSON object with an ``id``.
    """
    return rundir_records(Path(directory) / SAMPLES)


# ----------------------------------------------------------------------------------------------- judging


def _judge_all(
    samples: Sequence[CaptionSample],
    benchmark: CaptionBenchmark,
    candidates: Mapping[str, str],
    judge: Judge,
    video_judge: Judge | None,
    options: AutoDQOptions,
    max_workers: int,
) -> Iterator[dict[str, Any]]:
    """Judge samples (in threads when ``max_workers > 1``), yielding records as they finish."""
    consecutive = 0

    def check(record: dict[str, Any]) -> None:
        """Called after ``record`` is written: stop when the judge keeps failing in transport."""
        nonlocal consecutive
        consecutive = consecutive + 1 if record.get("judge_error") else 0
        if consecutive >= MAX_CONSECUTIVE_JUDGE_ERRORS:
            raise JudgeError(
                f"Stopped after {consecutive} samples in a row failed on judge errors; the last: "
                f"{record['error']} Fix the judge and run again to resume."
            )

    def one(sample: CaptionSample) -> dict[str, Any]:
        return _judge_one(sample, benchmark, candidates.get(sample.id), judge, video_judge, options)

    if max_workers == 1:
        for sample in samples:
            record = one(sample)
            yield record
            check(record)
        return
    pending: set[Future[dict[str, Any]]] = set()
    queue = iter(samples)
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="autodq") as pool:
        try:
            for sample in queue:
                pending.add(pool.submit(one, sample))
                if len(pending) >= 2 * max_workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield (record := future.result())
                        check(record)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield (record := future.result())
                    check(record)
        finally:
            for future in pending:
                future.cancel()


def _judge_one(
    sample: CaptionSample,
    benchmark: CaptionBenchmark,
    candidate: str | None,
    judge: Judge,
    video_judge: Judge | None,
    options: AutoDQOptions,
) -> dict[str, Any]:
    if candidate is None:
        return {
            "id": sample.id,
            "subset": sample.subset,
            "video": sample.video,
            "candidate": None,
            "status": "unscored",
            "error": NO_CANDIDATE,
            "scores": None,
            "video_status": "off" if video_judge is None else "unscored",
            "video_error": None,
        }
    frames, video_error = None, None
    if video_judge is not None:
        frames, video_error = _frames(sample, benchmark, options)
    try:
        return score_sample(
            sample, candidate, judge, options, video_judge=video_judge, frames=frames, video_error=video_error
        )
    except JudgeError as exc:  # transport failure (unusable replies are handled inside score_sample)
        logger.warning("sample %s: judge failed: %s", sample.id, exc)
        return {
            "id": sample.id,
            "subset": sample.subset,
            "video": sample.video,
            "candidate": candidate,
            "status": "unscored",
            "error": f"judge failed: {exc}",
            "judge_error": True,
            "scores": None,
            "video_status": "off" if video_judge is None else "unscored",
            "video_error": None,
        }


def _frames(
    sample: CaptionSample, benchmark: CaptionBenchmark, options: AutoDQOptions
) -> tuple[Any, str | None]:
    path = benchmark.video_paths.get(sample.video)
    if path is None:
        if benchmark.video_dir is None:
            return None, "no video folder was given"
        return None, f"video not found: {sample.video} (under {benchmark.video_dir})"
    try:
        return video_frames(
            path, num_frames=options.frames_per_video, max_pixels=options.frame_max_pixels
        ), None
    except VideoError as exc:
        return None, str(exc)


def _finished(record: dict[str, Any] | None, candidate: str | None) -> bool:
    """Kept on resume: scored with the same candidate, or still without one (nothing to retry)."""
    if record is None or record.get("candidate") != candidate:
        return False
    return record.get("status") == "scored" or (candidate is None and record.get("error") == NO_CANDIDATE)


# ------------------------------------------------------------------------------------------ run directory


def _open_run(
    directory: Path,
    benchmark: CaptionBenchmark,
    judge: Judge,
    video_judge: Judge | None,
    options: AutoDQOptions,
    candidates: Mapping[str, str],
) -> RunDir:
    from vidspan import __version__

    identity = {
        "benchmark": {"name": benchmark.name, "annotations": str(Path(benchmark.annotations).resolve())},
        "judge": judge.settings.identity(),
        "video_judge": video_judge.settings.identity() if video_judge is not None else None,
        "options": options.to_dict(),
        "prompts": prompt_hashes(),
    }
    run = RunDir.open(
        directory, "caption-eval", identity, protocol="autodq", **identity, judge_name=judge.name,
        video_judge_name=video_judge.name if video_judge is not None else None,
        candidates=getattr(candidates, "source", None), vidspan_version=__version__, sessions=[],
    )  # fmt: skip
    run.header["benchmark"].update(_benchmark_facts(benchmark))
    return run


def _benchmark_facts(benchmark: CaptionBenchmark) -> dict[str, Any]:
    return {
        "video_dir": benchmark.video_dir,
        "num_samples": len(benchmark.samples),
        "missing_videos": len(benchmark.missing_videos),
    }


def _metrics(
    header: dict[str, Any], benchmark: CaptionBenchmark, records: list[dict[str, Any]], excluded: int
) -> dict[str, Any]:
    options = header["options"]
    kinds = ("events", "objects") if options["objects"] else ("events",)
    summary = summarize(
        records, kinds, video=header["video_judge"] is not None, consensus=options["consensus"]
    )
    summary["counts"].update(samples=len(benchmark.samples), excluded=excluded)
    usage: dict[str, dict[str, Any]] = {}
    for session in header.get("sessions", []):
        for name, delta in session.get("usage", {}).items():
            usage[name] = _delta({}, delta, usage.get(name))
    return {
        "format_version": FORMAT_VERSION,
        "protocol": "autodq",
        "benchmark": benchmark.name,
        **summary,
        "missing_videos": list(benchmark.missing_videos),
        "judge_usage": usage,
    }


def _delta(
    before: dict[str, Any], after: dict[str, Any], base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``base + (after - before)`` for the numeric fields of a usage dict."""
    out = dict(base or {})
    for key, value in after.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value - before.get(key, 0)
    return out
