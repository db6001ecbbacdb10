"""The official QVHighlights scorer: moment retrieval (R1, mAP) and highlight detection (mAP, HIT@1).

Re-implemented from the rules of ``jayleicn/moment_detr`` ``standalone_eval/eval.py`` (described in
``grounding-eval.md`` §5.2-5.3); the result has the same structure, key names and rounding (× 100, two
decimals) as the dictionary the official script prints.

Departures, all for inputs on which the official script crashes or returns NaN:

- duplicate qids in the submission or the ground truth raise ``ValueError``;
- a query with an empty ``pred_relevant_windows`` list scores 0 in R1 and AP 0 in mAP (it stays in the
  denominators); an empty ``pred_saliency_scores`` is padded with zeros as a short one is;
- a cross IoU whose union is 0 (two zero-length windows at the same time) is 0 instead of NaN;
- a query with no GT window or a relevant clip id outside the video raises ``ValueError``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

CLIP_SECONDS = 2.0
"""Length of one highlight-detection clip."""

IOU_THRESHOLDS: tuple[float, ...] = tuple(float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10))
"""Moment-retrieval IoU thresholds 0.5, 0.55, ..., 0.95."""

MAX_PRED_WINDOWS = 10
"""mAP uses the first this many predicted windows of each query, as listed."""

LENGTH_RANGES: dict[str, tuple[float, float]] = {
    "short": (0.0, 10.0),
    "middle": (10.0, 30.0),
    "long": (30.0, 150.0),
}
"""GT-window length subsets ``low < end - start <= high``; "full" uses every window."""

SALIENCY_LEVELS: dict[str, int] = {"Fair": 2, "Good": 3, "VeryGood": 4}
"""Highlight-detection levels: a clip is positive for an annotator if the score is at least this."""


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file (one object per non-blank line).

    Args:
        path: The file.

    Returns:
        The objects in file order.
    """
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _pct(value: float) -> float:
    """× 100 rounded to two decimals, exactly as the official script formats (``f"{100 * v:.2f}"``)."""
    return float(f"{100 * value:.2f}")


# ---------------------------------------------------------------------------------------------- IoU


