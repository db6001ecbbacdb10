"""Prediction files written by other tools (and by vidspan runs), joined to a benchmark's samples.

Formats read: TimeLens prediction files (a JSON dict or JSONL of single-key dicts keyed
``"<video file>>>><query>>>>[s, e]"``), TimeChat / VTG-LLM grounding files (``{qid: {"timestamp",
"query", "vid"}}``), QVHighlights submissions (JSONL with ``qid`` and ``pred_relevant_windows``) and
vidspan run folders (``samples.jsonl``). Each becomes
``{sample_id: Prediction}``; samples without an entry are the caller's to report as unparsed (IoU 0).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.errors import PredictionFormatError
from vidspan.eval.grounding.datasets import VIDEO_EXTENSIONS, EvalFileNotFoundError, normalize_query
from vidspan.eval.grounding.samples import GroundingSample
from vidspan.parse import parse_span

logger = logging.getLogger(__name__)

__all__ = [
    "GT_TOLERANCE_SECONDS",
    "PREDICTION_FORMATS",
    "Prediction",
    "PredictionFormatError",
    "detect_prediction_format",
    "join_timelens_predictions",
    "load_predictions",
    "qvhighlights_submission_from_predictions",
    "qvhighlights_submission_to_predictions",
    "read_qvhighlights_submission",
    "read_timelens_prediction_file",
    "read_timelens_predictions",
    "read_vidspan_run",
    "write_qvhighlights_submission",
]

PREDICTION_FORMATS = ("vidspan-run", "qvhighlights", "timelens", "timechat")
"""What :func:`detect_prediction_format` can return."""

GT_TOLERANCE_SECONDS = 1e-4
"""How far the ground truth written in a TimeLens key may be from a sample's and still match it."""

_VIDEO_SUFFIX_RE = re.compile("(?:" + "|".join(re.escape(e) for e in VIDEO_EXTENSIONS) + ")$", re.IGNORECASE)

Window = tuple[float, ...]
"""``(start, end)`` or, for QVHighlights windows, ``(start, end, score)``."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One sample's prediction, as read from a file.

    Attributes:
        sample_id: The :class:`~vidspan.eval.grounding.samples.GroundingSample` id it belongs to.
        span: The span that is scored: the first of ``spans`` (kept as written, even if reversed), or
            ``None`` when nothing could be read.
        raw: The model's answer text, where the file has it.
        spans: Every predicted window in rank order; QVHighlights windows carry their score as a third item.
        saliency: QVHighlights per-clip saliency scores, where given.
        span_strict: The strictly parsed span (vidspan runs only).
        format_ok: Whether the answer was in the model's canonical form, where known.
        error: The error recorded for the sample (vidspan runs only).
    """

    sample_id: str
    span: tuple[float, float] | None
    raw: str | None = None
    spans: tuple[Window, ...] = ()
    saliency: tuple[float, ...] | None = None
    span_strict: tuple[float, float] | None = None
    format_ok: bool | None = None
    error: str | None = None


# ----------------------------------------------------------------------------------------------- TimeLens


