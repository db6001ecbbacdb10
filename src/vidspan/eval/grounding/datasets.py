"""Benchmark annotation loaders: TimeLens-Bench, Charades-STA, ActivityNet Captions and QVHighlights.

Charades-STA and ActivityNet Captions are also read in TimeChat / VTG-LLM's COCO-style form
(``<split>.caption_coco_format.json``), detected from the file's content.

Each loader reads one annotation file into :class:`~vidspan.eval.grounding.samples.GroundingSample`
objects with stable ids and the ground truth in typed fields. :func:`load_benchmark` looks a benchmark up
by name, loads it and finds each sample's video file; videos that are not found are listed in
``Benchmark.missing_videos``, never dropped.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vidspan.errors import BenchmarkFormatError, EvalFileNotFoundError, UnknownBenchmarkError
from vidspan.eval import benchmark
from vidspan.eval.benchmark import (
    VIDEO_EXTENSIONS,
    BenchmarkSpec,
    find_video,
    locate_videos,
    require_object,
    require_text,
)
from vidspan.eval.grounding.samples import Benchmark, GroundingSample, GtSpan

logger = logging.getLogger(__name__)

__all__ = [  # the file readers, and the benchmark lookups re-exported for grounding
    "BENCHMARKS",
    "VIDEO_EXTENSIONS",
    "BenchmarkFormatError",
    "BenchmarkSpec",
    "EvalFileNotFoundError",
    "UnknownBenchmarkError",
    "find_video",
    "get_benchmark_spec",
    "locate_videos",
    "load_activitynet",
    "load_benchmark",
    "load_charades_sta",
    "load_coco_grounding",
    "load_qvhighlights",
    "load_timelens",
    "normalize_query",
]

_TIMELENS_FILE_RE = re.compile(r"^(?P<subset>.+?)-timelens(?:\.[^.]+)?$")


def normalize_query(query: str) -> str:
    """Normalise a query like the official TimeLens loader: one space per whitespace run, no edge periods.

    Example:
        >>> normalize_query("  A man  opens\\tthe door. ")
        'A man opens the door'
    """
    return re.sub(r"\s+", " ", query).strip().strip(".").strip()


# ---------------------------------------------------------------------------------------------- loaders


def load_timelens(path: str | Path, subset: str | None = None) -> list[GroundingSample]:
    """Load a TimeLens-Bench file (``{vid: {"duration", "spans", "queries"}}``).

    One sample per (query, span), id ``"<vid>#<i>"``; queries normalised like the official loader.

    Args:
        path: A ``<subset>-timelens.json`` file.
        subset: Subset name; by default taken from the file name (``charades-timelens.json`` →
            ``"charades"``), or the file's stem when the name does not end in ``-timelens``.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        BenchmarkFormatError: The file is not valid JSON or an entry is malformed.
    """
    path = Path(path)
    if subset is None:
        match = _TIMELENS_FILE_RE.match(path.name)
        subset = match["subset"] if match else path.stem
    return _load_paired_json(path, "spans", "queries", subset, normalize_query)


def load_charades_sta(
    path: str | Path, durations: Mapping[str, float] | str | Path | None = None
) -> list[GroundingSample]:
    """Load a Charades-STA text file: one ``<vid> <start> <end>##<sentence>`` per line.

    A JSON file (one starting with ``{``) is read as TimeChat's COCO-style form with
    :func:`load_coco_grounding` instead. Blank lines are skipped. Sample ids are ``"<vid>#<k>"`` where
    ``k`` counts that video's queries in file order from 0 (stable while the file is unchanged).
    Sentences keep their text, whitespace-stripped.

    Args:
        path: ``charades_sta_test.txt`` or a file of the same format.
        durations: Video durations in seconds, as a mapping or a JSON file ``{vid: seconds}`` (values may
            also be ``{"duration": seconds}``); videos not in it get ``duration=None``.

    Raises:
        EvalFileNotFoundError: The file (or the durations file) does not exist.
        BenchmarkFormatError: A line (named by number) or the durations file is malformed.
    """
    path = Path(path)
    text = _read_text(path)
    if text.lstrip().startswith("{"):  # TimeChat's COCO-style JSON, not the text format
        return load_coco_grounding(path, "charades-sta", durations)
    lengths = _read_durations(durations)
    counts: dict[str, int] = {}
    samples = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, sep, sentence = line.partition("##")
        fields = head.split()
        where = f"{path}, line {line_no}"
        if not sep or len(fields) != 3 or not sentence.strip():
            raise BenchmarkFormatError(
                f"{where}: expected '<video> <start> <end>##<sentence>', got {_clip(line)!r}."
            )
        vid = fields[0]
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise BenchmarkFormatError(
                f"{where}: start and end must be numbers, got {fields[1]!r} and {fields[2]!r}."
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise BenchmarkFormatError(f"{where}: start and end must be finite, got {start} and {end}.")
        k = counts.get(vid, 0)
        counts[vid] = k + 1
        samples.append(
            GroundingSample(
                id=f"{vid}#{k}",
                video=vid,
                query=sentence.strip(),
                gt_spans=((start, end),),
                subset="charades-sta",
                duration=lengths.get(vid),
            )
        )
    logger.debug("Loaded %d Charades-STA samples from %s", len(samples), path)
    return samples


def load_activitynet(path: str | Path) -> list[GroundingSample]:
    """Load an ActivityNet Captions file (``{vid: {"duration", "timestamps", "sentences"}}``).

    One sample per sentence, id ``"<vid>#<i>"``, sentences whitespace-stripped, subset ``"activitynet"``.
    A COCO-style file (a top-level ``annotations`` list) is read with :func:`load_coco_grounding`.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        BenchmarkFormatError: The file is not valid JSON or an entry is malformed.
    """
    data = _read_json_object(Path(path))
    if isinstance(data.get("annotations"), list):  # TimeChat's COCO-style form
        return load_coco_grounding(path, "activitynet")
    return _paired_samples(Path(path), data, "timestamps", "sentences", "activitynet", str.strip)


def load_qvhighlights(path: str | Path) -> list[GroundingSample]:
    """Load QVHighlights ground truth (JSONL: ``qid``, ``query``, ``vid``, ``duration``, ...).

    ``gt_spans`` are the ``relevant_windows``; ``extra`` holds ``relevant_clip_ids`` and
    ``saliency_scores`` (as tuples). The id is ``str(qid)``; the query is kept as written.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        BenchmarkFormatError: A line (named by number) is malformed, or a qid repeats.
    """
    path = Path(path)
    samples = []
    seen: dict[int, int] = {}
    for line_no, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{where}: not valid JSON ({exc.msg}).") from None
        row = require_object(row, where, ("qid", "query", "vid", "relevant_windows"))
        qid = row["qid"]
        if not isinstance(qid, int) or isinstance(qid, bool):
            raise BenchmarkFormatError(f"{where}: 'qid' must be an integer, got {qid!r}.")
        if qid in seen:
            raise BenchmarkFormatError(f"{where}: qid {qid} repeats line {seen[qid]}.")
        seen[qid] = line_no
        windows = row["relevant_windows"]
        if not isinstance(windows, list) or not windows:
            raise BenchmarkFormatError(f"{where}: 'relevant_windows' must be a non-empty list.")
        clip_ids = row.get("relevant_clip_ids", [])
        scores = row.get("saliency_scores", [])
        if not isinstance(clip_ids, list) or not isinstance(scores, list) or len(clip_ids) != len(scores):
            raise BenchmarkFormatError(
                f"{where}: 'relevant_clip_ids' and 'saliency_scores' must be lists of the same length."
            )
        samples.append(
            GroundingSample(
                id=str(qid),
                video=require_text(row["vid"], f"{where}: vid"),
                query=require_text(row["query"], f"{where}: query"),
                gt_spans=tuple(_gt_span(w, f"{where}: relevant_windows[{i}]") for i, w in enumerate(windows)),
                subset="qvhighlights",
                duration=_optional_duration(row.get("duration"), where),
                qid=qid,
                extra={
                    "relevant_clip_ids": tuple(clip_ids),
                    "saliency_scores": tuple(tuple(s) if isinstance(s, list) else s for s in scores),
                },
            )
        )
    logger.debug("Loaded %d QVHighlights samples from %s", len(samples), path)
    return samples


def load_coco_grounding(
    path: str | Path, subset: str = "charades-sta", durations: Mapping[str, float] | str | Path | None = None
) -> list[GroundingSample]:
    """TimeChat / VTG-LLM COCO-style ground truth (:func:`.timechat.load_coco_grounding`)."""
    from vidspan.eval.grounding import timechat

    return timechat.load_coco_grounding(path, subset, durations)


# --------------------------------------------------------------------------------------------- registry


_SPECS: tuple[tuple[str, Callable[..., list[GroundingSample]], str | None, str], ...] = (
    ("charades-timelens", load_timelens, "charades", "Charades-TimeLens (TimeLens-Bench)"),
    ("activitynet-timelens", load_timelens, "activitynet", "ActivityNet-TimeLens (TimeLens-Bench)"),
    ("qvhighlights-timelens", load_timelens, "qvhighlights", "QVHighlights-TimeLens (TimeLens-Bench)"),
    ("timelens", load_timelens, None, "Any TimeLens-Bench file; the subset comes from the file name"),
    ("charades-sta", load_charades_sta, "charades-sta", "Charades-STA text file (charades_sta_test.txt)"),
    ("activitynet", load_activitynet, "activitynet", "ActivityNet Captions JSON (val_2.json)"),
    ("qvhighlights", load_qvhighlights, "qvhighlights", "QVHighlights JSONL (highlight_val_release.jsonl)"),
    ("timechat-coco", load_coco_grounding, None, "TimeChat / VTG-LLM COCO-style file (caption_coco_format)"),
)

BENCHMARKS: dict[str, BenchmarkSpec] = {
    name: BenchmarkSpec(name, "grounding", loader, description, subset,
                        options={"subset": subset} if name.endswith("-timelens") else {})
    for name, loader, subset, description in _SPECS
}  # fmt: skip
"""The built-in grounding benchmarks, name → :class:`~vidspan.eval.benchmark.BenchmarkSpec` (the built-in
plugin registers them; plugins add more: :func:`vidspan.eval.benchmark.benchmark_specs`)."""


def get_benchmark_spec(name: str) -> BenchmarkSpec:
    """Look a grounding benchmark up by name (see :func:`vidspan.eval.benchmark.get_benchmark_spec`)."""
    return benchmark.get_benchmark_spec(name, "grounding")


def load_benchmark(
    name: str, annotations: str | Path, videos: str | Path | None = None, **options: Any
) -> Benchmark:
    """Load a grounding benchmark and find its videos (see :func:`vidspan.eval.benchmark.load_benchmark`).

    Raises:
        UnknownBenchmarkError: ``name`` is not registered.
        ValueError: An option the benchmark's loader does not take.
        EvalFileNotFoundError: The annotation file or the video folder does not exist.
        BenchmarkFormatError: The annotation file is malformed.
    """
    return benchmark.load_benchmark(name, annotations, videos, kind="grounding", **options)


# ---------------------------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise EvalFileNotFoundError(f"Annotation file not found: {path}")
    return path.read_text(encoding="utf-8")


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(data, dict):
        raise BenchmarkFormatError(
            f"{path}: expected a JSON object keyed by video id, got {type(data).__name__}."
        )
    return data


def _load_paired_json(
    path: Path, spans_key: str, texts_key: str, subset: str, clean: Callable[[str], str]
) -> list[GroundingSample]:
    """``{vid: {"duration", spans_key: [[s, e], ...], texts_key: [...]}}`` → one sample per pair."""
    return _paired_samples(path, _read_json_object(path), spans_key, texts_key, subset, clean)


def _paired_samples(
    path: Path,
    data: Mapping[str, Any],
    spans_key: str,
    texts_key: str,
    subset: str,
    clean: Callable[[str], str],
) -> list[GroundingSample]:
    samples = []
    for vid, entry in data.items():
        where = f"{path}: video {vid!r}"
        entry = require_object(entry, where, (spans_key, texts_key))
        duration = _optional_duration(entry.get("duration"), where)
        spans, texts = entry[spans_key], entry[texts_key]
        if not isinstance(spans, list) or not isinstance(texts, list):
            raise BenchmarkFormatError(f"{where}: {spans_key!r} and {texts_key!r} must be lists.")
        if len(spans) != len(texts):
            raise BenchmarkFormatError(
                f"{where}: {len(spans)} {spans_key} but {len(texts)} {texts_key}; they must pair one to one."
            )
        for i, (span, text) in enumerate(zip(spans, texts, strict=True)):
            samples.append(
                GroundingSample(
                    id=f"{vid}#{i}",
                    video=vid,
                    query=clean(require_text(text, f"{where}: {texts_key}[{i}]")),
                    gt_spans=(_gt_span(span, f"{where}: {spans_key}[{i}]"),),
                    subset=subset,
                    duration=duration,
                )
            )
    logger.debug("Loaded %d samples (%s) from %s", len(samples), subset, path)
    return samples


def _read_durations(durations: Mapping[str, float] | str | Path | None) -> dict[str, float]:
    if durations is None:
        return {}
    if isinstance(durations, str | Path):
        source = str(durations)
        durations = _read_json_object(Path(durations))
    else:
        source = "durations"
    out = {}
    for vid, value in durations.items():
        if isinstance(value, dict):
            value = value.get("duration")
        duration = _optional_duration(value, f"{source}: video {vid!r}")
        if duration is None:
            raise BenchmarkFormatError(f"{source}: video {vid!r}: no duration.")
        out[vid] = duration
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _gt_span(value: Any, where: str) -> GtSpan:
    if not (isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value)):
        raise BenchmarkFormatError(f"{where}: expected [start, end] (two numbers), got {_clip(repr(value))}.")
    return (float(value[0]), float(value[1]))


def _optional_duration(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or value < 0:
        raise BenchmarkFormatError(f"{where}: 'duration' must be a number >= 0, got {_clip(repr(value))}.")
    return float(value)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
