"""AutoDQ aggregation over per-sample records, exactly as bytedance/tarsier's ``DREAMGPTMetric``.

- Per subset: mean per-sample recall R, mean per-sample precision P, and ``F1 = 2PR / (P + R)`` **of those
  means** (not the mean of per-sample F1).
- OVERALL: the unweighted mean of the subset R values and of the subset P values (macro over subsets),
  F1 recomputed from those two.
- Unscored samples are left out of numerator and denominator and counted: ``success`` / ``failed`` per
  subset and overall.
- Buckets (DREAM-1K): samples pooled over subsets by ``n_subjects`` (≤1, 2, 3, ≥4), ``n_shots`` (same)
  and ``n_events`` (≤3, 4–5, 6–7, ≥8); mean R and P per bucket and F1 of those.

Differences, stated: F1 is 0.0 when R + P = 0 (Tarsier divides by zero); a per-sample score of ``None``
(strict mode's empty fact list) is left out of that one mean; OVERALL averages the subsets that have a
value. The video-aware table counts a sample as ``success`` when both its text and its video pass were
scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["BUCKETS", "NO_CANDIDATE", "bucket_table", "f1_score", "score_table", "summarize"]

NO_CANDIDATE = "no candidate caption"
"""The ``error`` of a sample that has no candidate caption (counted as failed)."""

BUCKETS: dict[str, tuple[tuple[str, Callable[[int], bool]], ...]] = {
    "n_subjects": (
        ("<=1", lambda n: n <= 1),
        ("2", lambda n: n == 2),
        ("3", lambda n: n == 3),
        (">=4", lambda n: n >= 4),
    ),
    "n_shots": (
        ("<=1", lambda n: n <= 1),
        ("2", lambda n: n == 2),
        ("3", lambda n: n == 3),
        (">=4", lambda n: n >= 4),
    ),
    "n_events": (
        ("<=3", lambda n: n <= 3),
        ("4-5", lambda n: 4 <= n <= 5),
        ("6-7", lambda n: 6 <= n <= 7),
        (">=8", lambda n: n >= 8),
    ),
}
"""AutoDQ's bucket edges for DREAM-1K's annotation counts."""


def f1_score(recall: float | None, precision: float | None) -> float | None:
    """``2PR / (P + R)``; 0.0 when both are 0; ``None`` when either is missing."""
    if recall is None or precision is None:
        return None
    if recall + precision == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


def _row(recalls: Sequence[float | None], precisions: Sequence[float | None]) -> dict[str, Any]:
    recall, precision = _mean(recalls), _mean(precisions)
    return {"f1": f1_score(recall, precision), "recall": recall, "precision": precision}


def _scores(record: dict[str, Any], kind: str, mode: str) -> dict[str, float | None] | None:
    """The record's ``{"recall", "precision"}`` for ``kind`` in ``mode`` (text / video), if scored."""
    if record.get("status") != "scored" or not record.get("scores"):
        return None
    if mode == "video" and record.get("video_status") != "scored":
        return None
    by_kind = record["scores"].get(mode) or {}
    return by_kind.get(kind)


def score_table(
    records: Sequence[dict[str, Any]], kind: str = "events", mode: str = "text"
) -> dict[str, Any]:
    """Per-subset and OVERALL scores of ``kind`` facts.

    Args:
        records: ``samples.jsonl`` records, one per sample.
        kind: ``"events"`` or ``"objects"``.
        mode: ``"text"`` (AutoDQ) or ``"video"`` (video-aware precision).

    Returns:
        ``{"subsets": {name: {"f1", "recall", "precision", "success", "failed"}}, "overall": {...}}``,
        subsets sorted by name.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["subset"], []).append(record)
    subsets = {}
    for name in sorted(groups):
        scored = [s for s in (_scores(r, kind, mode) for r in groups[name]) if s is not None]
        row = _row([s["recall"] for s in scored], [s["precision"] for s in scored])
        subsets[name] = {**row, "success": len(scored), "failed": len(groups[name]) - len(scored)}
    overall = _row([r["recall"] for r in subsets.values()], [r["precision"] for r in subsets.values()])
    overall["success"] = sum(r["success"] for r in subsets.values())
    overall["failed"] = sum(r["failed"] for r in subsets.values())
    return {"subsets": subsets, "overall": overall}


def bucket_table(
    records: Sequence[dict[str, Any]], kind: str = "events", mode: str = "text"
) -> dict[str, Any]:
    """Scores pooled by DREAM-1K's ``n_subjects`` / ``n_shots`` / ``n_events`` buckets.

    Returns:
        ``{field: {bucket: {"f1", "recall", "precision", "count"}}}`` for each field some record has;
        ``{}`` when no record carries bucket fields.
    """
    out: dict[str, Any] = {}
    for field, edges in BUCKETS.items():
        members: dict[str, list[dict[str, float | None]]] = {label: [] for label, _ in edges}
        seen = False
        for record in records:
            value = (record.get("buckets") or {}).get(field)
            scores = _scores(record, kind, mode)
            if not isinstance(value, int) or isinstance(value, bool):
                continue
            seen = True
            if scores is None:
                continue
            for label, test in edges:
                if test(value):
                    members[label].append(scores)
                    break
        if seen:
            out[field] = {
                label: {
                    **_row([s["recall"] for s in group], [s["precision"] for s in group]),
                    "count": len(group),
                }
                for label, group in members.items()
            }
    return out


def summarize(
    records: Sequence[dict[str, Any]], kinds: Sequence[str], *, video: bool, consensus: int = 1
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds about scores: tables, buckets, counts, failures, consensus.

    Args:
        records: The latest record of every evaluated sample.
        kinds: Fact kinds scored (``("events",)`` or ``("events", "objects")``).
        video: Whether the video-aware pass ran.
        consensus: Asks per question (reported with the disagreement rate).
    """
    modes = ("text", "video") if video else ("text",)
    scores = {kind: {mode: score_table(records, kind, mode) for mode in modes} for kind in kinds}
    buckets = {mode: bucket_table(records, "events", mode) for mode in modes}
    unscored = [r for r in records if r.get("status") != "scored"]
    video_unscored = [
        r for r in records if r.get("status") == "scored" and r.get("video_status") == "unscored"
    ]
    verdicts = sum((r.get("consensus") or {}).get("verdicts", 0) for r in records)
    disagreements = sum((r.get("consensus") or {}).get("disagreements", 0) for r in records)
    return {
        "scores": scores,
        "buckets": buckets if any(buckets.values()) else {},
        "counts": {
            "evaluated": len(records),
            "scored": len(records) - len(unscored),
            "unscored": len(unscored),
            "no_candidate": sum(r.get("error") == NO_CANDIDATE for r in records),
            "video_scored": sum(r.get("video_status") == "scored" for r in records),
            "video_unscored": len(video_unscored),
        },
        "unscored": [{"id": r["id"], "subset": r["subset"], "reason": r.get("error")} for r in unscored],
        "video_unscored": [
            {"id": r["id"], "video": r.get("video"), "reason": r.get("video_error")} for r in video_unscored
        ],
        "consensus": {
            "k": consensus,
            "verdicts": verdicts,
            "disagreements": disagreements,
            "disagreement_rate": disagreements / verdicts if verdicts and consensus > 1 else None,
        },
    }
