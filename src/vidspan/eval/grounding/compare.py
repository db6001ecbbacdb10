"""Comparing runs with each other and with published reference rows: one table and a leaderboard chart."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidspan.eval.grounding.published import METRIC_NAMES, PUBLISHED_BENCHMARKS, reference_rows
from vidspan.eval.grounding.report import (
    _ROUNDING_NOTE,
    POOLED,
    RunSummary,
    _display,
    _failure_percent,
    _fmt,
    _matplotlib_figure,
    _save_figure,
    load_run,
)

logger = logging.getLogger(__name__)



def _column_for(run_benchmark: str, subset: str) -> str:
    """The reference benchmark a run's subset corresponds to, or the subset name itself if none does."""
    s, b = subset.lower(), run_benchmark.lower()
    if s in PUBLISHED_BENCHMARKS:
        return s
    if s == POOLED or (b in PUBLISHED_BENCHMARKS and b.startswith(s + "-")):
        return b
    if f"{s}-timelens" in PUBLISHED_BENCHMARKS and "timelens" in b:
        return f"{s}-timelens"
    return subset


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One row of a comparison: a vidspan run (lenient numbers) or a published result."""

    label: str
    kind: str  # "run" or "published"
    cells: Mapping[str, Mapping[str, float]] = field(hash=False)  # column -> metric -> value
    strict_miou: Mapping[str, float] = field(default_factory=dict, hash=False)  # column -> value (runs)
    failure_percent: tuple[float | None, float | None] = (None, None)  # lenient, strict (runs, "all")
    round_to_seconds: bool | None = None
    source: str = ""
    note: str = ""

    def mean_miou(self, columns: Sequence[str]) -> float | None:
        """Mean mIoU over those of ``columns`` this row has, or None if it has none."""
        values = [self.cells[c]["mIoU"] for c in columns if "mIoU" in self.cells.get(c, {})]
        return sum(values) / len(values) if values else None

    def covers(self, columns: Sequence[str]) -> bool:
        return all("mIoU" in self.cells.get(c, {}) for c in columns)


def _run_row(run: RunSummary) -> ComparisonRow:
    cells: dict[str, dict[str, float]] = {}
    strict: dict[str, float] = {}
    subsets = [s for s in run.subsets if s != POOLED] or [POOLED]
    for subset in subsets:
        column = _column_for(run.benchmark, subset)
        block = run.scores("lenient", subset) or {}
        cells[column] = {name: float(block[name]) for name in METRIC_NAMES if name in block}
        strict_block = run.scores("strict", subset) or {}
        if "mIoU" in strict_block:
            strict[column] = float(strict_block["mIoU"])
    pooled = POOLED if POOLED in run.subsets else subsets[0]
    failures = (
        _failure_percent(run.scores("lenient", pooled)),
        _failure_percent(run.scores("strict", pooled)),
    )
    rounding = "rounded" if run.round_to_seconds else "unrounded"
    return ComparisonRow(
        label=f"{run.model} (`{run.name}`, {rounding})",
        kind="run",
        cells=cells,
        strict_miou=strict,
        failure_percent=failures,
        round_to_seconds=run.round_to_seconds,
        source=str(run.run_dir),
    )


def _reference_table_rows(columns: Sequence[str]) -> list[ComparisonRow]:
    by_model: dict[tuple[str, str, str], dict[str, Mapping[str, float]]] = {}
    for column in columns:
        if column not in PUBLISHED_BENCHMARKS:
            continue
        for ref in reference_rows(column):
            by_model.setdefault((ref.model, ref.source, ref.note), {})[column] = ref.metrics
    return [
        ComparisonRow(label=model, kind="published", cells=cells, source=source, note=note)
        for (model, source, note), cells in by_model.items()
    ]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs and published rows on the same benchmark subsets, sorted by mean mIoU (best first)."""

    columns: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]

    @property
    def markdown(self) -> str:
        return _comparison_markdown(self)

    def plot(self, out_png: str | Path, *, subset: str | None = None) -> Path:
        """A horizontal leaderboard of mIoU on one column (``subset``) or the mean over all columns.

        Only rows with a value for every column plotted appear. Runs are highlighted.

        Raises:
            ValueError: ``subset`` is not one of the comparison's columns.
            MissingDependencyError: matplotlib is not installed.
        """
        return _comparison_plot(self, out_png, subset)


def compare(
    run_dirs: Iterable[str | Path], *, include_reference: bool = True, benchmark: str | None = None
) -> Comparison:
    """Compare runs with each other and with published results on the same benchmark subsets.

    Columns are the runs' subsets (mapped to reference benchmark names where they match one); with no runs
    they are the three TimeLens-Bench subsets. ``benchmark`` keeps a single column (e.g.
    ``"charades-timelens"``). Rows are sorted by mean mIoU over the columns, best first.

    Raises:
        RunFormatError: A run directory cannot be read.
        ValueError: ``benchmark`` is neither a reference benchmark nor a column of the runs.
    """
    runs = [load_run(d) for d in run_dirs]
    run_rows = [_run_row(r) for r in runs]
    if benchmark is not None:
        known = list(dict.fromkeys([*PUBLISHED_BENCHMARKS, *(c for row in run_rows for c in row.cells)]))
        if benchmark not in known:
            raise ValueError(f"Invalid benchmark: {benchmark!r}. It must be one of {', '.join(known)}.")
        columns: list[str] = [benchmark]
    else:
        columns = list(dict.fromkeys(c for row in run_rows for c in row.cells))
        columns = columns or list(PUBLISHED_BENCHMARKS[:3])
        order = {name: i for i, name in enumerate(PUBLISHED_BENCHMARKS)}
        columns.sort(key=lambda c: order.get(c, len(order)))
    rows = run_rows + (_reference_table_rows(columns) if include_reference else [])

    def key(row: ComparisonRow) -> tuple[bool, float]:
        mean = row.mean_miou(columns)
        return (mean is None, -(mean or 0.0))

    return Comparison(columns=tuple(columns), rows=tuple(sorted(rows, key=key)))


