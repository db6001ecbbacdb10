"""Running a model over a grounding benchmark: a resumable run directory with every setting recorded.

A run is a directory:

- ``header.json``: benchmark, annotations, videos, model, every sampling and prompt setting, the scoring
  protocol, library versions, git commit, start and finish times;
- ``samples.jsonl``: one line per finished sample (query, ground truth, raw answer, spans read by the
  lenient and the strict parser, IoU under each, error if any), appended as samples finish;
- ``metrics.json``: the TimeLens-protocol metrics per subset, lenient and strict, parse-failure rates and
  the samples that could not be run (missing or unreadable videos, model errors).

Running again in the same directory resumes: finished samples are kept, failed ones are retried. Videos
are decoded in a background thread a few videos ahead, so the model does not wait on decoding.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.eval.grounding import metrics as grounding_metrics
from vidspan.eval.grounding.samples import Benchmark, GroundingSample
from vidspan.eval.rundir import RunDir, RunError
from vidspan.find import ground
from vidspan.models.base import VideoModel
from vidspan.parse import parse_span
from vidspan.scale.ray import RayOptions, failure_reason
from vidspan.types import Clip
from vidspan.video import SamplingConfig
from vidspan.windows import ModelLike, Progress, RunSettings, decode_windows, prepare

logger = logging.getLogger(__name__)

__all__ = ["GroundingRun", "RunError", "run_grounding", "score_records"]

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"


@dataclass(frozen=True, slots=True)
class GroundingRun:
    """A finished (or partly finished) run: its directory and metrics."""

    directory: Path
    header: dict[str, Any]
    metrics: dict[str, Any]


def run_grounding(
    benchmark: Benchmark,
    model: ModelLike | None,
    out_dir: str | os.PathLike[str],
    *,
    sampling: SamplingConfig | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    round_to_seconds: bool = False,
    limit: int | None = None,
    prefetch_videos: int = 2,
    progress: Progress | None = None,
    ray: RayOptions | None = None,
    **options: Any,
) -> GroundingRun:
    """Run ``model`` over ``benchmark`` into ``out_dir`` (resuming a run already there).

    Args:
        benchmark: From :func:`vidspan.eval.grounding.datasets.load_benchmark`.
        model: Model name, checkpoint or loaded :class:`VideoModel`.
        out_dir: The run directory.
        sampling: Frame sampling settings; keyword overrides in ``options`` win over it.
        prompt: Replace the family's grounding prompt (``{event}`` is the query).
        max_new_tokens: Generation budget (default: the family's).
        round_to_seconds: Round predictions to whole seconds before scoring, as TimeLens' official
            inference script does (off by default; recorded with the results).
        limit: Only the first ``limit`` samples (for smoke runs; recorded).
        prefetch_videos: How many upcoming videos to decode ahead of the model.
        progress: ``progress(done, total, message)`` callback.
        ray: Run on a Ray cluster (videos decoded on CPU tasks, answered by model actors); the run
            directory is the same as a single-process run's, and either kind resumes the other.
        **options: Sampling overrides (:class:`vidspan.windows.SamplingOptions`: ``fps``, ``min_frames``,
            ``max_frames``, ``max_pixels``, ``min_pixels``, ``window_seconds``, ``overlap_seconds``) and,
            when ``model`` is a name, options for :func:`vidspan.get_model` (``device``, ``base_url``...).

    Returns:
        The run with its metrics.

    Raises:
        RunError: ``out_dir`` holds a run made with other settings.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"Invalid limit: {limit}. It must be >= 1.")
    if prefetch_videos < 1:
        raise ValueError(f"Invalid prefetch_videos: {prefetch_videos}. It must be >= 1.")
    if ray is not None and ray.vllm is not None:
        raise ValueError(
            "Grounding runs on vidspan's model actors, not on Ray's vLLM processor: leave out vllm "
            "(or point the openai backend at vLLM servers)."
        )
    vm, settings = prepare(model, sampling, options, remote=ray is not None)
    template = prompt if prompt is not None else vm.family.find_prompt
    budget = max_new_tokens or vm.family.find_max_new_tokens
    samples = benchmark.samples[:limit] if limit else benchmark.samples
    directory = Path(out_dir)
    identity = {
        "benchmark": benchmark.name,
        "annotations": str(Path(benchmark.annotations).resolve()),
        "model": vm.name,
        "sampling": settings.to_dict(),
        "prompt": template,
        "max_new_tokens": budget,
        "output_format": vm.family.output_format,
        "round_to_seconds": round_to_seconds,
        "limit": limit,
    }
    with RunDir.open(directory, "grounding", identity, **_header_fields(identity, benchmark, vm)) as run:
        done = run.finished_ids(SAMPLES)
        todo = [s for s in samples if s.id not in done]
        logger.info("%s: %d of %d samples to run", directory, len(todo), len(samples))
        with run.appending(SAMPLES) as append:
            tick = _Ticker(progress, len(samples), len(todo))
            answer = _Answer(template, budget, round_to_seconds)
            if ray is None:
                lines = _answer_all(vm, benchmark, todo, settings, answer, prefetch_videos, tick)
            else:
                lines = _answer_on_ray(vm, benchmark, todo, settings, answer, ray, tick)
            for line in lines:
                append(line)
        records = run.records(SAMPLES)
        result = score_records(records, [s.id for s in samples], round_to_seconds=round_to_seconds)
        missing = list(benchmark.missing_videos)
        result |= {"benchmark": benchmark.name, "model": vm.name, "missing_videos": missing}
        run.write_json(METRICS, result)
        run.finish()
        return GroundingRun(directory, run.header, result)