def _cross_iou(spans1: np.ndarray, spans2: np.ndarray) -> np.ndarray:
    """``(N, M)`` IoU with the true union ``len1 + len2 - intersection`` (0 where the union is 0)."""
    left = np.maximum(spans1[:, None, 0], spans2[None, :, 0])
    right = np.minimum(spans1[:, None, 1], spans2[None, :, 1])
    inter = np.clip(right - left, 0.0, None)
    union = (spans1[:, 1] - spans1[:, 0])[:, None] + (spans2[:, 1] - spans2[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def _paired_iou(span1: np.ndarray, span2: np.ndarray) -> float:
    """IoU over the hull of two spans (0 when the hull is 0), as the official R1 uses it."""
    inter = max(0.0, min(span1[1], span2[1]) - max(span1[0], span2[0]))
    hull = max(span1[1], span2[1]) - min(span1[0], span2[0])
    return float(inter / hull) if hull != 0 else 0.0


# ---------------------------------------------------------------------------------- moment retrieval


@dataclass(frozen=True, slots=True)
class _Query:
    """One query's windows: ``listed`` as submitted (top 10), ``cross`` = cross IoU listed × GT."""

    qid: Any
    listed: np.ndarray  # (P, 3) start, end, score
    gt: np.ndarray  # (G, 2)
    cross: np.ndarray  # (P, G)
    by_score: np.ndarray  # (P,) row order for mAP: descending score, stable


def _query(pred: dict[str, Any], gt: dict[str, Any]) -> _Query:
    qid = gt["qid"]
    windows = pred["pred_relevant_windows"][:MAX_PRED_WINDOWS]
    if any(len(w) < 3 for w in windows):
        raise ValueError(
            f"Invalid pred_relevant_windows for qid {qid!r}: {windows[:3]}. "
            "It must be a list of [start, end, score]."
        )
    listed = np.array([w[:3] for w in windows], dtype=float).reshape(-1, 3)
    gt_windows = np.array(gt["relevant_windows"], dtype=float).reshape(-1, 2)
    if len(gt_windows) == 0:
        raise ValueError(f"Invalid relevant_windows for qid {qid!r}: []. It must have at least one window.")
    cross = _cross_iou(listed[:, :2], gt_windows)
    by_score = np.argsort(-listed[:, 2], kind="stable")
    return _Query(qid, listed, gt_windows, cross, by_score)


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 AP: envelope of precision over (0, 0) + points + (1, 0), summed where recall changes."""
    mprec = np.concatenate(([0.0], precision, [0.0]))
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _window_ap(cross: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """AP per threshold for one query; ``cross`` rows are predictions in score order, columns GT windows."""
    num_preds, num_gts = cross.shape
    ap = np.zeros(len(thresholds))
    if num_preds == 0:
        return ap
    # GT windows in descending IoU per prediction (ties: later window first, as argsort()[::-1] gives)
    gt_order = np.argsort(cross, axis=1, kind="stable")[:, ::-1].tolist()
    ious = cross.tolist()
    tp = np.zeros((len(thresholds), num_preds))
    for t_idx, threshold in enumerate(thresholds):
        locked = [False] * num_gts
        for p in range(num_preds):
            for g in gt_order[p]:
                if ious[p][g] < threshold:
                    break
                if locked[g]:
                    continue
                tp[t_idx, p] = 1.0
                locked[g] = True
                break
    tp_cum = np.cumsum(tp, axis=1)
    precision = tp_cum / np.arange(1, num_preds + 1)
    recall = tp_cum / num_gts
    for t_idx in range(len(thresholds)):
        ap[t_idx] = _interpolated_ap(precision[t_idx], recall[t_idx])
    return ap


def _subset_scores(
    queries: list[_Query], low: float | None, high: float | None
) -> dict[str, dict[str, float]]:
    """R1 and mAP over the queries, keeping only GT windows with ``low < length <= high`` (all if None)."""
    r1_ious = []
    aps = []
    for q in queries:
        if low is None:
            keep = np.ones(len(q.gt), dtype=bool)
        else:
            length = q.gt[:, 1] - q.gt[:, 0]
            keep = (length > low) & (length <= high)
            if not keep.any():
                continue  # the query has no GT window in range: dropped from this subset
        gt = q.gt[keep]
        cross = q.cross[:, keep]
        if len(q.listed) == 0:
            r1_ious.append(0.0)
        else:
            best = int(np.argmax(cross[0]))  # first GT window on ties
            r1_ious.append(_paired_iou(q.listed[0, :2], gt[best]))
        aps.append(_window_ap(cross[q.by_score], IOU_THRESHOLDS))
    if not aps:
        zeros = {str(t): 0.0 for t in IOU_THRESHOLDS}
        return {"MR-mAP": {**zeros, "average": 0.0}, "MR-R1": dict(zeros)}
    ap_by_threshold = np.mean(np.array(aps), axis=0)
    mr_map = {str(t): _pct(v) for t, v in zip(IOU_THRESHOLDS, ap_by_threshold, strict=True)}
    mr_map["average"] = _pct(float(np.mean(ap_by_threshold)))
    r1 = np.array(r1_ious)
    mr_r1 = {str(t): _pct(float(np.mean(r1 >= t))) for t in IOU_THRESHOLDS}
    logger.debug("QVHighlights MR subset (%s, %s]: %d queries", low, high, len(aps))
    return {"MR-mAP": mr_map, "MR-R1": mr_r1}


def eval_moment_retrieval(
    submission: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Moment-retrieval R1@τ and mAP@τ (τ = 0.5:0.05:0.95) for the length subsets and the full set.

    Every submission qid must be in ``ground_truth`` (use :func:`eval_qvhighlights` to check or intersect).

    Args:
        submission: Objects with ``qid`` and ``pred_relevant_windows`` (``[start, end, score]``, ranked).
        ground_truth: Objects with ``qid`` and ``relevant_windows``.

    Returns:
        ``{"short"|"middle"|"long"|"full": {"MR-mAP": {"0.5": ..., ..., "average": ...}, "MR-R1": {...}}}``.
    """
    gt_by_qid = {d["qid"]: d for d in ground_truth}
    queries = [_query(pred, gt_by_qid[pred["qid"]]) for pred in submission]
    result = {name: _subset_scores(queries, low, high) for name, (low, high) in LENGTH_RANGES.items()}
    result["full"] = _subset_scores(queries, None, None)
    return result


# --------------------------------------------------------------------------------- highlight detection


def _gt_saliency(gt: dict[str, Any]) -> np.ndarray:
    """``(int(duration / 2), 3)`` annotator scores: 0 except the rows in ``relevant_clip_ids``."""
    num_clips = int(gt["duration"] / CLIP_SECONDS)
    scores = np.zeros((num_clips, 3))
    clip_ids = np.asarray(gt["relevant_clip_ids"], dtype=int)
    if clip_ids.size and (clip_ids.min() < 0 or clip_ids.max() >= num_clips):
        raise ValueError(
            f"Invalid relevant_clip_ids for qid {gt['qid']!r}: max {clip_ids.max()}. "
            f"It must index the {num_clips} clips of a {gt['duration']} s video."
        )
    scores[clip_ids] = np.asarray(gt["saliency_scores"], dtype=float).reshape(-1, 3)
    return scores


def _saliency_ap(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """AP per annotator column of binary ``labels`` (n, 3), scikit-learn PR-curve semantics (video2gif)."""
    n, num_annotators = labels.shape
    ap = np.zeros(num_annotators)
    if n == 0:
        return ap
    order = np.argsort(predicted, kind="mergesort")[::-1]
    sorted_scores = predicted[order]
    threshold_idx = np.concatenate((np.flatnonzero(np.diff(sorted_scores)), [n - 1]))
    tps_all = np.cumsum(labels[order], axis=0)[threshold_idx]  # (k, 3)
    fps_all = 1 + threshold_idx[:, None] - tps_all
    for a in range(num_annotators):
        column = labels[:, a]
        if np.all(column == column[0]):
            ap[a] = 0.0 if column[0] == 0 else 1.0
            continue
        tps, fps = tps_all[:, a], fps_all[:, a]
        # lowest threshold first, then the final point (precision 1, recall 0)
        precision = np.concatenate(((tps / (tps + fps))[::-1], [1.0]))
        recall = np.concatenate(((tps / tps[-1])[::-1], [0.0])).astype(np.float32)
        precision = np.maximum.accumulate(precision)
        ap[a] = float(np.mean(precision[np.flatnonzero(np.diff(recall))]))
    return ap


def eval_highlight(
    submission: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Highlight-detection mAP and HIT@1 at the Fair (>= 2), Good (>= 3) and VeryGood (>= 4) levels.

    Every submission qid must be in ``ground_truth`` (use :func:`eval_qvhighlights` to check or intersect).

    Args:
        submission: Objects with ``qid`` and ``pred_saliency_scores`` (one float per 2 s clip).
        ground_truth: Objects with ``qid``, ``duration``, ``relevant_clip_ids`` and ``saliency_scores``.

    Returns:
        ``{"HL-min-Fair": {"HL-mAP": ..., "HL-Hit1": ...}, "HL-min-Good": {...}, "HL-min-VeryGood": {...}}``.
    """
    gt_by_qid = {d["qid"]: d for d in ground_truth}
    pairs = []
    for pred in submission:
        gt_scores = _gt_saliency(gt_by_qid[pred["qid"]])
        predicted = np.asarray(pred["pred_saliency_scores"], dtype=float).reshape(-1)
        aligned = np.zeros(len(gt_scores))  # truncate or pad with zeros to the GT length
        aligned[: min(len(predicted), len(gt_scores))] = predicted[: len(gt_scores)]
        top = int(np.argmax(predicted)) if len(predicted) else len(gt_scores)  # first index on ties
        pairs.append((gt_scores, aligned, top))
    result = {}
    for name, minimum in SALIENCY_LEVELS.items():
        hits = np.zeros(len(pairs))
        aps = np.zeros((len(pairs), 3))
        for i, (gt_scores, aligned, top) in enumerate(pairs):
            labels = (gt_scores >= minimum).astype(float)
            if top < len(labels):
                hits[i] = labels[top].max()  # a hit if any annotator marks the clip positive
            aps[i] = _saliency_ap(labels, aligned)
        mean_ap = float(np.mean(aps)) if len(pairs) else 0.0
        hit1 = float(np.mean(hits)) if len(pairs) else 0.0
        result[f"HL-min-{name}"] = {"HL-mAP": _pct(mean_ap), "HL-Hit1": _pct(hit1)}
    return result


# ------------------------------------------------------------------------------------------- scorer


def _qids(items: Sequence[dict[str, Any]], what: str) -> list[Any]:
    qids = [d["qid"] for d in items]
    duplicates = sorted((q for q, n in Counter(qids).items() if n > 1), key=str)
    if duplicates:
        raise ValueError(f"Invalid {what}: duplicate qids {duplicates[:5]}. It must list each qid once.")
    return qids


def _has_field(submission: Sequence[dict[str, Any]], field: str) -> bool:
    present = [field in d for d in submission]
    if any(present) and not all(present):
        missing = [d["qid"] for d in submission if field not in d][:5]
        raise ValueError(
            f"Invalid submission: {field!r} missing for qids {missing}. "
            "It must be present in every entry or in none."
        )
    return all(present)


def eval_qvhighlights(
    submission: list[dict[str, Any]], ground_truth: list[dict[str, Any]], *, match_number: bool = True
) -> dict[str, Any]:
    """Score a QVHighlights submission as the official ``standalone_eval/eval.py`` does.

    Moment retrieval is scored if the entries have ``pred_relevant_windows``, highlight detection if they
    have ``pred_saliency_scores``. All values are × 100, rounded to two decimals.

    Args:
        submission: Prediction objects (``qid``, ``pred_relevant_windows``, ``pred_saliency_scores``).
        ground_truth: Annotation objects (``qid``, ``duration``, ``relevant_windows``,
            ``relevant_clip_ids``, ``saliency_scores``), e.g. ``load_jsonl("highlight_val_release.jsonl")``.
        match_number: Require the submission and ground truth to have the same qids; if False, score the
            qids they share.

    Returns:
        ``{"brief": {"MR-full-R1@0.5": ..., ..., "HL-min-VeryGood-Hit1": ...}, "HL-min-Fair": {...}, ...,
        "full": {"MR-mAP": {...}, "MR-R1": {...}}, "long": ..., "middle": ..., "short": ...}``, with the
        official key order.

    Raises:
        ValueError: The qid sets differ under ``match_number``, nothing is shared, duplicate qids, a
            submission with neither prediction field, or malformed entries.
    """
    pred_qids = _qids(submission, "submission")
    gt_qids = _qids(ground_truth, "ground_truth")
    pred_set, gt_set = set(pred_qids), set(gt_qids)
    if match_number and pred_set != gt_set:
        missing = sorted(gt_set - pred_set, key=str)
        extra = sorted(pred_set - gt_set, key=str)
        raise ValueError(
            f"Invalid submission: its qids differ from the ground truth ({len(missing)} missing, e.g. "
            f"{missing[:5]}; {len(extra)} extra, e.g. {extra[:5]}). It must have exactly the ground-truth "
            "qids. Pass match_number=False to score the shared qids only."
        )
    shared = pred_set & gt_set
    if not shared:
        raise ValueError("Invalid submission: no qid in common with the ground truth. It must share qids.")
    if not match_number:
        submission = [d for d in submission if d["qid"] in shared]
        ground_truth = [d for d in ground_truth if d["qid"] in shared]
        logger.info("QVHighlights: scoring %d shared qids", len(shared))
    has_mr = _has_field(submission, "pred_relevant_windows")
    has_hl = _has_field(submission, "pred_saliency_scores")
    if not (has_mr or has_hl):
        raise ValueError(
            "Invalid submission: no prediction fields. "
            "It must have pred_relevant_windows and/or pred_saliency_scores."
        )
    metrics: dict[str, Any] = {}
    brief: dict[str, float] = {}
    if has_mr:
        mr = eval_moment_retrieval(submission, ground_truth)
        metrics.update(mr)
        mr_brief = {
            "MR-full-mAP": mr["full"]["MR-mAP"]["average"],
            "MR-full-mAP@0.5": mr["full"]["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": mr["full"]["MR-mAP"]["0.75"],
            "MR-short-mAP": mr["short"]["MR-mAP"]["average"],
            "MR-middle-mAP": mr["middle"]["MR-mAP"]["average"],
            "MR-long-mAP": mr["long"]["MR-mAP"]["average"],
            "MR-full-R1@0.5": mr["full"]["MR-R1"]["0.5"],
            "MR-full-R1@0.7": mr["full"]["MR-R1"]["0.7"],
        }
        brief.update(sorted(mr_brief.items()))
    if has_hl:
        hl = eval_highlight(submission, ground_truth)
        metrics.update(hl)
        for level, values in hl.items():
            for key, value in values.items():
                brief[f"{level}-{key.split('-')[1]}"] = value
    return {"brief": brief, **dict(sorted(metrics.items()))}
