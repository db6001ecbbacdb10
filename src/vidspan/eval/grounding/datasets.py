"""Benchmark annotation loaders: TimeLens-Bench, Charades-STA, ActivityNet Captions and QVHighlights.

Charades-STA and ActivityNet Captions are also read in TimeChat / VTG-LLM's COCO-style form
(``<split>.caption_coco_format.json``), detected from the file's content.

Each loader reads one annotation file into :class:`~vidspan.eval.grounding.samples.GroundingSample`
objects with stable ids and the ground truth in typed fields. :func:`load_benchmark` looks a benchmark up
by name, loads it and finds each sample's video file; videos that are not found are listed in
``Benchmark.missing_videos``, never dropped.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidspan.errors import BenchmarkFormatError, EvalFileNotFoundError, UnknownBenchmarkError
from vidspan.eval.grounding.samples import Benchmark, GroundingSample, GtSpan

logger = logging.getLogger(__name__)

__all__ = [
    "BENCHMARKS",
    "VIDEO_EXTENSIONS",
    "BenchmarkFormatError",
    "BenchmarkSpec",
    "EvalFileNotFoundError",
    "UnknownBenchmarkError",
    "find_video",
    "get_benchmark_spec",
    "load_activitynet",
    "load_benchmark",
    "load_charades_sta",
    "load_coco_grounding",
    "load_qvhighlights",
    "load_timelens",
    "normalize_query",
]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi", ".mov")
"""Extensions tried, in order, when a video id names no existing file by itself."""

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
    """Load TimeChat / VTG-LLM's COCO-style grounding file (``test.caption_coco_format.json``).

    The file is ``{"annotations": [{"image_id": "3MSZA.mp4", "caption": ..., "timestamp": [s, e],
    "id": 0}, ...]}``, as TimeChat's ``utils/get_coco_format.py`` writes it. The sample id and ``qid`` are
    the annotation ``id`` (the key of TimeChat's prediction files); ``video`` is the ``image_id`` file name.
    A ``duration`` in an annotation, in an ``images`` entry (``{"id": image_id, "duration"}``) or in
    ``durations`` (keyed with or without the extension) is kept.

    Raises:
        EvalFileNotFoundError: The file (or the durations file) does not exist.
        BenchmarkFormatError: The file is not this format, an annotation is malformed or an id repeats.
    """
    path = Path(path)
    data = _read_json_object(path)
    annotations = data.get("annotations")
    if not isinstance(annotations, list):
        raise BenchmarkFormatError(f"{path}: expected a COCO-style object with an 'annotations' list.")
    lengths = _read_durations(durations)
    for image in data.get("images") or []:
        if isinstance(image, dict) and isinstance(image.get("id"), str) and image.get("duration") is not None:
            lengths[image["id"]] = _optional_duration(image["duration"], f"{path}: images {image['id']!r}")
    samples, seen = [], set()
    for i, ann in enumerate(annotations):
        where = f"{path}: annotations[{i}]"
        ann = require_object(ann, where, ("image_id", "caption", "timestamp", "id"))
        qid = ann["id"]
        if not isinstance(qid, int) or isinstance(qid, bool) or qid in seen:
            raise BenchmarkFormatError(f"{where}: 'id' must be an integer unique in the file, got {qid!r}.")
        seen.add(qid)
        video = require_text(ann["image_id"], f"{where}: image_id").replace("\\", "/").rsplit("/", 1)[-1]
        duration = _optional_duration(ann.get("duration"), where)
        if duration is None:
            duration = lengths.get(video, lengths.get(video.rsplit(".", 1)[0]))
        samples.append(
            GroundingSample(
                id=str(qid),
                video=video,
                query=require_text(ann["caption"], f"{where}: caption").strip(),
                gt_spans=(_gt_span(ann["timestamp"], f"{where}: timestamp"),),
                subset=subset,
                duration=duration,
                qid=qid,
            )
        )
    logger.debug("Loaded %d COCO-style samples (%s) from %s", len(samples), subset, path)
    return samples


# --------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class BenchmarkSpec:
    """How to load one benchmark.

    Attributes:
        name: Registry name (``"charades-timelens"``).
        loader: ``loader(path, **options) -> list[GroundingSample]``.
        subset: The subset its samples get by default (``None``: decided by the file).
        video_extensions: Extensions tried, in order, when finding a video file.
        description: One line for listings.
        options: Loader options this benchmark fixes by default (callers may override them).
    """

    name: str
    loader: Callable[..., list[GroundingSample]]
    subset: str | None
    video_extensions: tuple[str, ...]
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)


_REGISTRY: tuple[tuple[str, Callable[..., list[GroundingSample]], str | None, str], ...] = (
    ("charades-timelens", load_timelens, "charades", "Charades-TimeLens (TimeLens-Bench)"),
    ("activitynet-timelens", load_timelens, "activitynet", "ActivityNet-TimeLens (TimeLens-Bench)"),
    ("qvhighlights-timelens", load_timelens, "qvhighlights", "QVHighlights-TimeLens (TimeLens-Bench)"),
    ("timelens", load_timelens, None, "Any TimeLens-Bench file; the subset comes from the file name"),
    ("charades-sta", load_charades_sta, "charades-sta", "Charades-STA text file (charades_sta_test.txt)"),
    ("activitynet", load_activitynet, "activitynet", "ActivityNet Captions JSON (val_2.json)"),
    ("qvhighlights", load_qvhighlights, "qvhighlights", "QVHighlights JSONL (highlight_val_release.jsonl)"),
    ("timechat-coco", load_coco_grounding, None, "TimeChat / VTG-LLM COCO-style file (caption_coco_format)"),
)


def _fixed_subset(name: str, subset: str | None) -> dict[str, Any]:
    return {"subset": subset} if name.endswith("-timelens") else {}


BENCHMARKS: dict[str, BenchmarkSpec] = {
    name: BenchmarkSpec(name, loader, subset, VIDEO_EXTENSIONS, description, _fixed_subset(name, subset))
    for name, loader, subset, description in _REGISTRY
}
"""Benchmark name → :class:`BenchmarkSpec`."""


def get_benchmark_spec(name: str) -> BenchmarkSpec:
    """Look a benchmark up by name (case-insensitive, ``_`` reads as ``-``).

    Raises:
        UnknownBenchmarkError: No such benchmark; the message suggests close names.
    """
    key = name.strip().lower().replace("_", "-")
    if key in BENCHMARKS:
        return BENCHMARKS[key]
    close = difflib.get_close_matches(key, list(BENCHMARKS), n=3, cutoff=0.6)
    close += [n for n in BENCHMARKS if key and key in n and n not in close]
    if close:
        raise UnknownBenchmarkError(f"Unknown benchmark {name!r}. Did you mean: {', '.join(close)}?")
    raise UnknownBenchmarkError(f"Unknown benchmark {name!r}. Available: {', '.join(BENCHMARKS)}.")


def load_benchmark(
    name: str, annotations: str | Path, videos: str | Path | None = None, **options: Any
) -> Benchmark:
    """Load a benchmark's annotations and find its videos.

    Args:
        name: A key of :data:`BENCHMARKS`.
        annotations: The annotation file.
        videos: Folder holding the videos, directly or one subfolder deep (``videos/charades/<vid>.mp4``);
            ``None`` leaves ``video_paths`` and ``missing_videos`` empty.
        **options: Loader options (``subset`` for TimeLens files, ``durations`` for Charades-STA).

    Returns:
        The benchmark with every sample; videos without a file are listed in ``missing_videos``.

    Raises:
        UnknownBenchmarkError: ``name`` is not registered.
        ValueError: An option the benchmark's loader does not take.
        EvalFileNotFoundError: The annotation file or the video folder does not exist.
        BenchmarkFormatError: The annotation file is malformed.
    """
    spec = get_benchmark_spec(name)
    accepted = list(inspect.signature(spec.loader).parameters)[1:]
    for key in options:
        if key not in accepted:
            raise ValueError(
                f"Invalid option for benchmark {spec.name!r}: {key!r}. "
                f"It must be one of: {', '.join(accepted) or '(none)'}."
            )
    samples = tuple(spec.loader(annotations, **{**spec.options, **options}))
    if videos is None:
        return Benchmark(name=spec.name, annotations=str(annotations), samples=samples)
    found, missing = locate_videos(samples, videos, spec.video_extensions)
    return Benchmark(
        name=spec.name,
        annotations=str(annotations),
        samples=samples,
        video_dir=str(videos),
        video_paths=found,
        missing_videos=tuple(sorted(missing)),
    )


def locate_videos(
    samples: Iterable[Any],
    videos: str | Path,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    names: Callable[[Any], Iterable[str]] | None = None,
) -> tuple[dict[str, Path], set[str]]:
    """The file of each sample's video under ``videos``, and the video ids with none (logged).

    ``names(sample)`` gives the file names to try in order (default: ``sample.video``); each is looked up
    with :func:`find_video`.

    Raises:
        EvalFileNotFoundError: ``videos`` is not a folder.
    """
    root = Path(videos)
    if not root.is_dir():
        raise EvalFileNotFoundError(f"Video folder not found: {root}")
    listing = _list_videos(root)
    found: dict[str, Path] = {}
    missing: set[str] = set()
    for sample in samples:
        if sample.video in found or sample.video in missing:
            continue
        for name in dict.fromkeys(names(sample) if names else (sample.video,)):
            path = find_video(name, root, extensions, subset=sample.subset, listing=listing)
            if path is not None:
                found[sample.video] = path
                break
        else:
            missing.add(sample.video)
    if missing:
        logger.warning("%d of %d videos not found under %s", len(missing), len(missing) + len(found), root)
    return found, missing


def find_video(
    video: str,
    root: str | Path,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
    *,
    subset: str | None = None,
    listing: Mapping[str, frozenset[str]] | None = None,
) -> Path | None:
    """Find the file of a video id under ``root`` or one subfolder of it.

    Tried in order: ``root``, ``root/<subset>``, the other subfolders (sorted); in each, the id as is and
    with each extension, then the same for the id with ``v_`` added or removed (ActivityNet).

    Args:
        video: Video id, with or without extension.
        root: The video folder.
        extensions: Extensions to try, with the dot.
        subset: A subfolder to try before the others.
        listing: A listing from a previous call (folder name relative to ``root`` → file names), to avoid
            listing the folder again.
    """
    root = Path(root)
    listing = _list_videos(root) if listing is None else listing
    folders = [""] + ([subset] if subset and subset in listing else [])
    folders += sorted(f for f in listing if f not in folders)
    ids = [video, video[2:] if video.startswith("v_") else f"v_{video}"]
    names = [n for vid in ids if vid for n in (vid, *(vid + ext for ext in extensions))]
    for folder in folders:
        files = listing[folder]
        for name in names:
            if name in files:
                return root / folder / name if folder else root / name
    return None


# ---------------------------------------------------------------------------------------------- helpers


def _list_videos(root: Path) -> dict[str, frozenset[str]]:
    """``{"": files in root, "<sub>": files in root/<sub>, ...}`` (hidden entries skipped)."""
    top: list[str] = []
    listing: dict[str, frozenset[str]] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                with os.scandir(entry.path) as inner:
                    listing[entry.name] = frozenset(e.name for e in inner if e.is_file())
            elif entry.is_file():
                top.append(entry.name)
    listing[""] = frozenset(top)
    return listing


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


def require_object(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``value`` as a JSON object holding ``keys``, else :class:`BenchmarkFormatError` naming ``where``."""
    if not isinstance(value, dict):
        raise BenchmarkFormatError(f"{where}: expected a JSON object, got {type(value).__name__}.")
    absent = [k for k in keys if k not in value]
    if absent:
        raise BenchmarkFormatError(f"{where}: missing {', '.join(repr(k) for k in absent)}.")
    return value


def require_text(value: Any, where: str) -> str:
    """``value`` as a string, else :class:`BenchmarkFormatError` naming ``where``."""
    if not isinstance(value, str):
        raise BenchmarkFormatError(f"{where}: expected text, got {_clip(repr(value))}.")
    return value


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