def read_timelens_prediction_file(path: str | Path) -> dict[str, Any]:
    """Read a TimeLens prediction file into one dict, like the upstream scorer.

    A JSON object is read as is; JSONL lines (one dict each) are merged with ``dict.update`` semantics, so a
    key written twice keeps its later value. A truncated last JSONL line is skipped with a warning.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        PredictionFormatError: The file is neither a JSON object nor JSONL of objects.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        return data
    if data is not None:
        raise PredictionFormatError(f"{path}: expected a JSON object or JSONL of objects.")
    entries: dict[str, Any] = {}
    for line_no, row in _jsonl_rows(path, text, tolerate_truncated_tail=True):
        if not isinstance(row, dict):
            raise PredictionFormatError(f"{path}, line {line_no}: expected a JSON object.")
        entries.update(row)
    return entries


def join_timelens_predictions(
    entries: Mapping[str, Any],
    samples: Iterable[GroundingSample],
    *,
    tolerance_seconds: float = GT_TOLERANCE_SECONDS,
) -> tuple[dict[str, Prediction], tuple[str, ...]]:
    """Match TimeLens prediction entries to samples by video, normalised query and ground-truth span.

    The key's video part may carry a folder and a video extension; ids with and without ``v_`` match.
    The ground-truth part is read with :func:`ast.literal_eval`. An entry matching several identical
    samples is given to each. ``timestamps`` (first pair) wins over ``answers``, which is read with
    :func:`~vidspan.parse.parse_span` (``output_format="timelens"``, lenient), keeping the first pair as
    written (neither swapped nor clipped, as the TimeLens scorer does).

    Returns:
        ``({sample_id: Prediction}, keys that match no sample)``.
    """
    index: dict[tuple[str, str], list[GroundingSample]] = {}
    for sample in samples:
        index.setdefault((_video_key(sample.video), normalize_query(sample.query)), []).append(sample)
    predictions: dict[str, Prediction] = {}
    unmatched: list[str] = []
    for key, value in entries.items():
        parts = _split_timelens_key(key)
        hits: list[GroundingSample] = []
        if parts is not None:
            video, query, gt = parts
            candidates = index.get((video, query)) or index.get((_other_activitynet_id(video), query), [])
            hits = [s for s in candidates if any(_close(g, gt, tolerance_seconds) for g in s.gt_spans)]
        if not hits:
            unmatched.append(key)
        for sample in hits:
            predictions[sample.id] = _timelens_prediction(sample.id, value)
    return predictions, tuple(unmatched)


def read_timelens_predictions(path: str | Path, samples: Iterable[GroundingSample]) -> dict[str, Prediction]:
    """Read a TimeLens prediction file and join it to ``samples``.

    Keys that match no sample are logged (warning) and left out; samples without an entry are absent
    from the result. Use :func:`join_timelens_predictions` to get the unmatched keys.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        PredictionFormatError: The file is neither a JSON object nor JSONL of objects.
    """
    entries = read_timelens_prediction_file(path)
    predictions, unmatched = join_timelens_predictions(entries, samples)
    if unmatched:
        shown = ", ".join(repr(k) for k in unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        logger.warning(
            "%d of %d prediction keys in %s match no sample: %s", len(unmatched), len(entries), path, shown
        )
    return predictions


def _split_timelens_key(key: str) -> tuple[str, str, tuple[float, float]] | None:
    parts = key.split(">>>")
    if len(parts) < 3:
        return None
    try:
        gt = ast.literal_eval(parts[-1].strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    pair = _pair(gt)
    if pair is None:
        return None
    return _video_key(parts[0]), normalize_query(">>>".join(parts[1:-1])), pair


def _timelens_prediction(sample_id: str, value: Any) -> Prediction:
    if isinstance(value, str):
        value = {"answers": value}
    if not isinstance(value, dict):
        return Prediction(sample_id, None, error=f"prediction is a {type(value).__name__}, not an object")
    answers = value.get("answers")
    if isinstance(answers, list) and answers and isinstance(answers[0], str):
        answers = answers[0]
    raw = answers if isinstance(answers, str) else None
    stamps = value.get("timestamps")
    if isinstance(stamps, list) and stamps and not isinstance(stamps[0], list | tuple):
        stamps = [stamps]  # a bare [s, e]
    pairs = [p for p in (_pair(s) for s in stamps) if p is not None] if isinstance(stamps, list) else []
    if pairs:
        return Prediction(sample_id, pairs[0], raw, spans=tuple(pairs))
    if raw is None:
        return Prediction(sample_id, None)
    parsed = parse_span(raw, output_format="timelens")
    span = parsed.as_written  # as the model wrote it: no swap, no clip (the TimeLens protocol)
    return Prediction(
        sample_id,
        span,
        raw,
        spans=(span,) if span else (),
        span_strict=None if parsed.violations else span,
        format_ok=parsed.format_ok,
    )


def _video_key(video: str) -> str:
    name = video.strip().replace("\\", "/").rsplit("/", 1)[-1]
    return _VIDEO_SUFFIX_RE.sub("", name)


def _other_activitynet_id(video: str) -> str:
    return video[2:] if video.startswith("v_") else f"v_{video}"


def _close(a: Sequence[float], b: Sequence[float], tolerance: float) -> bool:
    return abs(a[0] - b[0]) <= tolerance and abs(a[1] - b[1]) <= tolerance


# ------------------------------------------------------------------------------------------- QVHighlights


def read_qvhighlights_submission(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a QVHighlights submission (JSONL).

    Each line needs an integer ``qid`` (unique) and ``pred_relevant_windows``, a list of
    ``[start, end, score]``; ``pred_saliency_scores`` (a list of numbers) is optional.

    Returns:
        The rows as written.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        PredictionFormatError: A line (named by number) is malformed or repeats a qid.
    """
    path = Path(path)
    rows = []
    seen: dict[int, int] = {}
    for line_no, row in _jsonl_rows(path, _read_text(path), tolerate_truncated_tail=False):
        where = f"{path}, line {line_no}"
        if not isinstance(row, dict):
            raise PredictionFormatError(f"{where}: expected a JSON object.")
        qid = row.get("qid")
        if not isinstance(qid, int) or isinstance(qid, bool):
            raise PredictionFormatError(f"{where}: 'qid' must be an integer, got {qid!r}.")
        if qid in seen:
            raise PredictionFormatError(f"{where}: qid {qid} repeats line {seen[qid]}.")
        seen[qid] = line_no
        windows = row.get("pred_relevant_windows")
        if not isinstance(windows, list):
            raise PredictionFormatError(
                f"{where}: 'pred_relevant_windows' must be a list of [start, end, score]."
            )
        for i, window in enumerate(windows):
            if not (isinstance(window, list) and len(window) == 3 and all(_is_number(v) for v in window)):
                raise PredictionFormatError(
                    f"{where}: pred_relevant_windows[{i}] must be [start, end, score], got {window!r}."
                )
        saliency = row.get("pred_saliency_scores")
        if saliency is not None and not (
            isinstance(saliency, list) and all(_is_number(v, finite=False) for v in saliency)
        ):
            raise PredictionFormatError(f"{where}: 'pred_saliency_scores' must be a list of numbers.")
        rows.append(row)
    return rows


