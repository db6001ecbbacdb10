"""Reports on grounding runs: Markdown tables, charts, and comparison with published results.

A run directory (written by the grounding runner) holds ``header.json``, ``samples.jsonl`` and
``metrics.json``. Reports read ``header.json`` and ``metrics.json``; metric values there are already
percentages.

Charts need matplotlib (``pip install 'vidspan[eval]'``); it is imported only when a chart is drawn, and
every chart is drawn with the Agg canvas on a standalone ``Figure`` (no pyplot, no global backend change).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidspan.errors import MissingDependencyError, RunFormatError
from vidspan.eval.grounding.published import METRIC_NAMES

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("lenient", "strict")
POOLED = "all"
_REQUIRED_KEYS = (*METRIC_NAMES, "num_samples")
_DISPLAY = {
    "charades-timelens": "Charades-TimeLens",
    "activitynet-timelens": "ActivityNet-TimeLens",
    "qvhighlights-timelens": "QVHighlights-TimeLens",
    "charades-sta": "Charades-STA",
}
_SAMPLING_WORDS = ("fps", "frame", "pixel")
_ROUNDING_NOTE = (
    "TimeLens's official inference rounds predictions to whole seconds, so published TimeLens-Bench numbers "
    "are rounded; runs scored without rounding are not directly comparable with them."
)


# --- loading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A grounding run as reports see it: its header and its metrics (percentages)."""

    run_dir: Path
    header: Mapping[str, Any] = field(hash=False, repr=False)
    metrics: Mapping[str, Any] = field(hash=False, repr=False)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def model(self) -> str:
        return str(self.metrics.get("model") or self.header.get("model") or "?")

    @property
    def benchmark(self) -> str:
        return str(self.metrics.get("benchmark") or self.header.get("benchmark") or "?")

    @property
    def round_to_seconds(self) -> bool:
        return bool(self.metrics.get("round_to_seconds", self.header.get("round_to_seconds", False)))

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.header.get("settings") or {}

    @property
    def versions(self) -> Mapping[str, Any]:
        return self.header.get("versions") or {}

    @property
    def missing_videos(self) -> list[str]:
        return list(self.metrics.get("missing_videos") or [])

    @property
    def num_missing_videos(self) -> int:
        return int(self.metrics.get("num_missing_videos", len(self.missing_videos)))

    @property
    def subsets(self) -> tuple[str, ...]:
        """Subset names in the order metrics.json lists them, the pooled ``"all"`` last."""
        names = [s for s in self.metrics["lenient"] if s != POOLED]
        return (*names, POOLED) if POOLED in self.metrics["lenient"] else tuple(names)

    def scores(self, mode: str, subset: str) -> Mapping[str, Any] | None:
        """The metrics block of one parse mode and subset, or None if the run has no such subset."""
        return self.metrics[mode].get(subset)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise RunFormatError(path, f"the file is missing; a grounding run directory has {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunFormatError(
            path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFormatError(path, f"cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise RunFormatError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def _check_metrics(path: Path, metrics: dict[str, Any]) -> None:
    for mode in MODES:
        blocks = metrics.get(mode)
        if not isinstance(blocks, dict) or not blocks:
            raise RunFormatError(path, f"no {mode!r} metrics (expected an object of subset -> metrics)")
        for subset, block in blocks.items():
            if not isinstance(block, dict):
                raise RunFormatError(path, f"{mode}.{subset} is not an object")
            for key in _REQUIRED_KEYS:
                value = block.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise RunFormatError(path, f"{mode}.{subset}.{key} is missing or not a number")


def load_run(run_dir: str | Path) -> RunSummary:
    """Read a grounding run directory's ``header.json`` and ``metrics.json``.

    Raises:
        RunFormatError: The directory or a file is missing, is not valid JSON, or lacks required fields.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFormatError(run_dir, "no such directory")
    header_path, metrics_path = run_dir / "header.json", run_dir / "metrics.json"
    header = _read_json(header_path, "header.json, samples.jsonl and metrics.json")
    kind = header.get("kind")
    if kind != "grounding":
        raise RunFormatError(header_path, f"kind is {kind!r}; reports support 'grounding' runs")
    if header.get("format_version") != 1:
        raise RunFormatError(header_path, f"unsupported format_version {header.get('format_version')!r}")
    unfinished = " (the run has no finished_at: it may not have been scored yet)"
    metrics = _read_json(
        metrics_path, "metrics.json once scored" + ("" if header.get("finished_at") else unfinished)
    )
    _check_metrics(metrics_path, metrics)
    return RunSummary(run_dir=run_dir, header=header, metrics=metrics)


# --- formatting helpers -----------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _failure_percent(block: Mapping[str, Any] | None) -> float | None:
    """Parse-failure percentage, from the counts where present (they define it), else the stored rate."""
    if not block:
        return None
    samples, unparsed = block.get("num_samples"), block.get("num_unparsed")
    if isinstance(samples, int | float) and isinstance(unparsed, int | float) and samples > 0:
        return 100.0 * unparsed / samples
    rate = block.get("parse_failure_rate")
    return float(rate) if isinstance(rate, int | float) else None


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _display(column: str) -> str:
    return _DISPLAY.get(column, column)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the same directory, then rename, so no half-written file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _matplotlib_figure():
    """matplotlib's Figure and Agg canvas, or MissingDependencyError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "Charts need matplotlib. Install with: pip install 'vidspan[eval]'"
        ) from exc
    return Figure, FigureCanvasAgg


def _save_figure(fig, canvas_class, out_png: str | Path) -> Path:
    canvas_class(fig)
    return _write_atomically(Path(out_png), lambda tmp: fig.savefig(tmp, format="png", dpi=110))


# --- one run ----------------------------------------------------------------------------------------------


def _settings_lines(run: RunSummary) -> list[str]:
    settings = run.settings
    sampling = {k: v for k, v in settings.items() if any(w in k.lower() for w in _SAMPLING_WORDS)}
    others = {k: v for k, v in settings.items() if k not in sampling}
    lines = []
    if sampling:
        lines.append("- Sampling: " + ", ".join(f"`{k}={_short(v)}`" for k, v in sampling.items()))
    if others:
        lines.append("- Other settings: " + ", ".join(f"`{k}={_short(v)}`" for k, v in others.items()))
    model_settings = run.header.get("model_settings") or {}
    if model_settings:
        lines.append(
            "- Model settings: " + ", ".join(f"`{k}={_short(v)}`" for k, v in model_settings.items())
        )
    if run.versions:
        lines.append("- Versions: " + ", ".join(f"{k} {_short(v, 40)}" for k, v in run.versions.items()))
    return lines


def _mode_table(run: RunSummary, mode: str) -> list[str]:
    lines = [
        "| subset | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | samples | unparsed | parse failure % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for subset in run.subsets:
        block = run.scores(mode, subset) or {}
        values = " | ".join(_fmt(block.get(name)) for name in METRIC_NAMES)
        unparsed = block.get("num_unparsed")
        label = f"**{subset}**" if subset == POOLED else subset
        lines.append(
            f"| {label} | {values} | {int(block.get('num_samples', 0))} | "
            f"{'–' if unparsed is None else int(unparsed)} | {_fmt(_failure_percent(block))} |"
        )
    return lines


def run_markdown(run: RunSummary) -> str:
    """A Markdown report of one run: its settings, then a lenient and a strict table (subsets and "all")."""
    header = run.header
    rounded = "yes" if run.round_to_seconds else "no"
    lines = [
        f"# Grounding run: {run.model} on {run.benchmark}",
        "",
        f"- Run directory: `{run.name}`",
        f"- Model: `{run.model}`",
        f"- Benchmark: `{run.benchmark}`",
        f"- Annotations: `{header.get('annotations', '?')}`; videos: `{header.get('videos', '?')}`",
        f"- Predictions rounded to whole seconds: **{rounded}**",
        *_settings_lines(run),
        f"- Started: {header.get('started_at') or '?'}; "
        f"finished: {header.get('finished_at') or 'not finished'}",
    ]
    missing = run.num_missing_videos
    if missing:
        shown = ", ".join(f"`{v}`" for v in run.missing_videos[:10])
        more = f" and {missing - 10} more" if missing > 10 else ""
        lines.append(
            f"- Missing videos: **{missing}** ({shown}{more}); their samples are in the counts below"
        )
    else:
        lines.append("- Missing videos: 0")
    for mode in MODES:
        lines += ["", f"## {mode.capitalize()} parsing", "", *_mode_table(run, mode)]
    lines += [
        "",
        "Metrics are percentages over all samples of a subset; unparsed answers score IoU 0 and stay in the "
        "denominator. Rows are per subset; **all** pools every sample.",
    ]
    if not run.round_to_seconds:
        lines += ["", _ROUNDING_NOTE]
    return "\n".join(lines) + "\n"


def plot_run(run: RunSummary, out_png: str | Path) -> Path:
    """A grouped bar chart of one run: subsets × metrics, lenient solid and strict hatched. Returns the path.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    figure_class, canvas_class = _matplotlib_figure()
    from matplotlib.patches import Patch

    groups = run.subsets
    colors = ("#4C72B0", "#55A868", "#C44E52", "#8172B2")
    bar = 0.8 / (2 * len(METRIC_NAMES))
    fig = figure_class(figsize=(max(6.5, 2.2 * len(groups) + 2.5), 4.8), layout="constrained")
    ax = fig.add_subplot()
    for m, name in enumerate(METRIC_NAMES):
        for k, mode in enumerate(MODES):
            offset = -0.4 + bar * (2 * m + k) + bar / 2
            values = [float((run.scores(mode, g) or {}).get(name, 0.0)) for g in groups]
            ax.bar(
                [i + offset for i in range(len(groups))],
                values,
                bar,
                color=colors[m],
                alpha=1.0 if mode == "lenient" else 0.45,
                hatch=None if mode == "lenient" else "///",
                edgecolor=colors[m],
                linewidth=0.6,
            )
    labels = []
    for g in groups:
        n = int((run.scores("lenient", g) or {}).get("num_samples", 0))
        labels.append(f"{g}\n(n={n})")
    ax.set_xticks(range(len(groups)), labels)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (%)")
    ax.yaxis.grid(True, alpha=0.3)
    ax.set_axisbelow(True)
    rounding = "rounded to whole seconds" if run.round_to_seconds else "not rounded"
    ax.set_title(f"{run.model} · {run.benchmark} · {rounding}", fontsize=11)
    handles = [Patch(color=c, label=n) for c, n in zip(colors, METRIC_NAMES, strict=True)]
    handles += [
        Patch(facecolor="#888888", edgecolor="#888888", label="lenient"),
        Patch(facecolor="#cccccc", edgecolor="#888888", hatch="///", label="strict"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return _save_figure(fig, canvas_class, out_png)


def write_reports(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.png`` into a run directory; returns their paths.

    The Markdown report is written first, so it exists even where the chart fails for lack of matplotlib.
    """
    run = load_run(run_dir)
    md_path = _write_atomically(run.run_dir / "report.md", lambda tmp: tmp.write_text(run_markdown(run)))
    png_path = plot_run(run, run.run_dir / "report.png")
    logger.info("Wrote %s and %s", md_path, png_path)
    return md_path, png_path
