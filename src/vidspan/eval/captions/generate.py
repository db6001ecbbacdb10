"""Candidate captions from vidspan's own ``caption()`` over a caption benchmark's videos (resumable)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vidspan.caption import caption
from vidspan.errors import VidspanError
from vidspan.eval.captions.candidates import CANDIDATES_FILE, CandidateRecord, write_candidates
from vidspan.eval.captions.samples import CaptionBenchmark, CaptionSample
from vidspan.eval.rundir import RunDir
from vidspan.models.base import VideoModel
from vidspan.scale.ray import ItemFailed, RayOptions
from vidspan.types import Caption
from vidspan.windows import SAMPLING_KEYS, ModelLike, Progress, RunSettings, load_model, prepare

logger = logging.getLogger(__name__)


def generate_captions(
    benchmark: CaptionBenchmark,
    model: ModelLike | None,
    out_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    ray: RayOptions | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Caption every sample's video into ``out_dir/captions.jsonl``; samples already there are skipped.

    Args:
        benchmark: From :func:`vidspan.eval.captions.datasets.load_caption_benchmark` (with a video folder).
        model: Model name, checkpoint or loaded :class:`VideoModel`.
        out_dir: The run directory (``captions.jsonl`` plus ``header.json`` with the model settings).
        limit: Only the first ``limit`` samples.
        progress: ``progress(done, total, message)`` callback.
        ray: Caption on a Ray cluster (decode tasks, model actors); the same file as a run in one process.
        **options: Sampling overrides and model options, as for :func:`vidspan.caption`.

    Returns:
        Counts: generated, already done, missing videos, failed (with reasons).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"Invalid limit: {limit}. It must be >= 1.")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    samples = benchmark.samples[:limit] if limit else benchmark.samples
    model_options = {k: v for k, v in options.items() if v is not None}
    sampling = {k: model_options.pop(k) for k in list(model_options) if k in SAMPLING_KEYS}
    if ray is None:
        vm = load_model(model, **model_options)
    else:
        vm, settings = prepare(model, None, options, remote=True)
    model_settings = {k: v for k, v in vm.settings().items() if "key" not in k.lower()}
    identity = {  # the model by name, checkpoint, backend and family; its runtime facts are only recorded
        "benchmark": benchmark.name,
        "annotations": str(Path(benchmark.annotations).resolve()),
        "model": vm.name,
        "checkpoint": model_settings.get("checkpoint"),
        "backend": model_settings.get("backend"),
        "family": vm.family.name,
        "sampling": sampling,
    }
    fields = {"benchmark": benchmark.name, "annotations": benchmark.annotations, "model": vm.name,
              "model_settings": model_settings, "sampling": sampling}  # fmt: skip
    with RunDir.open(directory, "captions", identity, **fields) as run:
        done = run.finished_ids(CANDIDATES_FILE)  # also cuts a torn last line before appending
        todo = [s for s in samples if s.id not in done]
        missing = [s.id for s in todo if s.video not in benchmark.video_paths]
        if ray is None:
            generated, failed = _caption_each(vm, benchmark, todo, sampling, directory, progress)
        else:
            generated, failed = _caption_on_ray(vm, settings, benchmark, todo, directory, progress, ray)
        run.finish()
    return {
        "directory": str(directory),
        "generated": generated,
        "already_done": len(samples) - len(todo),
        "missing_videos": missing,
        "failed": failed,
    }


def _caption_each(
    vm: VideoModel,
    benchmark: CaptionBenchmark,
    todo: list[CaptionSample],
    sampling: dict[str, Any],
    directory: Path,
    progress: Progress | None,
) -> tuple[int, list[dict[str, str]]]:
    """Caption each sample's video into the candidates file: (how many were written, failures)."""
    failed: list[dict[str, str]] = []
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
        write_candidates(directory, [_candidate(sample, result)])
        generated += 1
        if progress:
            progress(i, len(todo), sample.id)
    return generated, failed


def _caption_on_ray(
    vm: VideoModel,
    settings: RunSettings,
    benchmark: CaptionBenchmark,
    todo: list[CaptionSample],
    directory: Path,
    progress: Progress | None,
    ray: RayOptions,
) -> tuple[int, list[dict[str, str]]]:
    """:func:`_caption_each` on a Ray cluster: each video once, appended as it finishes."""
    from vidspan.scale.captions import caption_videos

    runnable = [s for s in todo if s.video in benchmark.video_paths]
    paths = [benchmark.video_paths[s.video] for s in runnable]
    failed: list[dict[str, str]] = []
    generated = 0
    for done, (key, result) in enumerate(caption_videos(vm, settings, paths, ray), 1):
        sample = runnable[key]
        if isinstance(result, ItemFailed):
            logger.warning("cannot caption %s: %s", paths[key], result.reason)
            failed.append({"id": sample.id, "error": result.reason})
        else:
            write_candidates(directory, [_candidate(sample, result)])
            generated += 1
        if progress:
            progress(done, len(runnable), sample.id)
    return generated, failed


def _candidate(sample: CaptionSample, result: Caption) -> CandidateRecord:
    return CandidateRecord(
        id=sample.id, video=sample.video, caption=result.raw, scene=result.scene or None,
        events=tuple(e.to_dict() for e in result.events),
    )  # fmt: skip
