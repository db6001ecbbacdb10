"""Caption-benchmark loaders (DREAM-1K, CaReBench, any caption JSONL) and candidate-caption files.

Each loader reads one annotation file into :class:`~vidspan.eval.captions.samples.CaptionSample` objects;
:func:`load_caption_benchmark` looks a loader up by name and finds each sample's video file with
:func:`vidspan.eval.benchmark.find_video`. Videos without a file are listed in
``CaptionBenchmark.missing_videos``; their samples are kept.

Candidate captions (the captions being scored) are read by :mod:`vidspan.eval.captions.candidates`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidspan.errors import BenchmarkFormatError, EvalFileNotFoundError
from vidspan.eval.benchmark import BenchmarkSpec, load_benchmark, require_object, require_text
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample

logger = logging.getLogger(__name__)

__all__ = [
    "CAPTION_BENCHMARKS",
    "load_caption_benchmark",
    "load_caption_jsonl",
    "load_carebench",
    "load_dream1k",
]

DREAM_PLACEHOLDER = "<placeholder>"
_DREAM_EXTRA = ("n_subjects", "n_shots", "n_events")


# ---------------------------------------------------------------------------------------------- loaders


def load_dream1k(path: str | Path) -> list[CaptionSample]:
    """Load DREAM-1K (``DREAM-1k.jsonl`` from bytedance/tarsier).

    Per line: id ``str(idx)``; reference from the assistant turn's ``reference``; subset from ``dataset``
    (``"DREAM/movie_animation"`` → ``"movie_animation"``); ``events`` from ``extra_info.events`` (a tuple
    when present, even empty; ``None`` when absent, so the judge extracts them); ``duration``; ``extra``
    holds ``n_subjects``, ``n_shots``, ``n_events`` and ``idx``.

    Videos: the Hugging Face dataset ``omni-research/DREAM-1K`` ships ``<vid>.mp4`` files and Tarsier's
    ``fill_in_video_file`` notebook maps a line to the file whose stem is ``str(vid)``. So ``video`` is
    ``str(vid)``; the lookup also tries ``str(idx)`` (equal to ``vid`` in the released file) and the
    file name of ``video_file`` when it is a real path rather than ``<placeholder>``.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        BenchmarkFormatError: A line (named by number) is malformed or an idx repeats.
    """
    path = Path(path)
    samples = []
    seen: dict[str, int] = {}
    for line_no, row in _jsonl_rows(path):
        where = f"{path}, line {line_no}"
        row = require_object(row, where, ("messages", "dataset", "idx"))
        sample_id = _id_text(row["idx"], f"{where}: idx")
        if sample_id in seen:
            raise BenchmarkFormatError(f"{where}: idx {sample_id} repeats line {seen[sample_id]}.")
        seen[sample_id] = line_no
        info = row.get("extra_info") or {}
        if not isinstance(info, dict):
            raise BenchmarkFormatError(f"{where}: 'extra_info' must be an object.")
        extra: dict[str, Any] = {key: info[key] for key in _DREAM_EXTRA if key in info}
        extra["idx"] = row["idx"]
        video_file = _dream_video_file(row["messages"])
        if video_file:
            extra["video_file"] = video_file
        dataset = require_text(row["dataset"], f"{where}: dataset")
        samples.append(
            CaptionSample(
                id=sample_id,
                video=_id_text(row.get("vid", row["idx"]), f"{where}: vid"),
                reference=_dream_reference(row["messages"], where),
                subset=dataset.split("/", 1)[1] if "/" in dataset else dataset,
                events=_optional_texts(info, "events", where),
                duration=_optional_number(info.get("duration"), f"{where}: duration"),
                extra=extra,
            )
        )
    logger.debug("Loaded %d DREAM-1K samples from %s", len(samples), path)
    return samples


def load_carebench(path: str | Path) -> list[CaptionSample]:
    """Load CaReBench's ``json/metadata.json`` (a list of records).

    Each record has ``video``, ``caption``, ``spatial_caption``, ``temporal_caption``, ``category`` and
    ``subcategory``, optionally ``events`` / ``objects`` (reused as ground truth when present). The id is
    the record's ``idx`` / ``id`` if it has one, else its 0-based position (CaReBench's own ``idx``). All
    samples go into subset ``"overall"``, as CaReBench scores them; ``extra`` keeps the categories and the
    spatial and temporal captions.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        BenchmarkFormatError: The file is not a JSON list of records, or a record is malformed.
    """
    path = Path(path)
    try:
        records = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{path}: expected a JSON list of records, got {type(records).__name__}.")
    samples = []
    for i, record in enumerate(records):
        where = f"{path}: record {i}"
        record = require_object(record, where, ("video", "caption"))
        extra: dict[str, Any] = {
            key: record[key]
            for key in ("category", "subcategory", "spatial_caption", "temporal_caption")
            if key in record
        }
        samples.append(
            CaptionSample(
                id=_record_id(record, i, where),
                video=require_text(record["video"], f"{where}: video"),
                reference=require_text(record["caption"], f"{where}: caption"),
                subset="overall",
                events=_optional_texts(record, "events", where),
                objects=_optional_texts(record, "objects", where),
                duration=_optional_number(record.get("duration"), f"{where}: duration"),
                extra=extra,
            )
        )
    _check_unique_ids(samples, path)
    logger.debug("Loaded %d CaReBench samples from %s", len(samples), path)
    return samples


def load_caption_jsonl(path: str | Path) -> list[CaptionSample]:
    """Load any caption JSONL of ``{"video", "caption" (or "reference")}`` lines.

    Optional fields: ``events``, ``objects``, ``subset``, ``id``, ``duration``. The id is ``id`` (or
    ``idx``) when given, else the 0-based position among non-blank lines; the subset defaults to
    ``"overall"``. Other fields go to ``extra``.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        BenchmarkFormatError: A line (named by number) is malformed, or an id repeats.
    """
    path = Path(path)
    samples = []
    known = {"id", "idx", "video", "caption", "reference", "events", "objects", "subset", "duration"}
    for position, (line_no, row) in enumerate(_jsonl_rows(path)):
        where = f"{path}, line {line_no}"
        row = require_object(row, where, ("video",))
        text_key = "caption" if "caption" in row else "reference"
        if text_key not in row:
            raise BenchmarkFormatError(f"{where}: missing 'caption' (or 'reference').")
        samples.append(
            CaptionSample(
                id=_record_id(row, position, where),
                video=require_text(row["video"], f"{where}: video"),
                reference=require_text(row[text_key], f"{where}: {text_key}"),
                subset=require_text(row.get("subset", "overall"), f"{where}: subset"),
                events=_optional_texts(row, "events", where),
                objects=_optional_texts(row, "objects", where),
                duration=_optional_number(row.get("duration"), f"{where}: duration"),
                extra={k: v for k, v in row.items() if k not in known},
            )
        )
    _check_unique_ids(samples, path)
    logger.debug("Loaded %d caption samples from %s", len(samples), path)
    return samples


# --------------------------------------------------------------------------------------------- registry


def _dream_video_names(sample: CaptionSample) -> list[str]:
    names = [sample.video, sample.id]
    if "video_file" in sample.extra:
        names.append(os.path.basename(str(sample.extra["video_file"])))
    return names


def _natural_key(text: str) -> tuple[int, int | str]:
    return (0, int(text)) if text.isdigit() else (1, text)


CAPTION_BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("dream1k", "captions", load_dream1k, "DREAM-1K (DREAM-1k.jsonl from bytedance/tarsier)",
                      aliases=("dream-1k", "dream"), video_names=_dream_video_names,
                      sort_missing=_natural_key),
        BenchmarkSpec("carebench", "captions", load_carebench, "CaReBench json/metadata.json (CapST)",
                      aliases=("care-bench",), sort_missing=_natural_key),
        BenchmarkSpec("jsonl", "captions", load_caption_jsonl, "Any caption JSONL: video, caption, events?",
                      sort_missing=_natural_key),
    )
}  # fmt: skip
"""The built-in caption benchmarks, name → :class:`~vidspan.eval.benchmark.BenchmarkSpec` (the built-in
plugin registers them; plugins add more)."""


def load_caption_benchmark(
    name: str, annotations: str | Path, videos: str | Path | None = None
) -> CaptionBenchmark:
    """Load a caption benchmark's annotations and find its videos.

    Args:
        name: ``"dream1k"``, ``"carebench"``, ``"jsonl"`` (see :data:`CAPTION_BENCHMARKS`) or a plugin's.
        annotations: The annotation file.
        videos: Folder holding the videos, directly or one subfolder deep; ``None`` leaves
            ``video_paths`` and ``missing_videos`` empty.

    Raises:
        UnknownBenchmarkError: ``name`` is not registered (the message suggests close names).
        EvalFileNotFoundError: The annotation file or the video folder does not exist.
        BenchmarkFormatError: The annotation file is malformed.
    """
    return load_benchmark(name, annotations, videos, kind="captions")


# ---------------------------------------------------------------------------------------------- helpers


def _read_text(path: Path, what: str = "Annotation file") -> str:
    if not path.is_file():
        raise EvalFileNotFoundError(f"{what} not found: {path}")
    return path.read_text(encoding="utf-8")


def _jsonl_rows(path: Path, what: str = "Annotation file") -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for line_no, line in enumerate(_read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}, line {line_no}: not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise BenchmarkFormatError(
                f"{path}, line {line_no}: expected a JSON object, got {type(row).__name__}."
            )
        rows.append((line_no, row))
    return rows


def _dream_reference(messages: Any, where: str) -> str:
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "assistant":
                for part in message.get("content") or []:
                    if isinstance(part, dict) and isinstance(part.get("reference"), str):
                        return part["reference"]
    raise BenchmarkFormatError(f"{where}: no assistant turn with a 'reference' caption in 'messages'.")


def _dream_video_file(messages: Any) -> str | None:
    for message in messages if isinstance(messages, list) else ():
        for part in (message.get("content") or []) if isinstance(message, dict) else ():
            video = part.get("video") if isinstance(part, dict) else None
            name = video.get("video_file") if isinstance(video, dict) else None
            if isinstance(name, str) and name.strip() and name.strip() != DREAM_PLACEHOLDER:
                return name.strip()
    return None


def _id_text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, str) and not value):
        raise BenchmarkFormatError(f"{where}: expected an integer or non-empty text, got {value!r}.")
    return str(value)


def _record_id(record: dict[str, Any], position: int, where: str) -> str:
    for key in ("id", "idx"):
        if key in record:
            return _id_text(record[key], f"{where}: {key}")
    return str(position)


def _optional_texts(record: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    if key not in record or record[key] is None:
        return None
    value = record[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BenchmarkFormatError(f"{where}: {key!r} must be a list of strings.")
    return tuple(value)


def _optional_number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BenchmarkFormatError(f"{where}: expected a number >= 0, got {value!r}.")
    return float(value)


def _check_unique_ids(samples: list[CaptionSample], path: Path) -> None:
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise BenchmarkFormatError(f"{path}: sample id {sample.id!r} repeats.")
        seen.add(sample.id)


def apply_audit(
    benchmark: CaptionBenchmark, audit: Any, *, mode: str = "exclude", min_score: int = 5
) -> CaptionBenchmark:
    """Use a ground-truth audit in later scoring.

    Args:
        benchmark: The benchmark the audit was run on.
        audit: From :func:`vidspan.eval.captions.audit.load_audit`.
        mode: ``"exclude"`` drops references every audit run scored ``<= min_score``; ``"correct"`` keeps
            them but removes the reference events every run found contradicted by the video.
        min_score: The factual score at or below which a reference is excluded.

    Returns:
        A new benchmark (the input is unchanged); its name records what was applied.
    """
    if mode == "exclude":
        dropped = audit.excluded_ids(min_score=min_score, require_consensus=True)
        samples = tuple(s for s in benchmark.samples if s.id not in dropped)
    elif mode == "correct":
        samples = tuple(
            replace(s, events=fixed) if (fixed := audit.corrected_events(s.id)) is not None else s
            for s in benchmark.samples
        )
    else:
        raise ValueError(f"Invalid mode: {mode!r}. It must be 'exclude' or 'correct'.")
    logger.info("audit applied (%s): %d of %d references kept", mode, len(samples), len(benchmark.samples))
    return replace(benchmark, name=f"{benchmark.name}+audit-{mode}", samples=samples)