def qvhighlights_submission_to_predictions(
    rows: Iterable[Mapping[str, Any]], samples: Iterable[GroundingSample]
) -> dict[str, Prediction]:
    """Join validated submission rows to samples by ``qid``; rows for unknown qids are logged and skipped."""
    by_qid = {s.qid: s.id for s in samples if s.qid is not None}
    predictions: dict[str, Prediction] = {}
    unknown = []
    for row in rows:
        sample_id = by_qid.get(row["qid"])
        if sample_id is None:
            unknown.append(row["qid"])
            continue
        windows = tuple(tuple(float(v) for v in w) for w in row["pred_relevant_windows"])
        saliency = row.get("pred_saliency_scores")
        predictions[sample_id] = Prediction(
            sample_id,
            (windows[0][0], windows[0][1]) if windows else None,
            spans=windows,
            saliency=None if saliency is None else tuple(float(v) for v in saliency),
        )
    if unknown:
        logger.warning("%d submission qids match no sample (first: %s)", len(unknown), unknown[0])
    return predictions


def qvhighlights_submission_from_predictions(
    predictions: Mapping[str, Prediction], samples: Iterable[GroundingSample]
) -> list[dict[str, Any]]:
    """Write predictions in the QVHighlights submission shape, one row per sample, in sample order.

    Windows come from ``Prediction.spans`` (score 1.0 where a window has none), else from ``span``; a
    sample without a prediction or span gets an empty window list. ``pred_saliency_scores`` is written only
    where the prediction has saliency scores.

    Raises:
        ValueError: A sample has no ``qid`` (it is not a QVHighlights sample) or a qid repeats.
    """
    rows = []
    seen: set[int | str] = set()
    for sample in samples:
        if sample.qid is None:
            raise ValueError(
                f"Invalid sample for a QVHighlights submission: {sample.id!r}. It must have a qid."
            )
        if sample.qid in seen:
            raise ValueError(f"Invalid samples: qid {sample.qid!r} repeats. Each qid must appear once.")
        seen.add(sample.qid)
        pred = predictions.get(sample.id)
        windows: list[list[float]] = []
        if pred is not None:
            spans = pred.spans or ((pred.span,) if pred.span is not None else ())
            windows = [[w[0], w[1], w[2] if len(w) > 2 else 1.0] for w in spans]
        row: dict[str, Any] = {
            "qid": sample.qid,
            "query": sample.query,
            "vid": sample.video,
            "pred_relevant_windows": windows,
        }
        if pred is not None and pred.saliency is not None:
            row["pred_saliency_scores"] = list(pred.saliency)
        rows.append(row)
    return rows


