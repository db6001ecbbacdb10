"""TimeLens' sample selection: keep the hard examples, by a Gaussian over an offline pass's IoU, per bucket.

An offline inference pass gives each training example an IoU (from a grounding run's records). Each example
is kept with weight ``exp(-(iou - mean)^2 / (2 std^2))`` (TimeLens: mean 0.05, std 0.2, i.e. mostly the
ones the model gets wrong), drawn without replacement, balanced over duration buckets (30 s wide by default).
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidspan.train.data import TrainExample

__all__ = ["gaussian_weight", "select_from_run", "select_hard"]


def gaussian_weight(iou: float, mean: float = 0.05, std: float = 0.2) -> float:
    """The selection weight of an example with this IoU."""
    return math.exp(-((iou - mean) ** 2) / (2 * std**2))


def select_hard(
    examples: Sequence[TrainExample],
    ious: Mapping[str, float],
    count: int,
    *,
    mean: float = 0.05,
    std: float = 0.2,
    bucket_seconds: float = 30.0,
    seed: int = 0,
) -> list[TrainExample]:
    """Up to ``count`` examples, drawn by :func:`gaussian_weight` and spread evenly over duration buckets.

    Examples without an IoU in ``ious`` (not in the offline pass) are not drawn.

    Raises:
        ValueError: ``count`` < 1, or ``std`` or ``bucket_seconds`` not > 0.
    """
    if count < 1:
        raise ValueError(f"Invalid count: {count}. It must be >= 1.")
    if not (std > 0 and bucket_seconds > 0):
        raise ValueError(f"Invalid std / bucket_seconds: {std}, {bucket_seconds}. Both must be > 0.")
    rng = random.Random(seed)
    buckets: dict[int, list[tuple[float, TrainExample]]] = {}
    for example in examples:
        if example.id in ious:
            key = int(example.duration // bucket_seconds)
            buckets.setdefault(key, []).append((gaussian_weight(ious[example.id], mean, std), example))
    # weighted sampling without replacement (Efraimidis-Spirakis keys), then round-robin over buckets
    ranked = {
        key: [e for _, e in sorted(((rng.random() ** (1 / w) if w > 0 else 0.0, e) for w, e in items),
                                   key=lambda pair: -pair[0])]
        for key, items in sorted(buckets.items())
    }  # fmt: skip
    chosen: list[TrainExample] = []
    while len(chosen) < count and any(ranked.values()):
        for key in list(ranked):
            if ranked[key] and len(chosen) < count:
                chosen.append(ranked[key].pop(0))
    return chosen


def select_from_run(
    data: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    count: int,
    **options: Any,
) -> int:
    """Keep ``count`` rows of the TRL JSONL ``data``, chosen by :func:`select_hard` over the IoUs that a
    grounding run (``vidspan eval grounding`` of the model on the same samples) recorded; returns how many.

    Rows are matched to the run's records by ``id``; rows the run has no IoU for are not drawn.
    """
    from vidspan.eval.rundir import read_records

    records = read_records(Path(run_dir) / "samples.jsonl")
    ious = {i: float(r["iou"]) for i, r in records.items() if isinstance(r.get("iou"), int | float)}
    rows = [json.loads(line) for line in Path(data).read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {str(r["id"]): r for r in rows}
    examples = [
        TrainExample(id=str(r["id"]), video=r["video"], task=r.get("task", "find"), prompt="", answer="",
                     duration=float(r["duration"]), start=r.get("start"), end=r.get("end"))
        for r in rows
    ]  # fmt: skip
    chosen = select_hard(examples, ious, count, **options)
    with Path(out_path).open("w", encoding="utf-8") as out:
        for example in chosen:
            out.write(json.dumps(by_id[example.id], ensure_ascii=False) + "\n")
    return len(chosen)
