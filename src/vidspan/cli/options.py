"""Command-line options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

F = Callable[..., Any]

MODEL = click.option(
    "-m", "--model", envvar="VIDSPAN_MODEL", default="marlin-2b", show_default=True,
    help="Model name or alias (see 'vidspan models'), hub id, or checkpoint directory.",
)  # fmt: skip
FAMILY = click.option(
    "--family", default=None, help="Force the model family (marlin, qwen3.5, qwen3-vl, qwen2.5-vl, timelens)."
)

BACKEND = (
    click.option("--device", default=None,
                 help="Device for local models: cpu, cuda, cuda:1 (default: cuda if available)."),
    click.option("--dtype", default=None,
                 help="Weights dtype for local models (default: bfloat16 on CUDA, float32 on CPU)."),
    click.option("--base-url", envvar="VIDSPAN_BASE_URL", default=None,
                 help="Use an OpenAI-compatible server (vLLM...) at this URL, e.g. http://localhost:8000/v1."),
    click.option("--api-key", envvar="VIDSPAN_API_KEY", default=None, help="API key for --base-url."),
    click.option("--input-mode", type=click.Choice(["video", "frames", "images"]), default=None,
                 help="How --base-url servers get the video: the file, timestamped JPEG frames, or images."),
    FAMILY,
)  # fmt: skip

SAMPLING = (
    click.option("--fps", type=float, default=None, help="Sampling rate, frames per second [default: 2.0]."),
    click.option("--min-frames", type=int, default=None, help="Fewest frames per window [default: 4]."),
    click.option("--max-frames", type=int, default=None, help="Most frames per window [default: 240]."),
    click.option("--max-pixels", type=int, default=None, help="Pixel budget per frame [default: 200704]."),
    click.option("--window", "window_seconds", type=float, default=None,
                 help="Seconds per model window for long videos [default: max-frames / fps]."),
    click.option("--overlap", "overlap_seconds", type=float, default=None,
                 help="Seconds of overlap between windows [default: 10]."),
)  # fmt: skip

MAX_NEW_TOKENS = click.option(
    "--max-new-tokens", type=int, default=None, help="Generation budget (default: the model's)."
)
NO_PROGRESS = click.option("--no-progress", is_flag=True, help="Do not print progress to stderr.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def apply(*groups: click.Option | Sequence[Any]) -> Callable[[F], F]:
    """A decorator applying options (or groups of options) in the order given, as they appear in --help."""
    flat: list[Any] = []
    for group in groups:
        flat.extend(group if isinstance(group, (list, tuple)) else [group])

    def decorate(f: F) -> F:
        for option in reversed(flat):
            f = option(f)
        return f

    return decorate


LLM = (
    click.option("--llm", "llm", envvar="VIDSPAN_LLM", default=None, metavar="BACKEND:MODEL",
                 help="The language model that writes the answer: openai:MODEL (any OpenAI-compatible "
                      "server with --llm-base-url, e.g. vLLM or llama.cpp) or gemini:MODEL "
                      "(also $VIDSPAN_LLM)."),
    click.option("--llm-base-url", envvar="VIDSPAN_LLM_BASE_URL", default=None,
                 help="The language model's server, e.g. http://127.0.0.1:8000/v1 "
                      "(also $VIDSPAN_LLM_BASE_URL)."),
)  # fmt: skip


def llm_judge(params: dict[str, Any], *, required: bool = True) -> Any:
    """Pop the ``LLM`` options: the judge object that writes answers (checked before any work), or
    ``None`` when not given and not ``required``."""
    from vidspan.judge import get_judge

    spec, base_url = params.pop("llm"), params.pop("llm_base_url", None)
    if spec is None:
        if required:
            raise click.UsageError("Missing option '--llm' (BACKEND:MODEL, or set $VIDSPAN_LLM).")
        return None
    return get_judge(spec, **({"base_url": base_url} if base_url else {}))


RAY = (
    click.option("--ray", "ray_local", is_flag=True,
                 help="Run on Ray: start a cluster on this machine (pip install 'vidspan[ray]')."),
    click.option("--ray-address", default=None, envvar="VIDSPAN_RAY_ADDRESS",
                 help="Run on the Ray cluster at this address: auto, ray://head:10001 or head:6379."),
    click.option("--ray-workers", type=click.IntRange(min=1), default=None,
                 help="Model replicas on Ray, one actor each [default: 1]."),
    click.option("--ray-gpus", type=click.FloatRange(min=0), default=None,
                 help="GPUs per model replica on Ray [default: 0]."),
)  # fmt: skip


RAY_VLLM = (
    click.option("--ray-vllm", is_flag=True,
                 help="Caption with vLLM replicas through Ray Data's LLM processor (GPU nodes with "
                      "ray[data,llm]); --ray-workers sets the replicas."),
    click.option("--vllm-batch-size", type=click.IntRange(min=1), default=None,
                 help="Windows per batch sent to a vLLM replica [default: 16]."),
    click.option("--vllm-max-model-len", type=click.IntRange(min=1), default=None,
                 help="vLLM's context length [default: the checkpoint's]."),
    click.option("--vllm-engine-kwargs", default=None, metavar="JSON",
                 help='Further vLLM engine arguments, e.g. \'{"tensor_parallel_size": 2}\'.'),
)  # fmt: skip


def ray_options(params: dict[str, Any]) -> Any:
    """Pop the ``RAY`` options from ``params``: a :class:`vidspan.scale.RayOptions`, or ``None`` without
    ``--ray`` / ``--ray-address``. Ray's own progress bars and INFO logs stay off stderr unless ``-v``."""
    import logging
    import os

    local, address = params.pop("ray_local", False), params.pop("ray_address", None)
    workers, gpus = params.pop("ray_workers", None), params.pop("ray_gpus", None)
    vllm = _vllm_options(params)
    if not local and address is None:
        if workers is not None or gpus is not None or vllm is not None:
            raise click.UsageError("--ray-workers, --ray-gpus and --ray-vllm need --ray or --ray-address.")
        return None
    from vidspan.scale.ray import LOCAL, RayOptions

    if not logging.getLogger("vidspan").isEnabledFor(logging.INFO):
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    return RayOptions(address=address or LOCAL, workers=workers or 1, num_gpus=gpus or 0.0, vllm=vllm)


def _vllm_options(params: dict[str, Any]) -> Any:
    """Pop the ``RAY_VLLM`` options: a :class:`vidspan.scale.vllm.VLLMOptions`, or ``None`` without
    ``--ray-vllm``."""
    import json

    on = params.pop("ray_vllm", False)
    given = {k: params.pop(f"vllm_{k}", None) for k in ("batch_size", "max_model_len", "engine_kwargs")}
    if not on:
        if any(v is not None for v in given.values()):
            raise click.UsageError(
                "--vllm-batch-size, --vllm-max-model-len and --vllm-engine-kwargs need --ray-vllm."
            )
        return None
    from vidspan.scale.vllm import VLLMOptions

    if given["engine_kwargs"] is not None:
        try:
            given["engine_kwargs"] = json.loads(given["engine_kwargs"])
        except ValueError as exc:
            raise click.BadParameter(f"not JSON ({exc})", param_hint="--vllm-engine-kwargs") from None
        if not isinstance(given["engine_kwargs"], dict):
            raise click.BadParameter("must be a JSON object", param_hint="--vllm-engine-kwargs")
    try:
        return VLLMOptions(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