def write_qvhighlights_submission(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write submission rows as JSONL; returns the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    return path


# ------------------------------------------------------------------------------------------- vidspan runs


def read_vidspan_run(run_dir: str | Path) -> dict[str, Prediction]:
    """Read the per-sample predictions of a vidspan run (its ``samples.jsonl``).

    A truncated last line (a run that crashed mid-write) is skipped with a warning; an id written twice
    keeps its later line (a resumed run).

    Args:
        run_dir: The run folder, or its ``samples.jsonl``.

    Raises:
        EvalFileNotFoundError: There is no ``samples.jsonl``.
        PredictionFormatError: A line other than the last is malformed.
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / "samples.jsonl"
    predictions: dict[str, Prediction] = {}
    for line_no, row in _jsonl_rows(path, _read_text(path), tolerate_truncated_tail=True):
        where = f"{path}, line {line_no}"
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise PredictionFormatError(f"{where}: expected a JSON object with a string 'id'.")
        span, strict = row.get("span"), row.get("span_strict")
        if (span is not None and _pair(span) is None) or (strict is not None and _pair(strict) is None):
            raise PredictionFormatError(f"{where}: 'span' and 'span_strict' must be [start, end] or null.")
        raw, error, format_ok = row.get("raw"), row.get("error"), row.get("format_ok")
        pair = None if span is None else _pair(span)
        predictions[row["id"]] = Prediction(
            row["id"],
            pair,
            raw if isinstance(raw, str) else None,
            spans=(pair,) if pair else (),
            span_strict=None if strict is None else _pair(strict),
            format_ok=format_ok if isinstance(format_ok, bool) else None,
            error=None if error is None else str(error),
        )
    return predictions


# ------------------------------------------------------------------------------------- detection, dispatch


def detect_prediction_format(path: str | Path) -> str:
    """Tell which prediction format ``path`` holds: one of :data:`PREDICTION_FORMATS`.

    ``"vidspan-run"``: a folder with ``samples.jsonl`` (or such a file); ``"qvhighlights"``: JSONL with
    ``qid`` and ``pred_relevant_windows``; ``"timelens"``: keys of the form ``video>>>query>>>[s, e]``;
    ``"timechat"``: a JSON object whose every value has a ``timestamp`` (TimeChat / VTG-LLM).

    Raises:
        EvalFileNotFoundError: ``path`` does not exist.
        PredictionFormatError: The format cannot be told.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "samples.jsonl").is_file():
            return "vidspan-run"
        raise PredictionFormatError(f"{path} is a folder without samples.jsonl, so it is not a vidspan run.")
    text = _read_text(path)
    try:
        first = json.loads(text)
    except json.JSONDecodeError:
        first = next((row for _, row in _jsonl_rows(path, text, tolerate_truncated_tail=True)), None)
    if isinstance(first, dict):
        if "qid" in first and "pred_relevant_windows" in first:
            return "qvhighlights"
        if "id" in first and "gt_spans" in first and "span" in first:
            return "vidspan-run"
        if first and all(isinstance(k, str) and ">>>" in k for k in first):
            return "timelens"
        if first and all(isinstance(v, dict) and "timestamp" in v for v in first.values()):
            return "timechat"
    raise PredictionFormatError(
        f"Cannot tell the format of prediction file {path}. Expected a vidspan run folder (samples.jsonl), "
        "QVHighlights JSONL (qid, pred_relevant_windows), TimeLens JSON with 'video>>>query>>>[s, e]' keys "
        "or TimeChat JSON ({qid: {timestamp, query, vid}})."
    )


def load_predictions(
    path: str | Path, samples: Iterable[GroundingSample], prediction_format: str | None = None
) -> dict[str, Prediction]:
    """Read any supported prediction file and join it to ``samples``.

    Args:
        path: The file or run folder.
        samples: The benchmark's samples.
        prediction_format: One of :data:`PREDICTION_FORMATS`; detected when ``None``.

    Raises:
        ValueError: ``prediction_format`` is not known.
        EvalFileNotFoundError, PredictionFormatError: As for the format's reader.
    """
    fmt = detect_prediction_format(path) if prediction_format is None else prediction_format
    samples = list(samples)
    if fmt == "timelens":
        return read_timelens_predictions(path, samples)
    if fmt == "timechat":
        from vidspan.eval.grounding.timechat import read_timechat_predictions

        return read_timechat_predictions(path, samples)
    if fmt == "qvhighlights":
        return qvhighlights_submission_to_predictions(read_qvhighlights_submission(path), samples)
    if fmt == "vidspan-run":
        known = {s.id for s in samples}
        predictions = read_vidspan_run(path)
        stray = [i for i in predictions if i not in known]
        if stray:
            logger.warning("%d run samples match no benchmark sample (first: %r)", len(stray), stray[0])
        return {i: p for i, p in predictions.items() if i in known}
    raise ValueError(
        f"Invalid prediction_format: {prediction_format!r}. "
        f"It must be one of: {', '.join(PREDICTION_FORMATS)}."
    )


# ---------------------------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise EvalFileNotFoundError(f"Prediction file not found: {path}")
    return path.read_text(encoding="utf-8")


def _jsonl_rows(path: Path, text: str, *, tolerate_truncated_tail: bool) -> Iterator[tuple[int, Any]]:
    """``(line number, object)`` per non-blank line; a bad last line is skipped if tolerated."""
    lines = text.splitlines()
    last = max((n for n, line in enumerate(lines, 1) if line.strip()), default=0)
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            if tolerate_truncated_tail and line_no == last:
                logger.warning("%s, line %d: skipping a truncated last line (%s)", path, line_no, exc.msg)
                return
            raise PredictionFormatError(f"{path}, line {line_no}: not valid JSON ({exc.msg}).") from None


def _is_number(value: Any, *, finite: bool = True) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isfinite(value) or not finite


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value):
        return (float(value[0]), float(value[1]))
    return None