class _Ticker:
    """Progress over the whole run: samples already done count as done."""

    def __init__(self, progress: Progress | None, total: int, todo: int):
        self.progress, self.total, self.done = progress, total, total - todo
        self.started = time.monotonic()
        if progress:
            progress(self.done, total, f"{todo} samples to run")

    def __call__(self, n: int, video: str) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total, f"{video} ({time.monotonic() - self.started:.0f} s)")


def _answer_all(
    vm: VideoModel,
    benchmark: Benchmark,
    todo: list[GroundingSample],
    settings: RunSettings,
    answer: _Answer,
    prefetch_videos: int,
    tick: _Ticker,
) -> Iterator[dict[str, Any]]:
    """Each sample's record, video by video (videos decoded ahead); a video that fails fails its samples."""
    for video, group, clips in _decoded_groups(benchmark, todo, settings, prefetch_videos):
        if isinstance(clips, BaseException):
            yield from (_record(s, error=failure_reason(clips)) for s in group)
        else:
            yield from answer(vm, group, clips)
        tick(len(group), video)


def _answer_on_ray(
    vm: VideoModel,
    benchmark: Benchmark,
    todo: list[GroundingSample],
    settings: RunSettings,
    answer: _Answer,
    options: RayOptions,
    tick: _Ticker,
) -> Iterator[dict[str, Any]]:
    """The same records from a Ray cluster: one item per video (decoded on a CPU task, answered by a model
    actor), yielded as videos finish."""
    from vidspan.scale.ray import ItemFailed, ray_session, run_items

    groups = _by_video(todo)
    items = [(video, group) for video, group in groups.items()]
    decode = functools.partial(_decode_group, dict(benchmark.video_paths), benchmark.video_dir, settings)
    load = functools.partial(_load_answer, vm, answer)
    with ray_session(options):
        for key, result in run_items(items, decode=decode, load=load, options=options):
            video, group = items[key]
            if isinstance(result, ItemFailed):
                logger.warning("video %s failed on Ray: %s", video, result.reason)
                result = [_record(s, error=result.reason) for s in group]
            yield from result
            tick(len(group), video)


def _decode_group(
    video_paths: dict[str, str], video_dir: str | None, settings: RunSettings, item: tuple[str, Any]
) -> list[Clip]:
    """A Ray decode task: the window clips of the item's video."""
    return _decode_video(video_paths, video_dir, item[0], settings)


def _load_answer(vm: VideoModel, answer: _Answer) -> Any:
    """In a model actor: load the model once; answer each video's samples."""
    from vidspan.scale.remote import loaded

    model = loaded(vm)
    return lambda item, clips: answer(model, item[1], clips)


# -- decoding ahead -----------------------------------------------------------------------------------


def _decoded_groups(
    benchmark: Benchmark, todo: list[GroundingSample], settings: RunSettings, ahead: int
) -> Iterator[tuple[str, list[GroundingSample], list[Clip] | BaseException]]:
    """Samples grouped by video (first-seen order) with the video's window clips, decoded ahead."""
    groups = _by_video(todo)
    order = list(groups)

    def decode(video: str) -> list[Clip]:
        return _decode_video(benchmark.video_paths, benchmark.video_dir, video, settings)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidspan-eval-decode") as pool:
        pending: dict[int, Future[list[Clip]]] = {}
        for i, video in enumerate(order):
            for j in range(i, min(i + ahead, len(order))):
                if j not in pending:
                    pending[j] = pool.submit(decode, order[j])
            try:
                clips: list[Clip] | BaseException = pending.pop(i).result()
            except Exception as exc:  # per-video boundary: the error is recorded for its samples
                logger.warning("cannot use video %s: %s", video, exc)
                clips = exc
            yield video, groups[video], clips


def _by_video(todo: list[GroundingSample]) -> dict[str, list[GroundingSample]]:
    """Samples grouped by video, in first-seen order."""
    groups: dict[str, list[GroundingSample]] = {}
    for sample in todo:
        groups.setdefault(sample.video, []).append(sample)
    return groups


