"""Running a model over a *where* benchmark: a resumable run directory, scored with Molmo2's metrics.

A run is a directory like a grounding run's (:class:`~vidspan.eval.rundir.RunDir`): ``header.json`` with
every setting, ``samples.jsonl`` with one record per finished sample (the raw answers, the points, count
or tracks read, in the annotation's pixels), and ``metrics.json``. Running again in the same directory
resumes; samples that failed (a missing or unreadable video, a model error) are retried.

Metrics (``vidspan.points.metrics``), each 0–100:

- points: precision, recall and F1 averaged over videos with the predicted time snapped to the nearest
  annotated time within ``tolerance`` seconds, and the same with upstream's exact-key lookup (``*_exact``);
  ``valid`` is the share of videos with at least one point read;
- counts: ``correct``, ``close``, ``valid``, accuracy per subset and per count bin
  (``correct_0_5`` ... ``correct_25_N``, the bins of ``VixMoPointCountEval``);
- tracks: per-frame point-in-mask precision, recall and F1 (frames with a prediction or a ground-truth
  point; predictions at frame ``round(t * fps)``), averaged over frames then videos; and J, F and J&F
  when ``masks_model`` (a SAM2 video checkpoint) turns the predicted tracks into masks.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.errors import VidspanError
from vidspan.eval.benchmark import locate_videos
from vidspan.eval.points.datasets import LOADERS, PointSample
from vidspan.eval.rundir import RunDir, RunError
from vidspan.points import metrics
from vidspan.windows import ModelLike, Progress, prepare

logger = logging.getLogger(__name__)

__all__ = ["REFERENCE_ROWS", "PointsRun", "RunError", "run_points_eval", "score_samples"]

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
REPORT = "report.md"
COLUMNS = {
    "point": ("precision", "recall", "f1", "f1_exact", "valid"),
    "count": ("correct", "close", "valid"),
    "track": ("precision", "recall", "f1", "j", "f", "j_and_f"),
}
COUNT_BINS = (0, 5, 10, 15, 20, 25)

REFERENCE_ROWS: dict[str, list[dict[str, Any]]] = {
    "point": [
        {"model": "Molmo2 (paper)", "f1": 38.4},
        {"model": "Gemini 3 Pro (Molmo2 paper)", "f1": 20.0},
    ],
    "track": [
        {"model": "Molmo2 (paper)", "j_and_f": 56.2},
        {"model": "Gemini 3 Pro (Molmo2 paper)", "j_and_f": 41.1},
    ],
    "count": [],
}
"""Published rows quoted by issue [7] from the Molmo2 paper (video pointing F1, tracking J&F)."""


@dataclass(frozen=True, slots=True)
class PointsRun:
    """A finished (or partly finished) run: its directory, header and metrics."""

    directory: Path
    header: dict[str, Any]
    metrics: dict[str, Any]


def run_points_eval(
    benchmark: str,
    annotations: str | os.PathLike[str],
    videos: str | os.PathLike[str],
    model: ModelLike | None,
    out_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    tolerance: float = 0.25,
    masks_model: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> PointsRun:
    """Run ``model`` over a *where* benchmark into ``out_dir`` (resuming a run already there).

    Args:
        benchmark: ``molmo2-video-points``, ``molmo2-video-count``, ``burst-vc`` or ``molmo2-video-track``.
        annotations: The set's rows as JSON or JSONL.
        videos: The folder of its videos.
        model: Model name, checkpoint directory or loaded model (default Molmo2).
        out_dir: The run directory.
        limit: Only the first ``limit`` samples (recorded).
        tolerance: Seconds within which a pointing time is snapped to an annotated time.
        masks_model: A SAM2 video checkpoint for tracking J&F (none: J&F is not computed).
        progress: ``progress(done, total, message)``.
        **options: Sampling overrides (tracking defaults to ``fps=1``, as Molmo2's track evals) and model
            options.

    Raises:
        UnknownBenchmarkError: Not one of the four sets.
        RunError: ``out_dir`` holds a run with other settings.
    """
    from vidspan.errors import UnknownBenchmarkError
    from vidspan.points.ask import DEFAULT_MODEL, ask_points, prompts_for

    if benchmark not in LOADERS:
        raise UnknownBenchmarkError(f"Unknown benchmark {benchmark!r}. Available: {', '.join(LOADERS)}.")
    if limit is not None and limit < 1:
        raise ValueError(f"Invalid limit: {limit}. It must be >= 1.")
    task, loader, _ = LOADERS[benchmark]
    samples = loader(annotations)[:limit] if limit else loader(annotations)
    found, missing = locate_videos(samples, videos)
    if task == "track" and options.get("fps") is None:
        options["fps"] = 1.0
    vm, settings = prepare(model or DEFAULT_MODEL, None, dict(options))
    own_prompt = vm.family.name == "molmo2"
    identity = {"benchmark": benchmark, "annotations": str(Path(annotations).resolve()), "model": vm.name,
                "sampling": settings.to_dict(), "prompts": prompts_for(vm.family).render(task, "{label}", 0),
                "set_questions": own_prompt, "limit": limit}  # fmt: skip
    with RunDir.open(out_dir, f"{task}-eval", identity, task=task, model_settings=vm.settings()) as run:
        done = run.finished_ids(SAMPLES)
        todo = [s for s in samples if s.id not in done]
        with run.appending(SAMPLES) as append:
            for n, sample in enumerate(todo, 1):
                path = found.get(sample.video)
                try:
                    if path is None:
                        raise RunError(f"video {sample.video} is missing from {videos}")
                    question = sample.question if own_prompt and sample.question else None
                    answer = ask_points(task, path, sample.label, vm, sampling=settings.sampling,
                                        prompt=question, span=sample.span,
                                        window_seconds=settings.window_seconds,
                                        overlap_seconds=settings.overlap_seconds)  # fmt: skip
                    append(_record(sample, answer))
                except (VidspanError, ValueError, OSError) as exc:
                    logger.warning("sample %s failed: %s", sample.id, exc)
                    append({"id": sample.id, "video": sample.video, "error": str(exc)})
                if progress:
                    progress(len(done) + n, len(samples), sample.video)
        records = run.records(SAMPLES)
        masker = _masker(masks_model, found) if masks_model and task == "track" else None
        result = score_samples(task, samples, records, tolerance=tolerance, masker=masker)
        result |= {"benchmark": benchmark, "model": vm.name, "missing_videos": sorted(missing),
                   "reference": REFERENCE_ROWS[task]}  # fmt: skip
        run.write_json(METRICS, result)
        run.write_text(REPORT, report(result))
        run.finish()
        return PointsRun(Path(out_dir), run.header, result)


def _record(sample: PointSample, answer: Any) -> dict[str, Any]:
    """What a sample's answer holds, in the annotation's pixels (the answer's are the decoded frame's)."""
    sx = (sample.width or answer.width) / answer.width
    sy = (sample.height or answer.height) / answer.height
    record: dict[str, Any] = {"id": sample.id, "video": sample.video, "raw": list(answer.raw),
                              "violations": list(answer.violations), "error": None,
                              "frame_times": list(answer.frame_times)}  # fmt: skip
    from vidspan.points.results import Counting, Tracking

    if isinstance(answer, Tracking):
        record["tracks"] = {str(t.object_id): [[p.t, p.x * sx, p.y * sy] for p in t.positions]
                            for t in answer.tracks}  # fmt: skip
    else:
        record["points"] = [[p.t, p.x * sx, p.y * sy] for p in answer.points]
    if isinstance(answer, Counting):
        record["count"] = answer.count if answer.valid else None
    return record


def score_samples(task: str, samples: Sequence[PointSample], records: Mapping[str, Mapping[str, Any]],
                  *, tolerance: float = 0.25,
                  masker: Callable[..., Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The run's metrics from its records (samples without a record, or with an error, score 0)."""
    scored = [(s, records.get(s.id)) for s in samples]
    failed = [s.id for s, r in scored if r is None or r.get("error")]
    base = {"task": task, "samples": len(samples), "failed": len(failed), "failed_ids": failed[:20]}
    if task == "point":
        return base | _score_points(scored, tolerance)
    if task == "count":
        return base | _score_counts(scored)
    return base | _score_tracks(scored, masker)


def report(result: Mapping[str, Any]) -> str:
    """A Markdown table of a run's metrics beside the published reference rows."""
    task = result["task"]
    columns = [c for c in COLUMNS[task] if c in result or any(c in r for r in result.get("reference", []))]
    head = f"| model | {' | '.join(columns)} |\n|---|{'---:|' * len(columns)}\n"
    rows = [f"| {result['model']} ({result['benchmark']}, this run) | "
            + " | ".join(f"{result[c]:.1f}" if c in result else "" for c in columns) + " |"]  # fmt: skip
    for ref in result.get("reference", []):
        cells = " | ".join(f"{ref[c]:.1f}" if c in ref else "" for c in columns)
        rows.append(f"| {ref['model']} | {cells} |")
    notes = [f"\n{result['samples']} samples, {result['failed']} failed."]
    extra = {k: v for k, v in result.items() if k.startswith(("correct_", "acc_"))}
    if extra:
        notes.append("By bin and subset: " + ", ".join(f"{k} {v:.1f}" for k, v in extra.items()) + ".")
    return head + "\n".join(rows) + "\n" + "\n".join(notes) + "\n"


def _mean(values: Sequence[float]) -> float:
    return 100.0 * sum(values) / len(values) if values else 0.0


def _score_points(scored: list[tuple[PointSample, Any]], tolerance: float) -> dict[str, Any]:
    from vidspan.points.masks import decode_rle

    rows: dict[str, list[float]] = {k: [] for k in ("precision", "recall", "f1", "precision_exact",
                                                     "recall_exact", "f1_exact", "valid")}  # fmt: skip
    for sample, record in scored:
        pred = [tuple(p) for p in (record or {}).get("points") or []]
        masks = [{t: decode_rle(rle) for t, rle in m.items()} for m in sample.masks]
        args = (
            pred,
            list(sample.points),
            masks,
            sample.duration or 1.0,
            sample.width or 1,
            sample.height or 1,
        )
        snapped = metrics.pointing_scores(*args, tolerance=tolerance)
        exact = metrics.pointing_scores(*args, tolerance=None)
        for key, value in (("precision", snapped.precision), ("recall", snapped.recall), ("f1", snapped.f1),
                           ("precision_exact", exact.precision), ("recall_exact", exact.recall),
                           ("f1_exact", exact.f1), ("valid", float(bool(pred))),):  # fmt: skip
            rows[key].append(value)
    return {k: _mean(v) for k, v in rows.items()} | {"tolerance": tolerance}


def _score_counts(scored: list[tuple[PointSample, Any]]) -> dict[str, Any]:
    scores = [(s, metrics.count_scores((r or {}).get("count"), int(s.count or 0))) for s, r in scored]
    out: dict[str, Any] = {"correct": _mean([c.correct for _, c in scores]),
                           "close": _mean([c.close for _, c in scores]),
                           "valid": _mean([c.valid for _, c in scores])}  # fmt: skip
    top = max((c.truth for _, c in scores), default=0) + 1
    for i, lo in enumerate(COUNT_BINS):
        hi = COUNT_BINS[i + 1] if i + 1 < len(COUNT_BINS) else max(top, lo + 1)
        in_bin = [c.correct for _, c in scores if lo <= c.truth < hi]
        if in_bin:
            out[f"correct_{lo}_{hi}"] = _mean(in_bin)
    for subset in dict.fromkeys(s.subset for s, _ in scores):
        out[f"acc_{subset or 'all'}"] = _mean([c.correct for s, c in scores if s.subset == subset])
    return out


def _score_tracks(scored: list[tuple[PointSample, Any]], masker: Callable[..., Any] | None) -> dict[str, Any]:
    from vidspan.points.masks import boundary_f, decode_rle, mask_iou

    per_video: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "j": [], "f": []}
    for sample, record in scored:
        fps = sample.fps or 1.0
        tracks = (record or {}).get("tracks") or {}
        pred_by_frame: dict[int, dict[str, tuple[float, float]]] = {}
        for oid, positions in tracks.items():
            for t, x, y in positions:
                pred_by_frame.setdefault(round(t * fps), {}).setdefault(oid, (x, y))  # first one per frame
        truth = _truth_points(sample, (record or {}).get("frame_times"))
        frames = sorted(set(pred_by_frame) | set(truth))
        frame_scores = []
        for f in frames:
            objects = list(truth.get(f, {}))
            masks = [_mask(sample, oid, f, decode_rle) for oid in objects]
            gt_points = [truth[f][oid] for oid in objects]
            frame_scores.append(metrics.tracking_frame_scores(list(pred_by_frame.get(f, {}).values()), masks,
                                                              truth=gt_points))  # fmt: skip
        for key in ("precision", "recall", "f1"):
            per_video[key].append(
                sum(getattr(s, key) for s in frame_scores) / len(frame_scores) if frames else 1.0
            )
        if masker is not None and record and not record.get("error"):
            j, f_score = _j_and_f(sample, tracks, masker, decode_rle, mask_iou, boundary_f)
            per_video["j"].append(j)
            per_video["f"].append(f_score)
    out = {k: _mean(per_video[k]) for k in ("precision", "recall", "f1")}
    if masker is not None:
        out |= {"j": _mean(per_video["j"]), "f": _mean(per_video["f"]),
                "j_and_f": (_mean(per_video["j"]) + _mean(per_video["f"])) / 2}  # fmt: skip
    return out


