"""Candidate captions (the captions being scored) keyed by benchmark sample id, and the file that holds them.

:func:`load_candidates` reads a JSONL file of ``{"id" | "idx" | "video", "caption"}`` lines, or a caption
run directory holding ``captions.jsonl`` as written by :func:`write_candidates` (``vidspan eval captions
--generate``), one line per sample::

    {"id": "17", "video": "17", "caption": "<raw model text>", "scene": "<scene text or null>",
     "events": [{"start": 0.0, "end": 2.5, "text": "..."}, ...]}

``caption`` is the text that is scored; ``scene`` and ``events`` keep the parsed parts for inspection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidspan.eval.captions.datasets import _id_text, _jsonl_rows
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.grounding.datasets import BenchmarkFormatError, EvalFileNotFoundError, require_text

logger = logging.getLogger(__name__)

__all__ = ["CANDIDATES_FILE", "CandidateRecord", "Candidates", "load_candidates", "write_candidates"]

CANDIDATES_FILE = "captions.jsonl"
"""The file of a caption run directory that holds its candidate captions."""


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """One generated caption as stored in a caption run's ``captions.jsonl``.

    Attributes:
        id: The benchmark sample id.
        video: The sample's video id.
        caption: The raw model text: what AutoDQ scores.
        scene: The scene description parsed from it, if the model wrote one.
        events: Timed events parsed from it (``{"start", "end", "description"}``, as ``Caption.to_dict``).
    """

    id: str
    video: str
    caption: str
    scene: str | None = None
    events: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON line."""
        return {
            "id": self.id,
            "video": self.video,
            "caption": self.caption,
            "scene": self.scene,
            "events": [dict(e) for e in self.events],
        }


class Candidates(dict[str, str]):
    """Candidate captions by sample id, with what did not line up with the benchmark.

    Attributes:
        source: Where they were read from.
        missing: Benchmark sample ids without a candidate (scored as failed, never dropped).
        unmatched: Keys in the file that match no sample.
    """

    def __init__(
        self, captions: Mapping[str, str], *, source: str, missing: Iterable[str], unmatched: Iterable[str]
    ):
        super().__init__(captions)
        self.source = source
        self.missing = tuple(missing)
        self.unmatched = tuple(unmatched)


def write_candidates(run_dir: str | Path, records: Iterable[CandidateRecord]) -> Path:
    """Append candidate captions to ``<run_dir>/captions.jsonl`` (created with its folder if needed).

    Lines are appended, so a generation run can resume; when an id repeats, the last line wins.

    Returns:
        The ``captions.jsonl`` path.
    """
    path = Path(run_dir) / CANDIDATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    return path


def load_candidates(path: str | Path, benchmark: CaptionBenchmark) -> Candidates:
    """Read candidate captions and key them by the benchmark's sample ids.

    Args:
        path: A JSONL file of ``{"id" | "idx" | "video", "caption"}`` lines (``"prediction"`` is read
            when there is no ``"caption"``, as in Tarsier prediction files), or a caption run directory
            holding ``captions.jsonl``. A line is matched by ``id``, else ``idx``, else ``video`` (the
            video id, or a file name whose stem is the video id; every sample of that video gets it).
            A later line for the same sample replaces an earlier one.
        benchmark: The benchmark the captions are for.

    Returns:
        ``{sample_id: caption}`` with ``missing`` (samples without a caption) and ``unmatched`` (lines
        that match no sample) attached; both are also logged as warnings.

    Raises:
        EvalFileNotFoundError: No such file, or a directory without ``captions.jsonl``.
        BenchmarkFormatError: A line (named by number) is malformed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CANDIDATES_FILE
    if not path.is_file():
        raise EvalFileNotFoundError(f"Candidate captions not found: {path}")
    by_id = {s.id: s for s in benchmark.samples}
    by_video: dict[str, list[str]] = {}
    for sample in benchmark.samples:
        by_video.setdefault(sample.video, []).append(sample.id)
        by_video.setdefault(Path(sample.video).stem, []).append(sample.id)
    captions: dict[str, str] = {}
    unmatched: list[str] = []
    for line_no, row in _jsonl_rows(path, what="Candidate captions"):
        where = f"{path}, line {line_no}"
        text_key = "caption" if "caption" in row else "prediction"
        if text_key not in row:
            raise BenchmarkFormatError(f"{where}: missing 'caption'.")
        text = require_text(row[text_key], f"{where}: {text_key}")
        ids = _candidate_ids(row, by_id, by_video, where)
        if not ids:
            unmatched.append(next(str(row[k]) for k in ("id", "idx", "video") if k in row))
        for sample_id in dict.fromkeys(ids):
            captions[sample_id] = text
    missing = [s.id for s in benchmark.samples if s.id not in captions]
    if missing:
        logger.warning(
            "%d of %d samples have no candidate caption in %s (first: %s)",
            len(missing),
            len(benchmark.samples),
            path,
            ", ".join(missing[:5]),
        )
    if unmatched:
        logger.warning(
            "%d candidate lines in %s match no sample (first: %s)",
            len(unmatched),
            path,
            ", ".join(unmatched[:5]),
        )
    return Candidates(captions, source=str(path), missing=missing, unmatched=unmatched)


def _candidate_ids(
    row: dict[str, Any], by_id: dict[str, CaptionSample], by_video: dict[str, list[str]], where: str
) -> list[str]:
    for key in ("id", "idx"):
        if key in row:
            sample_id = _id_text(row[key], f"{where}: {key}")
            return [sample_id] if sample_id in by_id else []
    if "video" not in row:
        raise BenchmarkFormatError(f"{where}: a candidate line needs 'id', 'idx' or 'video'.")
    video = _id_text(row["video"], f"{where}: video")
    return by_video.get(video) or by_video.get(Path(video).stem) or []
