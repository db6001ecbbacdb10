"""Benchmark samples: one query about one video with its ground truth, in typed fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidspan.eval.benchmark import Benchmark as _Benchmark

GtSpan = tuple[float, float]
"""A ground-truth ``(start, end)`` in seconds, kept exactly as annotated (it may be reversed, zero-length
or past the end of the video: benchmarks contain such spans and the official metrics score them as is)."""


@dataclass(frozen=True, slots=True)
class GroundingSample:
    """One grounding query.

    Attributes:
        id: Unique within the benchmark, stable across runs (used to resume and to join predictions).
        video: Video id as the annotation names it (no directory, extension optional).
        query: The query text, normalised the way the benchmark's official loader does.
        gt_spans: Ground-truth spans; TimeLens-style benchmarks have exactly one.
        subset: Subset name for per-subset metrics (``"charades"``, ``"activitynet"``, ...).
        duration: Video duration from the annotation, if it has one.
        qid: The benchmark's own query id, where it has one (QVHighlights).
        extra: Benchmark-specific ground truth (QVHighlights: ``relevant_clip_ids``, ``saliency_scores``).
    """

    id: str
    video: str
    query: str
    gt_spans: tuple[GtSpan, ...]
    subset: str
    duration: float | None = None
    qid: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (spans as lists)."""
        return {
            "id": self.id,
            "video": self.video,
            "query": self.query,
            "gt_spans": [list(s) for s in self.gt_spans],
            "subset": self.subset,
            "duration": self.duration,
            "qid": self.qid,
        }


Benchmark = _Benchmark
"""A loaded grounding benchmark: :class:`vidspan.eval.benchmark.Benchmark` of :class:`GroundingSample`."""