def _decode_video(
    video_paths: Mapping[str, str], video_dir: str | None, video: str, settings: RunSettings
) -> list[Clip]:
    path = video_paths.get(video)
    if path is None:
        raise RunError(f"video {video} is missing from {video_dir}")
    return [w.clip for w in decode_windows(path, settings)]


# -- answering and scoring one video's samples ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """Grounds one video's samples and builds their records (the same in one process and on Ray)."""

    template: str
    budget: int
    round_to_seconds: bool

    def __call__(
        self, vm: VideoModel, group: list[GroundingSample], clips: list[Clip]
    ) -> list[dict[str, Any]]:
        try:
            found = ground(
                vm, clips, [s.query for s in group], prompt=self.template, max_new_tokens=self.budget
            )
        except Exception as exc:  # per-sample boundary: a model failure is recorded, and retried on resume
            reason = failure_reason(exc)
            logger.warning("model failed on %s: %s", group[0].video, reason)
            return [_record(s, error=reason) for s in group]
        lines = []
        for sample, best in zip(group, found, strict=True):
            lenient = best.as_written  # as the model wrote it: no swap, no clip (TimeLens protocol)
            # strict scoring rejects answers that break the format; a span outside the window is not a
            # format error, so the violations are read without the window's duration
            parsed = parse_span(best.raw, output_format=vm.family.output_format)
            strict = lenient if not parsed.violations else None
            lines.append(
                _record(
                    sample,
                    raw=best.raw,
                    span=lenient,
                    span_strict=strict,
                    format_ok=best.format_ok,
                    violations=list(parsed.violations),
                    score=best.score,
                    window=best.window.to_tuple() if best.window else None,
                    iou=_iou(lenient, sample, self.round_to_seconds),
                    iou_strict=_iou(strict, sample, self.round_to_seconds),
                )
            )
        return lines


def _iou(span: tuple[float, float] | None, sample: GroundingSample, round_to_seconds: bool) -> float:
    if span is not None and round_to_seconds:
        span = grounding_metrics.round_span(span)
    return grounding_metrics.temporal_iou(span, sample.gt_spans[0])


def _record(sample: GroundingSample, *, error: str | None = None, **fields: Any) -> dict[str, Any]:
    base = sample.to_dict() | {
        "raw": None, "span": None, "span_strict": None, "format_ok": False, "violations": [],
        "score": None, "window": None, "iou": None, "iou_strict": None,
    }  # fmt: skip
    base.update(fields)
    base["span"] = list(base["span"]) if base["span"] is not None else None
    base["span_strict"] = list(base["span_strict"]) if base["span_strict"] is not None else None
    base["error"] = error
    return base


def score_records(
    records: dict[str, dict[str, Any]], sample_ids: list[str], *, round_to_seconds: bool
) -> dict[str, Any]:
    """TimeLens-protocol metrics, lenient and strict, over the samples that ran.

    Samples that could not run (error) are excluded from the metrics and counted; unparsed answers score
    IoU 0 and stay in the denominator.
    """
    ran, failed = [], []
    for sample_id in sample_ids:
        record = records.get(sample_id)
        if record is None or record.get("error"):
            failed.append({"id": sample_id, "error": record.get("error") if record else "not run"})
        else:
            ran.append(record)
    samples = [
        GroundingSample(
            id=r["id"], video=r["video"], query=r["query"], subset=r["subset"],
            gt_spans=tuple((float(a), float(b)) for a, b in r["gt_spans"]), duration=r.get("duration"),
        )
        for r in ran
    ]  # fmt: skip

    def summary(key: str) -> dict[str, Any]:
        preds = [tuple(r[key]) if r.get(key) is not None else None for r in ran]
        scores = grounding_metrics.score_timelens(preds, samples, round_to_seconds=round_to_seconds)
        return grounding_metrics.summarize(scores) if scores else {}

    return {
        "protocol": "timelens",
        "round_to_seconds": round_to_seconds,
        "num_samples": len(sample_ids),
        "num_scored": len(ran),
        "num_failed": len(failed),
        "failed": failed,
        "lenient": summary("span"),
        "strict": summary("span_strict"),
    }


# -- files --------------------------------------------------------------------------------------------


def _header_fields(identity: dict[str, Any], benchmark: Benchmark, vm: VideoModel) -> dict[str, Any]:
    """What a grounding run's header records beside its identity (reports read these)."""
    return {
        "benchmark": benchmark.name,
        "annotations": identity["annotations"],
        "videos": benchmark.video_dir,
        "model": vm.name,
        "settings": identity["sampling"]
        | {"prompt": identity["prompt"], "max_new_tokens": identity["max_new_tokens"]},
        "model_settings": {k: v for k, v in vm.settings().items() if "key" not in k.lower()},
        "round_to_seconds": identity["round_to_seconds"],
        "num_samples": len(benchmark.samples),
        "missing_videos": list(benchmark.missing_videos),
    }
