"""Every points metric pinned on hand-computed fixtures (molmo2-formats.md §5)."""

from __future__ import annotations

import numpy as np
import pytest

from vidspan.points.masks import boundary_f, decode_rle, encode_rle, mask_iou, point_in_mask
from vidspan.points.metrics import (
    PRF,
    close_count,
    count_scores,
    match_points,
    pointing_scores,
    tracking_frame_scores,
)


def box(h: int, w: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def test_prf_edge_cases_follow_the_evaluator():
    assert PRF.of(0, 0, 0).f1 == 1.0  # nothing there, nothing predicted
    assert PRF.of(0, 2, 0).f1 == 0.0  # predictions where there is nothing
    assert PRF.of(0, 0, 3).recall == 0.0
    score = PRF.of(1, 2, 4)  # P = 1/2, R = 1/4, F1 = 2 * 1/8 / (3/4) = 1/3
    assert (score.precision, score.recall, score.f1) == (0.5, 0.25, pytest.approx(1 / 3))


def test_hungarian_matching_minimises_the_total_distance_without_a_threshold():
    # greedy would pair pred 0 with truth 0 (distance 1) and leave pred 1 a long way from truth 1
    pairs = match_points([(1.0, 0.0), (0.0, 0.0)], [(0.0, 0.0), (10.0, 0.0)])
    assert sorted(pairs) == [(0, 1), (1, 0)]
    assert match_points([(0.0, 0.0)], [(500.0, 500.0)]) == [(0, 0)]  # no threshold


def test_pointing_f1_by_hand_with_exact_and_snapped_times():
    # a 10 s 100x100 video with two objects annotated every 0.5 s
    left = {t / 2: box(100, 100, 40, 0, 60, 20) for t in range(21)}
    right = {t / 2: box(100, 100, 40, 80, 60, 100) for t in range(21)}
    truth = [(2.0, 10.0, 50.0), (2.0, 90.0, 50.0)]
    masks = [left, right]
    # three predictions: one on the left object at an annotated time, one on the right object between
    # annotated times (2.25 s), and one stray point in the middle
    pred = [(2.0, 12.0, 50.0), (2.25, 88.0, 52.0), (2.0, 50.0, 50.0)]
    exact = pointing_scores(pred, truth, masks, 10.0, 100, 100)
    assert (exact.tp, exact.predicted, exact.truth) == (1, 3, 2)  # 2.25 is no mask key upstream
    assert (exact.precision, exact.recall) == (pytest.approx(1 / 3), 0.5)
    assert exact.f1 == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    snapped = pointing_scores(pred, truth, masks, 10.0, 100, 100, tolerance=0.25)
    assert (snapped.tp, snapped.precision, snapped.recall) == (2, pytest.approx(2 / 3), 1.0)
    assert pointing_scores([], truth, masks, 10.0, 100, 100).f1 == 0.0
    assert pointing_scores([], [], [], 10.0, 100, 100).f1 == 1.0
    with pytest.raises(ValueError, match="masks for 1"):
        pointing_scores(pred, truth, [left], 10.0, 100, 100)


def test_counting_exact_close_and_valid():
    assert close_count(22, 20) and close_count(18, 20) and not close_count(23, 20)  # 1 + floor(1.0) = 2
    assert close_count(43, 40) and not close_count(44, 40)  # 1 + floor(2.0) = 3
    assert close_count(20, 19) and not close_count(21, 19)  # 1 + floor(0.95) = 1
    assert close_count(1, 0) and not close_count(2, 0)
    score = count_scores(3, 3)
    assert (score.correct, score.close, score.valid) == (True, True, True)
    assert count_scores(None, 3) == count_scores(None, 3) and not count_scores(None, 3).valid


def test_tracking_frame_scores_match_points_to_the_objects_present():
    masks = [box(100, 100, 0, 0, 20, 20), box(100, 100, 50, 50, 70, 70), np.zeros((100, 100), bool)]
    # two points, each inside one present object; the absent third object is not counted
    assert tracking_frame_scores([(10.0, 10.0), (60.0, 60.0)], masks).f1 == 1.0
    half = tracking_frame_scores([(10.0, 10.0), (95.0, 95.0)], masks)
    assert (half.tp, half.precision, half.recall) == (1, 0.5, 0.5)
    assert tracking_frame_scores([], masks).f1 == 0.0
    assert tracking_frame_scores([(1.0, 1.0)], [np.zeros((10, 10), bool)]).f1 == 0.0


def test_point_in_mask_uses_the_pixel_the_point_falls_in():
    mask = box(10, 10, 2, 3, 4, 5)  # rows 2-3, columns 3-4
    assert point_in_mask(mask, 3.0, 2.0) and point_in_mask(mask, 4.99, 3.99)
    assert (
        not point_in_mask(mask, 5.0, 2.0)
        and not point_in_mask(mask, -1, 2)
        and not point_in_mask(mask, 3, 10)
    )


def test_region_j_by_hand():
    a, b = box(10, 10, 0, 0, 4, 4), box(10, 10, 2, 2, 6, 6)  # 16 and 16 pixels, 4 shared
    assert mask_iou(a, b) == pytest.approx(4 / 28)
    assert mask_iou(a, a) == 1.0 and mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_boundary_f_by_hand():
    a = box(100, 100, 20, 20, 60, 60)
    assert boundary_f(a, a) == 1.0
    # a 100x100 frame: tolerance ceil(0.008 * 141.4) = 2 px. Shifted by 1 px: every boundary pixel is
    # within 2 px of the other's, F = 1. Shifted by 10 px: only the boundary pixels of the two shared
    # sides' overlapping runs match.
    assert boundary_f(a, np.roll(a, 1, axis=1)) == 1.0
    far = boundary_f(a, np.roll(a, 30, axis=0))
    assert 0.0 < far < 0.5
    assert boundary_f(a, np.zeros_like(a)) == 0.0 and boundary_f(np.zeros_like(a), np.zeros_like(a)) == 1.0
    with pytest.raises(ValueError, match="shape"):
        boundary_f(a, a[:50])


def test_boundary_f_counts_pixels_exactly_on_a_small_case():
    # seg2bmap marks every pixel that differs from its right, lower or lower-right neighbour: a single
    # pixel at (2, 2) gives {(1, 1), (1, 2), (2, 1), (2, 2)}; one at (2, 3) gives
    # {(1, 2), (1, 3), (2, 2), (2, 3)}.
    truth, pred = np.zeros((5, 5), bool), np.zeros((5, 5), bool)
    truth[2, 2], pred[2, 3] = True, True
    # no tolerance (radius 0): 2 of 4 boundary pixels shared each way, P = R = 1/2
    assert boundary_f(pred, truth, bound_th=0.0) == pytest.approx(0.5)
    # 1 px (a plus-shaped disk): every pixel has a neighbour on the other boundary, P = R = 1
    assert boundary_f(pred, truth, bound_th=1) == 1.0


def test_rle_round_trips_and_reads_uncompressed_counts():
    mask = box(6, 5, 1, 2, 4, 4)
    rle = encode_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [6, 5]
    assert (decode_rle(rle) == mask).all()
    # uncompressed, column-major: 6 rows x 2 columns of zeros, then column 2: 1 zero, 3 ones, 2 zeros...
    counts = [13, 3, 3, 3, 8]
    assert (decode_rle({"size": [6, 5], "counts": counts}) == mask).all()
    with pytest.raises(ValueError, match="cover"):
        decode_rle({"size": [6, 5], "counts": [1, 2]})
    with pytest.raises(ValueError, match="size"):
        decode_rle({"counts": [1]})
