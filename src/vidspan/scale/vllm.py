"""Captioning on GPU clusters with vLLM through Ray Data's LLM processor (``ray.data.llm``).

The same prompts, frame plan and parsing as one process; vLLM replaces the model actors::

    from_items(videos) -> flat_map(window rows)   CPU tasks: decode each window with vidspan's plan and
                                                  write its chat request (a JPEG frame list + the prompt)
                       -> build_processor(...)    Ray's stages: prepare multimodal, chat template,
                                                  tokenize, vLLM engine replicas, detokenize
                       -> iter_rows()             the driver parses each window and merges a video's
                                                  windows into its Caption once all have arrived

**Frame times.** vLLM reads a frame list's timing from engine-level ``media_io_kwargs`` (one ``fps`` for
every request; per-request kwargs do not exist in a batch processor), so frame ``i`` of every window is
shown to the model at ``i / fps`` seconds, with ``fps`` the plan's rate. The row keeps the frames' true
times, and every time in the answer is mapped back through that frame clock (piecewise linear between
frames) before it is shifted to source seconds. When a window is sampled at the plan's rate (the usual
case) the clock is the identity to within a frame's rounding; a window capped by ``max_frames``, a
fixed ``num_frames`` plan or a variable-frame-rate file still gets its true times back.

**Failures.** A video that cannot be decoded yields no rows; its decode task records the reason with a
small Ray actor, and the video comes back as :class:`vidspan.scale.ItemFailed`. A row the engine rejects
(``should_continue_on_error``: a prompt longer than ``max_model_len``, say) fails its video, not the job.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidspan.errors import VidspanError
from vidspan.models.base import Family
from vidspan.models.openai import wire
from vidspan.scale.ray import ItemFailed, RayError, RayOptions, failure_reason, first_line, ray_session
from vidspan.types import Caption, Span
from vidspan.windows import RunSettings, decode_windows

__all__ = ["FrameClock", "VLLMOptions", "build_caption_processor", "caption_from_rows", "processor_config",
           "vllm_captions", "window_rows"]  # fmt: skip

_ERROR_COLUMN = "__inference_error__"
_KEEP = ("key", "window", "windows", "start", "end", "times", "fps")


@dataclass(frozen=True, slots=True)
class VLLMOptions:
    """How the vLLM replicas run (``RayOptions.workers`` replicas, one per GPU unless tensor parallel).

    Attributes:
        model_source: What vLLM loads: a hub id or a directory every GPU node can read (default: the
            model's checkpoint).
        batch_size: Rows per batch sent to an engine replica.
        max_model_len: The engine's context length (default: the checkpoint's).
        engine_kwargs: Further vLLM engine arguments (``tensor_parallel_size``, ``gpu_memory_utilization``,
            ``max_num_seqs``...); they win over vidspan's.
        jpeg_quality: Quality of the frames sent to vLLM.
        accelerator_type: Ray accelerator type to schedule the replicas on (``"H100"``...).
    """

    model_source: str | None = None
    batch_size: int = 16
    max_model_len: int | None = None
    engine_kwargs: Mapping[str, Any] = field(default_factory=dict)
    jpeg_quality: int = 90
    accelerator_type: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"Invalid batch_size: {self.batch_size!r}. It must be an integer >= 1.")
        length = self.max_model_len
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise ValueError(f"Invalid max_model_len: {length!r}. It must be a positive integer.")
        if not isinstance(self.jpeg_quality, int) or not 0 < self.jpeg_quality <= 100:
            raise ValueError(
                f"Invalid jpeg_quality: {self.jpeg_quality!r}. It must be an integer from 1 to 100."
            )
        if not isinstance(self.engine_kwargs, Mapping):
            raise ValueError(
                f"Invalid engine_kwargs: {self.engine_kwargs!r}. It must be a dict of vLLM engine arguments."
            )

    def to_dict(self) -> dict[str, Any]:
        """What a run records about its engine."""
        return {"engine": "vllm", "model_source": self.model_source, "batch_size": self.batch_size,
                "max_model_len": self.max_model_len, "engine_kwargs": dict(self.engine_kwargs)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FrameClock:
    """Maps the times vLLM showed the model (frame ``i`` at ``i / fps``) to seconds from the window start.

    Attributes:
        fps: The engine's frame rate for frame lists.
        times: Each frame's true time, in seconds from the window start.
        duration: The window's length in seconds.
    """

    fps: float
    times: tuple[float, ...]
    duration: float

    @property
    def model_duration(self) -> float:
        """The window's length on the model's clock (one frame step after its last frame)."""
        return len(self.times) / self.fps

    def __call__(self, t: float) -> float:
        """``t`` on the model's clock, in true seconds from the window start (linear between frames)."""
        import numpy as np

        xs = [i / self.fps for i in range(len(self.times))] + [self.model_duration]
        ys = [*self.times, max(self.duration, self.times[-1] if self.times else 0.0)]
        return float(np.interp(t, xs, ys))


