"""Masks: COCO run-length decoding, point-in-mask, and the DAVIS region (J) and boundary (F) measures.

J is the IoU of two binary masks; F is the boundary F-measure of DAVIS (``db_eval_boundary``): each
mask's one-pixel boundary, matched to the other's within a tolerance of ``bound_th`` times the image
diagonal (``bound_th = 0.008``, as lmms-eval's SAM2 pipeline passes it), precision and recall of the
boundary pixels, and their harmonic mean. ``J&F = (J + F) / 2``. Masks are numpy ``bool`` arrays of shape
``(height, width)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["boundary_f", "decode_rle", "encode_rle", "mask_iou", "point_in_mask"]

BOUND_TH = 0.008


def decode_rle(rle: Mapping[str, Any]) -> Any:
    """A COCO RLE (``{"size": [h, w], "counts": str | list}``) → a ``bool`` array of shape ``(h, w)``."""
    import numpy as np

    size = rle.get("size")
    counts = rle.get("counts")
    if not (isinstance(size, (list, tuple)) and len(size) == 2) or counts is None:
        raise ValueError(f"Invalid RLE: {str(dict(rle))[:80]}. It needs 'size' [h, w] and 'counts'.")
    height, width = int(size[0]), int(size[1])
    if isinstance(counts, list):  # uncompressed: run lengths, column-major, starting with zeros
        flat = np.zeros(height * width, dtype=bool)
        at, value = 0, False
        for run in counts:
            flat[at : at + int(run)] = value
            at += int(run)
            value = not value
        if at != height * width:
            raise ValueError(f"Invalid RLE: its runs cover {at} pixels, not {height} x {width}.")
        return flat.reshape((width, height)).T
    mask_utils = _pycocotools()
    encoded = {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
    return mask_utils.decode(encoded).astype(bool)


def encode_rle(mask: Any) -> dict[str, Any]:
    """A ``bool`` array → a compressed COCO RLE with ``counts`` as a string (JSON-ready)."""
    import numpy as np

    mask_utils = _pycocotools()
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _pycocotools() -> Any:
    try:
        from pycocotools import mask as mask_utils
    except ImportError as exc:  # pragma: no cover - the points extra installs it
        from vidspan.errors import MissingDependencyError

        hint = "Compressed RLE masks need pycocotools: pip install 'vidspan[points]'"
        raise MissingDependencyError(hint) from exc
    return mask_utils


def point_in_mask(mask: Any, x: float, y: float) -> bool:
    """Whether pixel position ``(x, y)`` lies on the mask (the pixel it falls in; outside the frame: no)."""
    height, width = mask.shape[:2]
    col, row = math.floor(x), math.floor(y)
    if not (0 <= col < width and 0 <= row < height):
        return False
    return bool(mask[row, col])


def mask_iou(a: Any, b: Any) -> float:
    """J: intersection over union of two masks; two empty masks agree perfectly (1.0), as in DAVIS."""
    import numpy as np

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def _boundary(mask: Any) -> Any:
    """The one-pixel boundary map of DAVIS ``seg2bmap`` at the mask's own resolution: every pixel that
    differs from its right, lower or lower-right neighbour (the last row and column against their own)."""
    import numpy as np

    seg = np.asarray(mask, dtype=bool)
    east, south, southeast = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    southeast[:-1, :-1] = seg[1:, 1:]
    edge = (seg ^ east) | (seg ^ south) | (seg ^ southeast)
    edge[-1, :] = seg[-1, :] ^ east[-1, :]
    edge[:, -1] = seg[:, -1] ^ south[:, -1]
    edge[-1, -1] = False
    return edge


def boundary_f(pred: Any, truth: Any, bound_th: float = BOUND_TH) -> float:
    """F: the boundary F-measure of ``pred`` against ``truth`` (DAVIS ``db_eval_boundary``).

    The tolerance is ``ceil(bound_th * diagonal)`` pixels when ``bound_th < 1`` (else ``bound_th`` pixels);
    a boundary pixel counts as matched when the other mask's boundary, dilated by a disk of that radius,
    covers it. Both boundaries empty: 1.0; one empty: 0.0.
    """
    import numpy as np
    from scipy.ndimage import binary_dilation

    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Masks differ in shape: {pred.shape} and {truth.shape}.")
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*pred.shape))
    pred_edge, truth_edge = _boundary(pred), _boundary(truth)
    n_pred, n_truth = int(pred_edge.sum()), int(truth_edge.sum())
    if n_pred == 0 and n_truth == 0:
        return 1.0
    if n_pred == 0 or n_truth == 0:
        return 0.0
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = xx**2 + yy**2 <= r**2
    pred_dil = binary_dilation(pred_edge, structure=disk)
    truth_dil = binary_dilation(truth_edge, structure=disk)
    precision = float((pred_edge & truth_dil).sum() / n_pred)
    recall = float((truth_edge & pred_dil).sum() / n_truth)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
