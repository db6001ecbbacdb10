"""Captioning many videos on Ray: the loop that ``index``, ``eval generate-captions`` and ``annotate`` share.

Each video is one item: a CPU task decodes its windows (:func:`vidspan.windows.decode_windows`), a model
actor captions them (:func:`vidspan.caption.caption_windows`, the same code :func:`vidspan.caption` runs)
and, when the job gives one, runs the job's own step on the caption in the actor (the index job embeds
and writes its rows to PostgreSQL there).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vidspan.models.base import VideoModel
from vidspan.scale.ray import RayOptions, ray_session, run_items
from vidspan.types import Caption
from vidspan.windows import RunSettings, WindowClip, decode_windows

__all__ = ["CaptionJob", "caption_videos"]

CaptionJob = Callable[[Path, Callable[..., Caption]], Any]
"""``job(path, run) -> result`` in a model actor; ``run(strict=...)`` captions the decoded video."""


def caption_videos(
    vm: VideoModel,
    settings: RunSettings,
    videos: Sequence[str | os.PathLike[str]],
    options: RayOptions,
    *,
    job: Callable[[], CaptionJob] | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Caption ``videos`` on the cluster ``options`` names (started or joined for the call).

    Args:
        vm: The model, usually described only (:func:`vidspan.scale.remote_model`); each actor loads it.
        settings: Sampling and windowing, resolved on the driver (:func:`vidspan.windows.prepare`).
        videos: Video files.
        options: The cluster and its resources.
        job: Called once per actor; returns ``job(path, run)``, run for every video instead of plain
            captioning (``run()`` gives the :class:`Caption`). With ``options.vllm`` the captions come
            from vLLM replicas (:mod:`vidspan.scale.vllm`) and the job runs on the driver.
        prompt, max_new_tokens, strict: As for :func:`vidspan.caption`.

    Yields:
        ``(index in videos, Caption or job result or ItemFailed)`` as videos finish.
    """
    if options.vllm is not None:
        from vidspan.scale.vllm import vllm_captions

        yield from vllm_captions(vm, settings, videos, options, options.vllm, job=job, prompt=prompt,
                                 max_new_tokens=max_new_tokens, strict=strict)  # fmt: skip
        return
    paths = [Path(v) for v in videos]
    decode = functools.partial(decode_windows, settings=settings)
    load = functools.partial(_load, vm, settings, job, prompt, max_new_tokens, strict)
    with ray_session(options):
        yield from run_items(paths, decode=decode, load=load, options=options)


def _load(
    vm: VideoModel,
    settings: RunSettings,
    job: Callable[[], CaptionJob] | None,
    prompt: str | None,
    max_new_tokens: int | None,
    strict: bool,
) -> Callable[[Path, list[WindowClip]], Any]:
    """In a model actor: load the model (and the job's own state) once; caption each decoded video."""
    from vidspan.caption import caption_windows
    from vidspan.scale.remote import loaded

    model = loaded(vm)
    step = job() if job is not None else None

    def answer(path: Path, windows: list[WindowClip]) -> Any:
        def run(*, strict: bool = strict) -> Caption:
            return caption_windows(model, windows, settings, prompt=prompt, max_new_tokens=max_new_tokens,
                                   strict=strict)  # fmt: skip

        return run() if step is None else step(path, run)

    return answer
