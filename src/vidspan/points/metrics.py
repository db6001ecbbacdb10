"""The official Molmo2 metrics for video pointing, counting and tracking, with the upstream bugs fixed
where the reference says so and the upstream number kept beside the fixed one for comparison.

- Pointing (``VixMoPointEval``): Hungarian matching of predicted to ground-truth points on ``[0, 100]``
  normalised ``(t, x, y)`` with no distance threshold; a match is a true positive when the predicted point
  lies inside the matched object's mask at the predicted time. Upstream looks the time up as an exact
  key (``exact``); vidspan also snaps to the nearest annotated time within a tolerance (``snapped``).
- Counting (``VixMoPointCountEval``): exact ``correct``, ``close`` (``|pred - gt| <= 1 + floor(0.05 gt)``)
  and ``valid``, with all three answer wrappers and ``There are none.`` read (upstream reads neither).
- Tracking (``evaluate_video_object_tracking``): per frame, Hungarian matching on pixel distance, then
  point-in-mask precision, recall and F1, averaged over frames and then over videos; J&F from masks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vidspan.points.masks import point_in_mask

__all__ = [
    "CountScore",
    "PRF",
    "close_count",
    "count_scores",
    "match_points",
    "pointing_scores",
    "tracking_frame_scores",
]

TimedPoint = tuple[float, float, float]
"""``(t, x, y)``: seconds and pixels."""


@dataclass(frozen=True, slots=True)
class PRF:
    """Precision, recall and F1 (0–1) with the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int = 0
    predicted: int = 0
    truth: int = 0

    @classmethod
    def of(cls, tp: int, predicted: int, truth: int) -> PRF:
        """From counts: no truth and no prediction is perfect, either one alone scores 0."""
        if truth == 0:
            value = 1.0 if predicted == 0 else 0.0
            return cls(value, value, value, tp, predicted, truth)
        if predicted == 0:
            return cls(0.0, 0.0, 0.0, tp, predicted, truth)
        precision, recall = tp / predicted, tp / truth
        f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
        return cls(precision, recall, f1, tp, predicted, truth)


def match_points(pred: Sequence[Sequence[float]], truth: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Hungarian matching (minimum total Euclidean distance, no threshold): ``(pred index, truth index)``."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    if not pred or not truth:
        return []
    a, b = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]


def _normalised(p: TimedPoint, duration: float, width: float, height: float) -> tuple[float, float, float]:
    """Upstream's ``[0, 100]`` scale with one decimal (t by duration, x by width, y by height)."""
    t, x, y = p
    return (round(100 * t / duration, 1), round(100 * x / width, 1), round(100 * y / height, 1))


def _mask_at(masks: Mapping[float, Any], t: float, tolerance: float | None) -> Any | None:
    """The mask at exactly ``t`` (``tolerance`` None: upstream's float-key lookup), else the nearest
    annotated time's within ``tolerance``."""
    if tolerance is None:
        return masks.get(t)
    best = min(masks, key=lambda k: abs(k - t), default=None)
    if best is None or abs(best - t) > tolerance + 1e-9:
        return None
    return masks[best]


def pointing_scores(pred: Sequence[TimedPoint], truth: Sequence[TimedPoint],
                    masks: Sequence[Mapping[float, Any]], duration: float, width: float, height: float, *,
                    tolerance: float | None = None) -> PRF:  # fmt: skip
    """Video pointing precision, recall and F1 of one video (``VixMoPointEval``).

    Args:
        pred: Predicted points ``(t, x, y)`` in seconds and pixels.
        truth: The ground-truth points, one per object.
        masks: For each ground-truth object, time → its mask (``bool`` array ``(height, width)``).
        duration, width, height: The video's, for the ``[0, 100]`` normalisation of the matching.
        tolerance: None: a predicted time must be an exact mask key (upstream). A number of seconds: the
            nearest annotated time within it is used (vidspan's fix for points between annotated frames).
    """
    if len(masks) != len(truth):
        raise ValueError(f"Got {len(truth)} ground-truth points but masks for {len(masks)} objects.")
    if duration <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"Invalid video size: duration {duration}, {width} x {height}. All must be > 0.")
    if not truth or not pred:
        return PRF.of(0, len(pred), len(truth))
    pairs = match_points([_normalised(p, duration, width, height) for p in pred],
                         [_normalised(g, duration, width, height) for g in truth])  # fmt: skip
    tp = 0
    for i, j in pairs:
        t, x, y = pred[i]
        mask = _mask_at(masks[j], t, tolerance)
        if mask is not None and point_in_mask(mask, x, y):
            tp += 1
    return PRF.of(tp, len(pred), len(truth))


@dataclass(frozen=True, slots=True)
class CountScore:
    """One counting answer scored: exact, close and valid (a number was read)."""

    predicted: int | None
    truth: int
    correct: bool
    close: bool
    valid: bool


def close_count(predicted: int, truth: int) -> bool:
    """Molmo2's close-count: ``|predicted - truth| <= 1 + floor(0.05 * truth)``."""
    return abs(predicted - truth) <= 1 + math.floor(0.05 * truth)


def count_scores(predicted: int | None, truth: int) -> CountScore:
    """Score one count (``predicted`` None: nothing was read, invalid and wrong)."""
    if predicted is None:
        return CountScore(None, truth, False, False, False)
    return CountScore(predicted, truth, predicted == truth, close_count(predicted, truth), True)


def tracking_frame_scores(pred: Sequence[tuple[float, float]], masks: Sequence[Any],
                          truth: Sequence[tuple[float, float]] | None = None) -> PRF:  # fmt: skip
    """One frame of tracking (``evaluate_frame_predictions``): predicted pixel points against the objects.

    The predicted points are matched (Hungarian, pixel distance) to the objects' ground-truth points
    (``truth``, one per mask; default each mask's centroid) and a match is a true positive when the point
    lies inside that object's mask. Without ``truth``, objects with an empty mask are not in the frame.
    """
    import numpy as np

    if truth is not None and len(truth) != len(masks):
        raise ValueError(f"Got {len(truth)} ground-truth points but {len(masks)} masks.")
    if truth is None:
        masks = [m for m in masks if np.asarray(m, dtype=bool).any()]
        truth = []
        for mask in masks:
            ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
            truth.append((float(xs.mean()) + 0.5, float(ys.mean()) + 0.5))
    if not truth or not pred:
        return PRF.of(0, len(pred), len(truth))
    pairs = match_points([list(p) for p in pred], [list(t) for t in truth])
    tp = sum(1 for i, j in pairs if point_in_mask(masks[j], pred[i][0], pred[i][1]))
    return PRF.of(tp, len(pred), len(truth))