def _truth_points(
    sample: PointSample, shown: Sequence[float] | None
) -> dict[int, dict[str, tuple[float, float]]]:
    """Frame → object → ground-truth point: the set's points; else each mask's centroid at the frames the
    model was shown (``shown``, seconds; upstream's ground truth is sampled at the model's rate), or once a
    second when the record does not say."""
    if sample.track_points:
        return {f: dict(objs) for f, objs in sample.track_points.items()}
    import numpy as np

    from vidspan.points.masks import decode_rle

    fps = sample.fps or 1.0
    n = max((len(m) for m in sample.track_masks.values()), default=0)
    frames = sorted(
        {round(t * fps) for t in shown} if shown else {round(k * fps) for k in range(math.ceil(n / fps))}
    )
    out: dict[int, dict[str, tuple[float, float]]] = {}
    for f in frames:
        for oid, masks in sample.track_masks.items():
            if 0 <= f < len(masks) and masks[f] is not None:
                ys, xs = np.nonzero(decode_rle(masks[f]))
                if len(xs):
                    out.setdefault(f, {})[oid] = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    return out


def _mask(sample: PointSample, oid: str, frame: int, decode: Callable[[Any], Any]) -> Any:
    import numpy as np

    frames = sample.track_masks.get(oid, ())
    rle = frames[frame] if frame < len(frames) else None
    return decode(rle) if rle is not None else np.zeros((sample.height or 1, sample.width or 1), bool)


