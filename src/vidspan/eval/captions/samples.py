"""Dense-caption benchmark samples: a video, its reference caption and (optionally) reference facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidspan.eval.benchmark import Benchmark


@dataclass(frozen=True, slots=True)
class CaptionSample:
    """One reference caption.

    Attributes:
        id: Unique and stable within the benchmark (DREAM-1K: ``str(idx)``).
        video: Video id or file name as the annotation gives it.
        reference: The reference caption.
        subset: Subset for per-subset scores (DREAM-1K: ``movie_animation``, ...; CaReBench: ``overall``).
        events: Reference atomic events, or ``None`` when the annotation has none (then they are extracted
            from the reference by the judge, as AutoDQ does). An empty tuple is a real, empty list.
        objects: Reference object facts (CaReBench), or ``None``.
        duration: Video duration from the annotation.
        extra: Other annotation fields (``n_subjects``, ``n_shots``, ``n_events``, categories...).
    """

    id: str
    video: str
    reference: str
    subset: str
    events: tuple[str, ...] | None = None
    objects: tuple[str, ...] | None = None
    duration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


CaptionBenchmark = Benchmark
"""A loaded caption benchmark: :class:`vidspan.eval.benchmark.Benchmark` of :class:`CaptionSample`."""
