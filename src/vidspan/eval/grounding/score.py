"""Scoring prediction files written by other tools (TimeLens, TimeChat, QVHighlights) or by vidspan."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vidspan.eval.grounding import metrics as grounding_metrics
from vidspan.eval.grounding.predictions import (
    detect_prediction_format,
    load_predictions,
    read_qvhighlights_submission,
)
from vidspan.eval.grounding.qvhighlights import eval_qvhighlights, load_jsonl
from vidspan.eval.grounding.run import score_records
from vidspan.eval.grounding.samples import Benchmark
from vidspan.eval.rundir import read_records
from vidspan.parse import parse_span

logger = logging.getLogger(__name__)

GT_WINDOW = "first"
"""Which ground-truth window the TimeLens protocol scores: the first of each sample's ``gt_spans``."""


def score_predictions(
    predictions: str | Path,
    benchmark: Benchmark,
    *,
    prediction_format: str | None = None,
    round_to_seconds: bool = False,
) -> dict[str, Any]:
    """Score a prediction file against a benchmark with the official metrics.

    Every format gets the TimeLens protocol (first predicted span, no swap, no clip, unparsed or missing
    predictions score IoU 0), lenient and strict, against the **first** ground-truth window of each
    sample (``gt_window: "first"``; ``num_multi_window_samples`` counts the samples that have more, where
    this is not the benchmark's own R1). QVHighlights submissions scored against the QVHighlights
    annotations get the official moment-retrieval (best-matching window) and highlight metrics as well.

    Args:
        predictions: A prediction file, or a vidspan run directory.
        benchmark: The benchmark the predictions answer.
        prediction_format: ``"timelens"``, ``"timechat"``, ``"qvhighlights"`` or ``"vidspan-run"``;
            detected when ``None``.
        round_to_seconds: Round predictions to whole seconds first (TimeLens' inference-script behaviour).

    Returns:
        The metrics, with ``format``, ``protocol`` and counts of samples without a prediction.
    """
    fmt = prediction_format or detect_prediction_format(predictions)
    samples = list(benchmark.samples)
    if fmt == "vidspan-run":
        records = read_records(Path(predictions) / "samples.jsonl")
        result = score_records(records, [s.id for s in samples], round_to_seconds=round_to_seconds)
        return {"format": fmt, "benchmark": benchmark.name} | _window_metadata(samples) | result

    joined = load_predictions(predictions, samples, fmt)
    lenient: list[tuple[float, float] | None] = []
    strict: list[tuple[float, float] | None] = []
    for sample in samples:
        prediction = joined.get(sample.id)
        span = prediction.span if prediction is not None else None
        lenient.append(span)
        if prediction is not None and prediction.raw is not None:
            parsed = parse_span(prediction.raw, output_format="timelens")
            strict.append(parsed.as_written if not parsed.violations else None)
        else:
            strict.append(span)  # structured timestamps: nothing to be lenient about
    missing = [s.id for s in samples if s.id not in joined]
    result: dict[str, Any] = {
        "format": fmt,
        "benchmark": benchmark.name,
        "protocol": "timelens",
        **_window_metadata(samples),
        "round_to_seconds": round_to_seconds,
        "num_samples": len(samples),
        "num_without_prediction": len(missing),
        "without_prediction": missing[:20],
        "lenient": _summary(lenient, benchmark, round_to_seconds),
        "strict": _summary(strict, benchmark, round_to_seconds),
    }
    if fmt == "qvhighlights" and benchmark.name == "qvhighlights":
        submission = read_qvhighlights_submission(predictions)
        result["qvhighlights"] = eval_qvhighlights(submission, load_jsonl(benchmark.annotations))
    if missing:
        logger.warning("%d of %d samples have no prediction; they score IoU 0", len(missing), len(samples))
    return result


def _window_metadata(samples: list[Any]) -> dict[str, Any]:
    """Which GT window the TimeLens-protocol blocks score, and how many samples have several."""
    multi = sum(len(s.gt_spans) > 1 for s in samples)
    label = "TimeLens protocol, first ground-truth window"
    if multi:
        label += f" ({multi} of {len(samples)} samples have several; not the benchmark's own R1)"
    return {"gt_window": GT_WINDOW, "num_multi_window_samples": multi, "protocol_label": label}


def _summary(
    spans: list[tuple[float, float] | None], benchmark: Benchmark, round_to_seconds: bool
) -> dict[str, Any]:
    if not spans:
        return {}
    scores = grounding_metrics.score_timelens(spans, benchmark.samples, round_to_seconds=round_to_seconds)
    return grounding_metrics.summarize(scores)