def _j_and_f(sample: PointSample, tracks: Mapping[str, Any], masker: Callable[..., Any], decode: Callable,
             iou: Callable, boundary: Callable) -> tuple[float, float]:  # fmt: skip
    """J and F of the union of the predicted objects' masks against the union of the true ones, over the
    annotated frames (referring segmentation's convention: the expression may name several objects)."""
    import numpy as np

    fps = sample.fps or 1.0
    annotated = sorted(
        {f for frames in sample.track_masks.values() for f, m in enumerate(frames) if m is not None}
    )
    if not annotated:
        return 1.0, 1.0
    predicted = masker(sample, tracks, [f / fps for f in annotated])
    js, fs = [], []
    shape = (sample.height or 1, sample.width or 1)
    for f in annotated:
        truth = np.zeros(shape, bool)
        for frames in sample.track_masks.values():
            if f < len(frames) and frames[f] is not None:
                truth |= decode(frames[f]).astype(bool)
        pred = predicted.get(f / fps, np.zeros(shape, bool))
        js.append(iou(pred, truth))
        fs.append(boundary(pred, truth))
    return sum(js) / len(js), sum(fs) / len(fs)


def _masker(masks_model: str, found: Mapping[str, Path]) -> Callable[..., Any]:
    """``masker(sample, tracks, times) -> {t: union mask}`` through SAM2 video."""

    def run(sample: PointSample, tracks: Mapping[str, Any], times: list[float]) -> dict[float, Any]:
        import numpy as np

        from vidspan.points.sam2 import masks_for_tracks

        w, h = sample.width or 1, sample.height or 1

        tracking = _as_tracking(sample, tracks, found[sample.video])
        if not tracking.tracks:
            return {}
        per_object = masks_for_tracks(found[sample.video], tracking, model=masks_model, times=times)
        out: dict[float, Any] = {}
        for masks in per_object.values():
            for t, mask in masks.items():
                out[t] = out.get(t, np.zeros((h, w), bool)) | np.asarray(mask, bool)
        return out

    return run


def _as_tracking(sample: PointSample, tracks: Mapping[str, Any], video: Path) -> Any:
    """A record's tracks (object id → ``[t, x, y]`` in the annotation's pixels) as a :class:`Tracking`."""
    from vidspan.points.results import Point, Track, Tracking

    w, h = sample.width or 1, sample.height or 1
    built = []
    for n, (oid, positions) in enumerate(tracks.items(), 1):
        ident = int(oid) if str(oid).isdigit() else n
        points = tuple(Point(t, x, y, x / w, y / h, ident, sample.label) for t, x, y in positions)
        built.append(Track(ident, sample.label, points))
    return Tracking(query=sample.label, video=str(video), width=w, height=h, duration=0.0,
                    tracks=tuple(built))  # fmt: skip
