"""Published temporal-grounding results, kept as data with their sources, for comparison with vidspan runs.

Every number here is copied from the source named in its row; none is estimated or derived. Metric values
are percentages (× 100), as published. A row holds only the metrics its source publishes.

Published TimeLens-Bench numbers come from TimeLens's official pipeline, whose inference script rounds every
predicted time to whole seconds; a vidspan run scored without rounding (``round_to_seconds: false``) is not
directly comparable with them (see ``grounding-eval.md`` §1.3).

Marlin-2B: its authors publish per-subset TimeLens-Bench rows for two checkpoints of its recipe (SFT
cp-11894 and GRPO cp-450) in NemoStation's post "Building Marlin-2B, Part 1", Appendix A (2026-05-26), on
the same refined TimeLens-Bench (3363 / 4500 / 1541 samples), two decimals as published. The released
(SimPO) checkpoint has no published TimeLens numbers; the model card's "+6.4 mIoU over Qwen2.5-VL-7B" is
a relative claim and not a row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

logger = logging.getLogger(__name__)

METRIC_NAMES: tuple[str, ...] = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")
"""The grounding metrics, in the order papers print them."""

PUBLISHED_BENCHMARKS: tuple[str, ...] = (
    "charades-timelens",
    "activitynet-timelens",
    "qvhighlights-timelens",
    "charades-sta",
)
"""Benchmarks with reference rows, in display order."""

TIMELENS_TABLE_1 = "TimeLens paper (arXiv 2512.14698) Table 1"
TIMELENS_PAPER = "TimeLens paper (arXiv 2512.14698)"
MARLIN_PART_1 = "NemoStation, \"Building Marlin-2B, Part 1\" (2026-05-26), Appendix A"

_PROPRIETARY_NOTE = "proprietary model; the paper's public code does not show how it was prompted or sampled"


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """One published result: a model's metrics on one benchmark, with where they were published.

    Attributes:
        model: Model name as the source prints it.
        benchmark: One of :data:`PUBLISHED_BENCHMARKS`.
        metrics: Published metrics by name (subset of :data:`METRIC_NAMES`), percentages. A metric the source
            does not publish is absent.
        source: Where the numbers were published (paper and table, or a URL).
        note: Caveats that matter when comparing (how the numbers were produced, what they exclude).
    """

    model: str
    benchmark: str
    metrics: Mapping[str, float] = field(hash=False)
    source: str
    note: str = ""

    def __post_init__(self):
        if self.benchmark not in PUBLISHED_BENCHMARKS:
            raise ValueError(
                f"Invalid benchmark: {self.benchmark!r}. It must be one of {', '.join(PUBLISHED_BENCHMARKS)}."
            )
        unknown = sorted(set(self.metrics) - set(METRIC_NAMES))
        if unknown:
            raise ValueError(
                f"Invalid metric names: {unknown}. They must be among {', '.join(METRIC_NAMES)}."
            )
        for name, value in self.metrics.items():
            if not 0.0 <= float(value) <= 100.0:
                raise ValueError(f"Invalid {name}: {value}. It must be a percentage in [0, 100].")
        if not self.source.strip():
            raise ValueError("Invalid source: ''. It must name where the numbers were published.")
        ordered = {name: float(self.metrics[name]) for name in METRIC_NAMES if name in self.metrics}
        object.__setattr__(self, "metrics", MappingProxyType(ordered))

    def metric(self, name: str) -> float | None:
        """The published value of ``name``, or None where the source does not publish it."""
        return self.metrics.get(name)


def _row(model: str, benchmark: str, values: tuple[float, ...], source: str, note: str = "") -> ReferenceRow:
    """A row from an ``R1@0.3 / R1@0.5 / R1@0.7 / mIoU`` quadruple, as the paper prints it."""
    return ReferenceRow(model, benchmark, dict(zip(METRIC_NAMES, values, strict=True)), source, note)


# fmt: off
# TimeLens Table 1: model -> (Charades-TimeLens, ActivityNet-TimeLens, QVHighlights-TimeLens), each
# R1@0.3 / R1@0.5 / R1@0.7 / mIoU.
_TABLE_1: tuple[tuple[str, tuple[float, ...], tuple[float, ...], tuple[float, ...], str], ...] = (
    ("GPT-4o", (60.6, 44.5, 23.5, 41.8), (55.2, 41.4, 25.8, 40.4), (69.0, 54.8, 38.5, 52.1),
     _PROPRIETARY_NOTE),
    ("GPT-5", (59.3, 42.0, 22.0, 40.5), (57.4, 44.9, 30.4, 42.9), (72.4, 60.4, 46.4, 56.8),
     _PROPRIETARY_NOTE),
    ("Gemini-2.0-Flash", (66.4, 53.5, 27.1, 46.7), (62.9, 54.0, 37.7, 49.3), (76.2, 66.4, 48.3, 60.8),
     _PROPRIETARY_NOTE),
    ("Gemini-2.5-Flash", (68.7, 56.1, 30.6, 48.6), (66.8, 57.5, 41.3, 52.5), (78.2, 69.4, 55.0, 64.3),
     _PROPRIETARY_NOTE),
    ("Gemini-2.5-Pro", (74.1, 61.1, 34.0, 52.8), (72.3, 64.2, 47.1, 58.1), (84.1, 75.9, 61.1, 70.4),
     _PROPRIETARY_NOTE),
    ("VideoChat-Flash-7B", (60.2, 37.9, 17.8, 39.7), (35.5, 21.8, 10.5, 24.8), (45.2, 30.6, 16.7, 32.7), ""),
    ("VideoChat-R1-7B", (51.9, 30.8, 11.7, 33.7), (35.0, 23.9, 11.3, 25.0), (29.3, 19.1, 9.4, 21.5), ""),
    ("Time-R1-7B", (57.9, 32.0, 16.9, 36.6), (44.8, 31.0, 19.0, 33.1), (65.8, 51.5, 36.1, 49.2), ""),
    ("TRACE", (37.2, 21.8, 9.6, 27.1), (43.4, 33.9, 22.0, 32.7), (49.7, 39.1, 28.1, 39.0), ""),
    ("TRACE-uni", (38.2, 22.9, 10.4, 28.1), (44.3, 35.1, 22.6, 33.6), (49.9, 40.0, 29.2, 39.8), ""),
    ("TimeSuite", (56.3, 35.5, 18.0, 38.1), (27.1, 17.5, 8.6, 19.8), (27.1, 16.9, 9.9, 21.7), ""),
    ("Grounded-VideoLLM", (43.3, 28.7, 13.5, 30.0), (39.2, 29.6, 19.5, 30.0), (43.7, 33.8, 22.5, 33.4), ""),
    ("MiMo-VL-7B", (57.9, 42.6, 20.5, 39.6), (49.3, 38.7, 22.4, 35.5), (57.1, 42.6, 28.4, 41.5), ""),
    ("Qwen2.5-VL-7B", (59.7, 37.8, 16.6, 39.3), (44.1, 31.0, 16.1, 31.4), (41.5, 27.8, 15.2, 31.6), ""),
    ("TimeLens-7B", (70.5, 55.6, 28.4, 48.8), (62.8, 51.0, 32.6, 46.2), (74.1, 62.7, 43.1, 56.0), ""),
    ("Qwen3-VL-235B-A22B", (71.7, 50.8, 24.5, 47.8), (69.0, 57.5, 39.3, 52.2), (79.6, 70.2, 54.5, 64.6), ""),
    ("Qwen3-VL-8B", (69.2, 53.4, 27.5, 48.3), (62.1, 51.2, 34.4, 46.8), (74.2, 64.6, 49.3, 59.4), ""),
    ("TimeLens-8B", (76.6, 63.0, 35.2, 55.2), (68.9, 58.4, 40.6, 53.2), (80.2, 71.6, 55.5, 65.5), ""),
)
# fmt: on


def _build_rows() -> tuple[ReferenceRow, ...]:
    rows: list[ReferenceRow] = []
    timelens_subsets = PUBLISHED_BENCHMARKS[:3]
    for model, charades, activitynet, qvhighlights, note in _TABLE_1:
        for benchmark, values in zip(timelens_subsets, (charades, activitynet, qvhighlights), strict=True):
            rows.append(_row(model, benchmark, values, TIMELENS_TABLE_1, note))
    tl3b = (
        ("charades-timelens", (63.5, 48.1, 23.9, 43.3)),
        ("activitynet-timelens", (56.6, 44.9, 27.4, 41.2)),
        ("qvhighlights-timelens", (71.9, 58.9, 37.8, 52.9)),
    )
    for benchmark, values in tl3b:
        rows.append(
            _row(
                "TimeLens-3B",
                benchmark,
                values,
                f"{TIMELENS_PAPER}, TimeLens-3B (not in Table 1)",
                "Qwen2.5-VL-3B trained with the TimeLens recipe",
            )
        )
    marlin = (  # Charades-TimeLens, ActivityNet-TimeLens, QVHighlights-TimeLens
        ("Marlin-2B GRPO (cp-450)", (70.71, 55.63, 30.60, 50.05), (59.33, 49.60, 33.38, 45.88),
         (69.05, 58.21, 44.06, 55.50)),
        ("Marlin-2B SFT (cp-11894)", (65.24, 50.25, 27.00, 45.73), (54.76, 45.27, 29.84, 42.10),
         (65.41, 54.57, 41.79, 52.46)),
    )  # fmt: skip
    for model, *subsets in marlin:
        for benchmark, values in zip(timelens_subsets, subsets, strict=True):
            rows.append(_row(model, benchmark, values, MARLIN_PART_1, "evaluated by Marlin-2B's authors"))
    sta_source = f"{TIMELENS_PAPER}, results on the original Charades-STA"
    rows.append(_row("TimeLens-7B", "charades-sta", (70.7, 39.8, 14.5, 42.3), sta_source))
    rows.append(
        _row(
            "Qwen2.5-VL-7B",
            "charades-sta",
            (59.4, 38.2, 18.1, 43.6),
            sta_source,
            "the paper marks this mIoU as taken from the Qwen2.5-VL report",
        )
    )
    return tuple(rows)


_ROWS = _build_rows()


def reference_rows(benchmark: str | None = None) -> list[ReferenceRow]:
    """Published reference rows, all of them or those of one benchmark (in publication order).

    Example:
        >>> [r.metrics["mIoU"] for r in reference_rows("charades-timelens") if r.model == "TimeLens-8B"]
        [55.2]
    """
    if benchmark is None:
        return list(_ROWS)
    if benchmark not in PUBLISHED_BENCHMARKS:
        names = ", ".join(PUBLISHED_BENCHMARKS)
        raise ValueError(f"Invalid benchmark: {benchmark!r}. It must be one of {names}.")
    return [row for row in _ROWS if row.benchmark == benchmark]