# -- rows -------------------------------------------------------------------------------------------------


def engine_fps(settings: RunSettings) -> float:
    """The one frame rate vLLM is told for every frame list: the plan's (2 fps for a fixed-count plan)."""
    return float(settings.sampling.fps) if settings.sampling.num_frames is None else 2.0


def window_rows(
    key: int,
    path: str | os.PathLike[str],
    settings: RunSettings,
    family: Family,
    *,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    jpeg_quality: int = 90,
    stop_token_ids: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Decode ``path``'s windows with vidspan's plan; one processor row per window.

    Each row has the chat request Ray's processor reads (``messages``: a ``data:video/jpeg`` frame list
    and the family's prompt; ``sampling_params``: greedy, the family's budget, the checkpoint's stop ids)
    and what the driver needs to read the answer back (``key``, ``window`` of ``windows``, ``start``,
    ``end``, the frames' true ``times`` from the window start, the engine ``fps``).

    Raises:
        VideoError: the file cannot be read as a video.
    """
    text = prompt if prompt is not None else family.caption_prompt
    budget = max_new_tokens or family.caption_max_new_tokens
    sampling: dict[str, Any] = {"temperature": 0.0, "max_tokens": budget}
    if stop_token_ids:
        sampling["stop_token_ids"] = list(stop_token_ids)
    rows = []
    for item in decode_windows(path, settings):
        clip = item.clip
        url = wire.frame_list_url(wire.encode_jpeg(f, jpeg_quality) for f in clip.frames)
        content = [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": text}]
        rows.append({
            "key": key,
            "window": item.index,
            "windows": item.total,
            "start": clip.window.start,
            "end": clip.window.end,
            "times": [max(0.0, t - clip.window.start) for t in clip.timestamps],
            "fps": engine_fps(settings),
            "messages": [{"role": "user", "content": content}],
            "sampling_params": sampling,
        })  # fmt: skip
    return rows


def caption_from_rows(
    rows: Sequence[Mapping[str, Any]], *, model: str, settings: dict[str, Any], strict: bool = False
) -> Caption:
    """One video's :class:`Caption` from its answered rows (any order): each window's ``generated_text``
    parsed on the model's clock, mapped back to true times, and the windows merged as one process does.

    Raises:
        ParseError: ``strict`` and a window's answer breaks the format.
    """
    from vidspan.caption import WindowAnswer, assemble_caption
    from vidspan.parse import parse_caption
    from vidspan.types import Event

    answers = []
    for row in sorted(rows, key=lambda r: int(r["window"])):
        window = Span(float(row["start"]), float(row["end"]))
        clock = FrameClock(float(row["fps"]), tuple(float(t) for t in row["times"]), window.duration)
        text = str(row["generated_text"])
        parsed = parse_caption(text, duration_seconds=clock.model_duration, strict=strict)
        events = []
        for event in parsed.events:
            start, end = clock(event.span.start), clock(event.span.end)
            events.append(Event(Span(start, max(start, end)), event.description))
        parsed = type(parsed)(parsed.scene, tuple(events), parsed.violations)
        answers.append(WindowAnswer(int(row["window"]), int(row["windows"]), window, text, parsed))
    return assemble_caption(answers, model=model, settings=settings, timings={})


# -- the processor ----------------------------------------------------------------------------------------


def processor_config(
    model_source: str, settings: RunSettings, options: RayOptions, vllm: VLLMOptions
) -> dict[str, Any]:
    """The keyword arguments of ``vLLMEngineProcessorConfig`` for this job (no Ray or vLLM needed)."""
    video = {"fps": engine_fps(settings)}
    limits = {"video": 1, "image": 0}
    engine: dict[str, Any] = {"limit_mm_per_prompt": limits, "media_io_kwargs": {"video": video}}
    if vllm.max_model_len is not None:
        engine["max_model_len"] = vllm.max_model_len
    engine.update(vllm.engine_kwargs)
    config: dict[str, Any] = {
        "model_source": model_source,
        "engine_kwargs": engine,
        "batch_size": vllm.batch_size,
        "concurrency": options.workers,
        "should_continue_on_error": True,
        # the frame list is decoded by vLLM's own chat parser on CPU workers, timed by media_io_kwargs
        "prepare_multimodal_stage": {
            "enabled": True,
            "model_config_kwargs": {
                "media_io_kwargs": {"video": video},
                "limit_mm_per_prompt": limits,
                **({"max_model_len": vllm.max_model_len} if vllm.max_model_len else {}),
            },
        },  # fmt: skip
    }
    if vllm.accelerator_type:
        config["accelerator_type"] = vllm.accelerator_type
    if options.env:
        config["runtime_env"] = {"env_vars": dict(options.env)}
    return config


def build_caption_processor(
    model_source: str, family: Family, settings: RunSettings, options: RayOptions, vllm: VLLMOptions
) -> Any:
    """Ray's vLLM processor for caption rows (:func:`window_rows`); its postprocess keeps only what the
    driver reads back, so no frames travel to the driver. Needs ``ray[data,llm]`` on the GPU nodes."""
    try:
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    except ImportError as exc:
        raise RayError(
            f"Captioning with vLLM on Ray needs Ray Data's LLM processor ({exc.name or exc}). "
            "Install it on every node with: pip install 'ray[data,llm]==2.60.0'"
        ) from exc
    config = vLLMEngineProcessorConfig(**processor_config(model_source, settings, options, vllm))
    builder: dict[str, Any] = {}
    if family.enable_thinking is not None:
        builder["chat_template_kwargs"] = {"enable_thinking": family.enable_thinking}
    return build_processor(config, postprocess=_keep_answer, builder_kwargs=builder or None)


def _keep_answer(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _KEEP} | {"generated_text": row.get("generated_text") or ""}


# -- the job ----------------------------------------------------------------------------------------------


def vllm_captions(
    vm: Any,
    settings: RunSettings,
    videos: Sequence[str | os.PathLike[str]],
    options: RayOptions,
    vllm: VLLMOptions,
    *,
    job: Callable[[], Callable[[Path, Callable[..., Caption]], Any]] | None = None,
    prompt: str | None = None,
    max_new_tokens: int | None = None,
    strict: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Caption ``videos`` with vLLM replicas on the cluster; the same contract as
    :func:`vidspan.scale.captions.caption_videos` (``job`` runs on the driver, once per video).

    Yields:
        ``(index in videos, Caption or job result or ItemFailed)`` as videos finish.
    """
    paths = [Path(v) for v in videos]
    if not paths:
        return
    source = vllm.model_source or vm.spec.checkpoint
    stop_ids = checkpoint_stop_ids(source)
    budget = max_new_tokens or vm.family.caption_max_new_tokens
    text = prompt if prompt is not None else vm.family.caption_prompt
    record = settings.to_dict() | vm.settings() | {"prompt": text, "max_new_tokens": budget} | vllm.to_dict()
    step = job() if job is not None else None
    with ray_session(options) as ray:
        check_gpus(ray, options)
        failures = ray.remote(num_cpus=0)(_Failures).remote()
        rows = functools.partial(
            _WindowRows, settings, vm.family, prompt, max_new_tokens, vllm.jpeg_quality, stop_ids, failures
        )
        ds = ray.data.from_items([{"key": i, "path": str(p)} for i, p in enumerate(paths)],
                                 override_num_blocks=min(len(paths), 10_000))  # fmt: skip
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            ds = ds.flat_map(rows(), num_cpus=options.decode_cpus, max_retries=options.max_retries)
        processor = build_caption_processor(source, vm.family, settings, options, vllm)
        pending: dict[int, list[dict[str, Any]]] = {}
        done: set[int] = set()
        try:
            for row in processor(ds).iter_rows():
                key = int(row["key"])
                if key in done:
                    continue
                if row.get(_ERROR_COLUMN):
                    done.add(key)
                    pending.pop(key, None)
                    yield key, ItemFailed(f"vLLM could not answer window {int(row['window']) + 1}: "
                                          f"{str(row[_ERROR_COLUMN]).splitlines()[0]}")  # fmt: skip
                    continue
                got = pending.setdefault(key, [])
                if all(int(r["window"]) != int(row["window"]) for r in got):
                    got.append(dict(row))
                if len(got) == int(row["windows"]):
                    done.add(key)
                    yield key, _finish(pending.pop(key), paths[key], vm.name, record, strict, step)
            reasons = ray.get(failures.reasons.remote())
        except VidspanError:
            raise
        except Exception as exc:  # the job as a whole
            raise RayError(f"The Ray job failed: {first_line(exc)}") from exc
    for key in range(len(paths)):
        if key not in done:
            yield key, ItemFailed(reasons.get(key, "vLLM returned no answer for some of its windows."))


def check_gpus(ray: Any, options: RayOptions) -> None:
    """Refuse a cluster without GPUs, where Ray Data would wait for the vLLM replicas' GPUs forever."""
    if not ray.cluster_resources().get("GPU"):
        raise RayError(
            f"Captioning with vLLM needs GPU nodes, and the Ray cluster at {options.address!r} has no GPU. "
            "Leave out --ray-vllm to caption on vidspan's model actors."
        )


def _finish(
    rows: list[dict[str, Any]], path: Path, model: str, record: dict[str, Any], strict: bool, step: Any
) -> Any:
    def run(*, strict: bool = strict) -> Caption:
        return caption_from_rows(rows, model=model, settings=record, strict=strict)

    try:
        return run() if step is None else step(path, run)
    except Exception as exc:  # per-video boundary, as in the model actors
        return ItemFailed(failure_reason(exc))


class _Failures:
    """A small actor the decode tasks tell why a video yielded no rows."""

    def __init__(self) -> None:
        self.found: dict[int, str] = {}

    def add(self, key: int, reason: str) -> None:
        self.found[key] = reason

    def reasons(self) -> dict[int, str]:
        return dict(self.found)


class _WindowRows:
    """The CPU stage: a video's window rows, or none (and its reason recorded)."""

    def __init__(self, settings: RunSettings, family: Family, prompt: str | None, max_new_tokens: int | None,
                 jpeg_quality: int, stop_ids: list[int], failures: Any):  # fmt: skip
        self.options = {"prompt": prompt, "max_new_tokens": max_new_tokens, "jpeg_quality": jpeg_quality,
                        "stop_token_ids": stop_ids}  # fmt: skip
        self.settings, self.family, self.failures = settings, family, failures

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        import ray

        try:
            return window_rows(int(row["key"]), row["path"], self.settings, self.family, **self.options)
        except Exception as exc:  # per-video boundary
            ray.get(self.failures.add.remote(int(row["key"]), failure_reason(exc)))
            return []


def checkpoint_stop_ids(source: str) -> list[int]:
    """Every end-of-sequence id a local checkpoint declares (``generation_config.json`` first, then
    ``config.json``); empty for a hub id, where vLLM applies the checkpoint's generation config itself."""
    found: list[int] = []
    for name in ("generation_config.json", "config.json"):
        file = Path(source) / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        values = [data.get("eos_token_id"), (data.get("text_config") or {}).get("eos_token_id")]
        for value in values:
            for token in value if isinstance(value, list) else [value]:
                if isinstance(token, int) and token not in found:
                    found.append(token)
    return found
