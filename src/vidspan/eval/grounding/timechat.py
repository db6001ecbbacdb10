"""TimeChat / VTG-LLM files read directly: COCO-style grounding ground truth and ``{qid: {timestamp, query,
vid}}`` predictions (TimeChat's ``utils/get_coco_format.py`` and ``evaluate.py`` write them; VTG-LLM ships
the same shapes). Both join to the benchmark samples the other loaders make.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vidspan.errors import BenchmarkFormatError, PredictionFormatError
from vidspan.eval.grounding.datasets import (  # the package's shared file readers
    _gt_span,
    _optional_duration,
    _read_durations,
    _read_json_object,
    normalize_query,
    require_object,
    require_text,
)
from vidspan.eval.grounding.predictions import Prediction, _pair, _read_text, _timelens_prediction, _video_key
from vidspan.eval.grounding.samples import GroundingSample

logger = logging.getLogger(__name__)

__all__ = ["join_timechat_predictions", "load_coco_grounding", "read_timechat_predictions"]


# ------------------------------------------------------------------------------------------ ground truth


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


# ------------------------------------------------------------------------------------------- predictions


def join_timechat_predictions(
    entries: Mapping[str, Any], samples: Iterable[GroundingSample]
) -> tuple[dict[str, Prediction], tuple[str, ...]]:
    """Match TimeChat / VTG-LLM grounding predictions to samples.

    The file is ``{"<qid>": {"timestamp": [[s, e]], "query": ..., "vid": "3MSZA.mp4"}}``, as TimeChat's
    ``evaluate.py`` (``fmt_*_result.json``) and VTG-LLM write it. A key is the ``id`` of the annotation in
    the COCO-style ground truth, so it joins to the sample with that ``qid``; an entry whose ``vid`` names
    another video than that sample's is not joined. For ground truth without qids (the Charades-STA text
    file), entries join by video and normalised query where that pair names exactly one sample.

    ``timestamp`` may be a list of ``[s, e]`` pairs (the first is scored, as TimeChat's ``eval_tvg.py``
    does), one bare ``[s, e]``, an empty list (nothing parsed: IoU 0) or the model's answer text, which is
    read like a TimeLens answer (:func:`~vidspan.parse.parse_span`, first pair as written).

    Returns:
        ``({sample_id: Prediction}, keys that match no sample)``.
    """
    samples = list(samples)
    by_qid = {str(s.qid): s for s in samples if s.qid is not None}
    by_text: dict[tuple[str, str], list[GroundingSample]] = {}
    for sample in samples:
        by_text.setdefault(_text_key(sample.video, sample.query), []).append(sample)
    predictions: dict[str, Prediction] = {}
    unmatched: list[str] = []
    for qid, value in entries.items():
        entry = value if isinstance(value, dict) else {}
        vid = entry.get("vid") if isinstance(entry.get("vid"), str) else None
        sample = by_qid.get(str(qid).strip())
        if sample is None and not by_qid and vid is not None and isinstance(entry.get("query"), str):
            hits = by_text.get(_text_key(vid, entry["query"]), [])
            sample = hits[0] if len(hits) == 1 else None
        if sample is None or (vid is not None and _video_key(vid) != _video_key(sample.video)):
            unmatched.append(str(qid))
            continue
        predictions[sample.id] = _timechat_prediction(sample.id, value)
    return predictions, tuple(unmatched)


def read_timechat_predictions(path: str | Path, samples: Iterable[GroundingSample]) -> dict[str, Prediction]:
    """Read a TimeChat / VTG-LLM grounding prediction file (a JSON object) and join it to ``samples``.

    Keys that match no sample are logged (warning) and left out; see :func:`join_timechat_predictions`.

    Raises:
        EvalFileNotFoundError: The file does not exist.
        PredictionFormatError: The file is not a JSON object.
    """
    path = Path(path)
    try:
        entries = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise PredictionFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(entries, dict):
        raise PredictionFormatError(f"{path}: expected a JSON object keyed by query id.")
    predictions, unmatched = join_timechat_predictions(entries, samples)
    if unmatched:
        shown = ", ".join(repr(k) for k in unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        logger.warning(
            "%d of %d prediction keys in %s match no sample: %s", len(unmatched), len(entries), path, shown
        )
    return predictions


def _text_key(video: str, query: str) -> tuple[str, str]:
    return _video_key(video), normalize_query(query).lower()


def _timechat_prediction(sample_id: str, value: Any) -> Prediction:
    stamps = value.get("timestamp") if isinstance(value, dict) else None
    if isinstance(stamps, list) and stamps and isinstance(stamps[0], str):
        stamps = stamps[0]  # an answer wrapped in a list
    if isinstance(stamps, str):
        return _timelens_prediction(sample_id, {"answers": stamps})
    if not isinstance(stamps, list):
        return Prediction(sample_id, None, error="no 'timestamp' list or answer text")
    if stamps and not isinstance(stamps[0], list | tuple):
        stamps = [stamps]  # a bare [s, e]
    pairs = tuple(p for p in (_pair(s) for s in stamps) if p is not None)
    return Prediction(sample_id, pairs[0] if pairs else None, spans=pairs)
