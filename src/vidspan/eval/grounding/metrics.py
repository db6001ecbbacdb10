"""TimeLens-Bench grounding metrics: temporal IoU, R1@τ, mIoU and the parse-failure rate.

This is the protocol of TimeLens' ``evaluation/compute_metrics.py`` re-implemented from its description
(see ``grounding-eval.md`` §1.4): IoU over the hull of the two spans, the first GT span only, no swapping of
reversed predictions, no clipping to the video, unparseable answers scored 0 and kept in the denominator,
``IoU >= τ`` for a hit, everything reported × 100 per subset. The one addition is a zero-denominator guard.

The official inference script also rounds every predicted value to whole seconds with Python's banker's
rounding; ``score_timelens(..., round_to_seconds=True)`` reproduces that. Numbers from the two modes are
not comparable, so record which one produced a result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vidspan.eval.grounding.samples import GroundingSample

logger = logging.getLogger(__name__)

OVERALL = "all"
"""Key of the pooled, sample-weighted block in :func:`summarize` (TimeLens reports no pooled number)."""

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a reported metric means and which direction is better.

    Attributes:
        name: The key :func:`summarize` uses.
        higher_is_better: Whether a larger value is a better result.
        description: One line for reports.
    """

    name: str
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("R1@0.3", True, "Percent of samples whose prediction has IoU >= 0.3 with the GT span."),
        MetricInfo("R1@0.5", True, "Percent of samples whose prediction has IoU >= 0.5 with the GT span."),
        MetricInfo("R1@0.7", True, "Percent of samples whose prediction has IoU >= 0.7 with the GT span."),
        MetricInfo("mIoU", True, "Mean IoU over all samples (unparsed samples count as 0), × 100."),
        MetricInfo("num_unparsed", False, "Number of samples whose answer gave no span."),
        MetricInfo("parse_failure_rate", False, "Percent of samples whose answer gave no span."),
    )
}
"""Metric metadata for the keys of :func:`summarize` (``num_samples`` is a count, not a metric)."""


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better (``R1@<τ>`` for any τ is understood).

    Args:
        name: A metric key from :func:`summarize`.

    Returns:
        The metric's direction.

    Raises:
        KeyError: ``name`` is not a known metric.
    """
    if name in METRICS:
        return METRICS[name].higher_is_better
    if name.startswith("R1@"):
        return True
    raise KeyError(f"Unknown metric {name!r}. Known: {', '.join(METRICS)}, R1@<threshold>.")


@dataclass(frozen=True, slots=True)
class GroundingScore:
    """The score of one sample under the TimeLens protocol.

    Attributes:
        sample_id: ``GroundingSample.id``.
        subset: ``GroundingSample.subset``.
        iou: Temporal IoU of the (possibly rounded) prediction with the first GT span; 0 when unparsed.
        parsed: Whether the model's answer gave a span.
    """

    sample_id: str
    subset: str
    iou: float
    parsed: bool


def temporal_iou(pred: Interval | None, gt: Interval) -> float:
    """Temporal IoU of a predicted and a ground-truth span, TimeLens style.

    ``max(min(e1, e2) - max(s1, s2), 0) / (max(e1, e2) - min(s1, s2))``: the denominator is the hull of the
    two spans, which equals their union whenever they overlap. Spans are used as given: a reversed
    prediction (``start >= end``) has no intersection and scores 0. A hull of zero or less gives 0.

    Args:
        pred: Predicted ``(start, end)`` in seconds, or ``None`` when nothing was parsed.
        gt: Ground-truth ``(start, end)`` in seconds.

    Returns:
        The IoU in ``[0, 1]``.
    """
    if pred is None:
        return 0.0
    s1, e1 = float(pred[0]), float(pred[1])
    s2, e2 = float(gt[0]), float(gt[1])
    intersection = max(min(e1, e2) - max(s1, s2), 0.0)
    hull = max(e1, e2) - min(s1, s2)
    if hull <= 0.0:
        return 0.0
    return intersection / hull


def round_span(span: Interval, unit: float = 1.0) -> Interval:
    """Round both ends to a multiple of ``unit`` as TimeLens' inference script does.

    ``round(x / unit) * unit`` with Python's ``round``, i.e. banker's rounding: ``round(2.5) == 2``,
    ``round(3.5) == 4``.

    Args:
        span: ``(start, end)`` in seconds.
        unit: Grid in seconds (TimeLens uses 1.0).

    Returns:
        The rounded ``(start, end)`` as floats.

    Raises:
        ValueError: ``unit`` is not a positive finite number.
    """
    if not (math.isfinite(unit) and unit > 0):
        raise ValueError(f"Invalid unit: {unit}. It must be a positive finite number of seconds.")
    return (float(round(span[0] / unit) * unit), float(round(span[1] / unit) * unit))


def score_timelens(
    preds: Sequence[Interval | None],
    samples: Sequence[GroundingSample],
    *,
    round_to_seconds: bool = False,
) -> list[GroundingScore]:
    """Score predictions against samples with the TimeLens protocol.

    Only the first GT span of each sample is used; predictions are neither swapped nor clipped. A ``None``
    prediction (nothing parsed) scores IoU 0 and stays in every denominator.

    Args:
        preds: One prediction per sample, in the same order; ``None`` for an unparseable answer.
        samples: The benchmark samples.
        round_to_seconds: Round each prediction to whole seconds first (banker's rounding), as the
            official inference script does. Scores from the two modes are not comparable.

    Returns:
        One :class:`GroundingScore` per sample, in order.

    Raises:
        ValueError: The lengths differ or a sample has no GT span.
    """
    if len(preds) != len(samples):
        raise ValueError(
            f"Invalid preds: {len(preds)} predictions for {len(samples)} samples. "
            "It must have exactly one prediction per sample."
        )
    scores = []
    for pred, sample in zip(preds, samples, strict=True):
        if not sample.gt_spans:
            raise ValueError(
                f"Invalid sample {sample.id!r}: gt_spans=(). It must have at least one ground-truth span."
            )
        if pred is not None and round_to_seconds:
            pred = round_span(pred)
        iou = temporal_iou(pred, sample.gt_spans[0])
        scores.append(GroundingScore(sample.id, sample.subset, iou, pred is not None))
    return scores


def _block(scores: Sequence[GroundingScore], thresholds: Sequence[float]) -> dict[str, float]:
    n = len(scores)
    ious = [s.iou for s in scores]
    block: dict[str, float] = {}
    for t in thresholds:
        block[f"R1@{t:g}"] = 100.0 * sum(iou >= t for iou in ious) / n
    num_unparsed = sum(not s.parsed for s in scores)
    block["mIoU"] = 100.0 * math.fsum(ious) / n
    block["num_samples"] = n
    block["num_unparsed"] = num_unparsed
    block["parse_failure_rate"] = 100.0 * num_unparsed / n
    return block


def summarize(
    scores: Iterable[GroundingScore], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> dict[str, dict[str, float]]:
    """R1@τ, mIoU and parse failures per subset, plus a pooled block under :data:`OVERALL` (``"all"``).

    Percentages are × 100 at full float precision (round only for presentation). R1 counts ``IoU >= τ``.
    Subsets appear in first-seen order, the pooled, sample-weighted block last.

    Args:
        scores: Per-sample scores from :func:`score_timelens`.
        thresholds: IoU thresholds for R1, each in ``[0, 1]``.

    Returns:
        ``{subset: {"R1@0.3": ..., "R1@0.5": ..., "R1@0.7": ..., "mIoU": ..., "num_samples": n,
        "num_unparsed": k, "parse_failure_rate": ...}, ..., "all": {...}}``.

    Raises:
        ValueError: No scores, a threshold outside ``[0, 1]``, or a subset named ``"all"``.
    """
    scores = list(scores)
    if not scores:
        raise ValueError("Invalid scores: []. It must contain at least one score.")
    for t in thresholds:
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"Invalid threshold: {t}. It must be in [0, 1].")
    by_subset: dict[str, list[GroundingScore]] = {}
    for score in scores:
        by_subset.setdefault(score.subset, []).append(score)
    if OVERALL in by_subset:
        raise ValueError(
            f"Invalid subset: {OVERALL!r}. It must differ from {OVERALL!r}, the key of the pooled block."
        )
    summary = {subset: _block(group, thresholds) for subset, group in by_subset.items()}
    summary[OVERALL] = _block(scores, thresholds)
    return summary
