"""Candidate captions from vidspan's own ``caption()`` over a caption benchmark's videos (resumable)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vidspan.caption import caption
from vidspan.errors import VidspanError
from vidspan.eval.captions.candidates import CANDIDATES_FILE, CandidateRecord, write_candidates
from vidspan.eval.captions.samples import CaptionBenchmark
from vidspan.eval.rundir import finished_ids, now, versions, write_json
from vidspan.windows import SAMPLING_KEYS, ModelLike, Progress, load_model

logger = logging.getLogger(__name__)


def generate_captions(
    benchmark: CaptionBenchmark,
    model: ModelLike | None,
    out_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Caption every sample's video into ``out_dir/captions.jsonl``; samples already there are skipped.

    Args:
        benchmark: From :func:`vidspan.eval.captions.datasets.load_caption_benchmark` (with a video folder).
        model: Model name, checkpoint or loaded :class:`VideoModel`.
        out_dir: The run directory (``captions.jsonl`` plus ``header.json`` with the model settings).
        limit: Only the first ``limit`` samples.
        progress: ``progress(done, total, message)`` callback.
        **options: Sampling overrides and model options, as for :func:`vidspan.caption`.

    Returns:
        Counts: generated, already done, missing videos, failed (with reasons).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"Invalid limit: {limit}. It must be >= 1.")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    done = finished_ids(directory / CANDIDATES_FILE)  # also cuts a torn last line before appending
    samples = benchmark.samples[:limit] if limit else benchmark.samples
    model_options = {k: v for k, v in options.items() if v is not None}
    sampling = {k: model_options.pop(k) for k in list(model_options) if k in SAMPLING_KEYS}
    vm = load_model(model, **model_options)
    header_path = directory / "header.json"
    if not header_path.exists():
        write_json(header_path, {
            "kind": "captions", "benchmark": benchmark.name, "annotations": benchmark.annotations,
            "model": vm.name, "model_settings": vm.settings(), "sampling": sampling,
            "versions": versions(), "started_at": now(),
        })  # fmt: skip
    todo = [s for s in samples if s.id not in done]
    failed: list[dict[str, str]] = []
    missing = [s.id for s in todo if s.video not in benchmark.video_paths]
    generated = 0
    for i, sample in enumerate(todo, 1):
        path = benchmark.video_paths.get(sample.video)
        if path is None:
            continue
        try:
            result = caption(path, vm, **sampling)
        except VidspanError as exc:  # one bad video must not stop the run; it is reported
            logger.warning("cannot caption %s: %s", path, exc)
            failed.append({"id": sample.id, "error": str(exc)})
            continue
        write_candidates(directory, [CandidateRecord(
            id=sample.id, video=sample.video, caption=result.raw, scene=result.scene or None,
            events=tuple(e.to_dict() for e in result.events),
        )])  # fmt: skip
        generated += 1
        if progress:
            progress(i, len(todo), sample.id)
    return {
        "directory": str(directory),
        "generated": generated,
        "already_done": len(samples) - len(todo),
        "missing_videos": missing,
        "failed": failed,
    }