def _comparison_markdown(comparison: Comparison) -> str:
    columns = comparison.columns
    many = len(columns) > 1
    has_runs = any(r.kind == "run" for r in comparison.rows)
    head = ["#", "model", "kind", *(_display(c) for c in columns)]
    align = ["---:", "---", "---", *("---" for _ in columns)]
    if many:
        head.append("mean mIoU")
        align.append("---:")
    if has_runs:
        head += ["strict mIoU", "unparsed % (lenient / strict)"]
        align += ["---:", "---:"]
    footnotes: dict[tuple[str, str], int] = {}
    partial = False
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for rank, row in enumerate(comparison.rows, 1):
        cells = []
        for c in columns:
            values = row.cells.get(c)
            show = _fmt if row.kind == "run" else _as_published
            cells.append(" / ".join(show(values.get(n)) for n in METRIC_NAMES) if values else "–")
        if row.kind == "run":
            name, kind = f"**{row.label}**", "vidspan run"
        else:
            number = footnotes.setdefault((row.source, row.note), len(footnotes) + 1)
            name, kind = row.label, f"published [{number}]"
        out = [str(rank), name, kind, *cells]
        if many:
            mean = row.mean_miou(columns)
            mark = "" if row.covers(columns) or mean is None else " †"
            partial = partial or bool(mark)
            out.append(_fmt(mean) + mark)
        if has_runs:
            strict = [row.strict_miou[c] for c in columns if c in row.strict_miou]
            lenient_fail, strict_fail = row.failure_percent
            out.append(_fmt(sum(strict) / len(strict)) if strict else "–")
            out.append("–" if row.kind != "run" else f"{_fmt(lenient_fail)} / {_fmt(strict_fail)}")
        lines.append("| " + " | ".join(out) + " |")
    shown = ", ".join(_display(c) for c in columns)
    intro = [
        f"# Grounding comparison: {shown}",
        "",
        "Each cell: R1@0.3 / R1@0.5 / R1@0.7 / mIoU (%). vidspan runs show lenient parsing, with strict mIoU"
        + (" (mean over the columns)" if many else "")
        + " and the parse-failure rates of all samples as extra columns. "
        + ("Sorted by mean mIoU over the columns, best first." if many else "Sorted by mIoU, best first."),
        "",
    ]
    notes = []
    if partial:
        notes.append("† mean over the columns this row has results for.")
    if any(r.kind == "run" and not r.round_to_seconds for r in comparison.rows) and footnotes:
        notes.append(_ROUNDING_NOTE)
    for (source, note), number in footnotes.items():
        notes.append(f"[{number}] Published: {source}." + (f" Note: {note}." if note else ""))
    return "\n".join(intro + lines) + "".join(f"\n\n{note}" for note in notes) + "\n"


def _comparison_plot(comparison: Comparison, out_png: str | Path, subset: str | None) -> Path:
    if subset is not None and subset not in comparison.columns:
        choices = ", ".join(comparison.columns)
        raise ValueError(
            f"Invalid subset: {subset!r}. It must be one of the comparison's columns: {choices}."
        )
    figure_class, canvas_class = _matplotlib_figure()
    columns = [subset] if subset else list(comparison.columns)
    rows = [r for r in comparison.rows if r.covers(columns)]
    rows.sort(key=lambda r: r.mean_miou(columns) or 0.0)  # ascending: best ends up at the top
    values = [r.mean_miou(columns) or 0.0 for r in rows]
    fig = figure_class(figsize=(8.5, max(2.5, 0.32 * len(rows) + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    colors = ["#DD8452" if r.kind == "run" else "#A0A8B8" for r in rows]
    positions = list(range(len(rows)))
    ax.barh(positions, values, color=colors, height=0.7)
    labels = [r.label.replace("`", "") for r in rows]
    ax.set_yticks(positions, labels, fontsize=8.5)
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if row.kind == "run":
            tick.set_fontweight("bold")
    for y, value in zip(positions, values, strict=True):
        ax.text(value + 0.6, y, f"{value:.1f}", va="center", fontsize=8)
    ax.set_xlim(0, max([*values, 1.0]) * 1.12)
    ax.xaxis.grid(True, alpha=0.3)
    ax.set_axisbelow(True)
    what = _display(columns[0]) if len(columns) == 1 else "mean over " + ", ".join(map(_display, columns))
    ax.set_xlabel(f"mIoU (%), {what}")
    ax.set_title("Grounding leaderboard (orange: vidspan runs, lenient; grey: published)", fontsize=10)
    return _save_figure(fig, canvas_class, out_png)


def _as_published(value: float | None) -> str:
    """A published number with the precision it was published with (one decimal, or two where given)."""
    if value is None:
        return "–"
    return f"{value:.1f}" if abs(value * 10 - round(value * 10)) < 1e-9 else f"{value:.2f}"
