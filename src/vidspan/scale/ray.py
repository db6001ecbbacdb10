"""Running a batch job's items on a Ray cluster with Ray Data: decode on CPU tasks, answer on model actors.

Every vidspan batch job (index, eval grounding, eval generate-captions, annotate) has the same shape: a
list of items (a video, or a video and its queries), a CPU step that probes and decodes each item's
windows, and a model step that needs a loaded model. :func:`run_items` runs that shape as one Ray Data
pipeline::

    from_items(items) -> map(decode)           # CPU tasks, `decode_cpus` each, retried on failure
                      -> map(Answer, actors)   # an actor pool, one model replica per actor
                      -> iter_rows()           # back on the driver, in completion order

The driver stays the only writer of the run directory (the jobs append each result as it arrives), so a
run on Ray resumes like a single-process run and never writes a sample twice. An item whose decode or
answer raises comes back as :class:`ItemFailed` (its row fails, not the job); an actor whose process dies
is restarted by Ray and its unfinished rows are retried (``max_retries``), and Ray Data emits a retried
row's output only once.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidspan.errors import MissingDependencyError, VidspanError

if TYPE_CHECKING:
    from vidspan.scale.vllm import VLLMOptions

logger = logging.getLogger(__name__)

__all__ = [
    "ItemFailed", "RayError", "RayOptions", "failure_reason", "first_line", "import_ray", "ray_session",
    "run_items",
]  # fmt: skip

LOCAL = "local"
"""``RayOptions.address`` that starts a cluster on this machine (``vidspan ... --ray``)."""


class RayError(VidspanError):
    """The Ray cluster cannot be reached or the job failed as a whole (not one item)."""


@dataclass(frozen=True, slots=True)
class ItemFailed:
    """An item whose decode or answer raised; ``reason`` is the one-line message recorded for it."""

    reason: str


@dataclass(frozen=True, slots=True)
class RayOptions:
    """Where and how a job runs on Ray.

    Attributes:
        address: ``"local"`` starts a cluster on this machine (stopped when the job ends); ``"auto"`` joins
            the cluster this machine belongs to; ``"ray://host:10001"`` or ``"host:6379"`` joins that one.
        workers: Model actors (one model replica each).
        num_gpus: GPUs per model actor (0 on CPU machines; 1 for one replica per GPU).
        num_cpus: CPUs reserved per model actor.
        decode_cpus: CPUs reserved per decode task.
        local_cpus: CPUs a local cluster advertises (default: enough for every actor and one decode task,
            at least this machine's cores, so the actors cannot starve the decoders).
        max_retries: Restarts of a dead actor, and retries of its unfinished rows and of failed tasks.
        env: Environment variables for every worker (``runtime_env``'s ``env_vars``).
        vllm: Caption with vLLM replicas through Ray Data's LLM processor instead of vidspan's model
            actors (:class:`vidspan.scale.vllm.VLLMOptions`; captioning jobs only).
    """

    address: str = LOCAL
    workers: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    decode_cpus: float = 1.0
    local_cpus: float | None = None
    max_retries: int = 3
    env: Mapping[str, str] = field(default_factory=dict)
    vllm: VLLMOptions | None = None

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("Invalid address: ''. It must be 'local', 'auto' or a cluster address.")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"Invalid workers: {self.workers!r}. It must be an integer >= 1.")
        for name in ("num_gpus", "num_cpus", "decode_cpus"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"Invalid {name}: {getattr(self, name)}. It must be >= 0.")
        if self.local_cpus is not None and not self.local_cpus > 0:
            raise ValueError(f"Invalid local_cpus: {self.local_cpus}. It must be > 0.")
        if self.max_retries < 0:
            raise ValueError(f"Invalid max_retries: {self.max_retries}. It must be >= 0.")

    def to_dict(self) -> dict[str, Any]:
        """What a run records about where it ran (never the environment's values)."""
        where = {"address": self.address, "workers": self.workers, "num_gpus": self.num_gpus,
                 "num_cpus": self.num_cpus, "decode_cpus": self.decode_cpus}  # fmt: skip
        return where | ({"vllm": self.vllm.to_dict()} if self.vllm is not None else {})


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a :class:`MissingDependencyError` with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"Running on Ray needs Ray Data ({exc.name or exc}). Install it with: pip install 'vidspan[ray]'"
        ) from exc
    return ray


@contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Connect to (or start) the cluster ``options`` names; a session already open in this process is reused.

    A local cluster listens on loopback only, without Ray's token authentication (``RAY_AUTH_MODE``,
    on by default since Ray 2.60, would otherwise write ``~/.ray/auth_token``), without the dashboard,
    and is shut down when the block ends.
    """
    # Ray's and Ray Data's driver logs follow vidspan's level (INFO only with -v), not their INFO default;
    # Ray Data reads its level when first imported
    level = logging.getLogger("vidspan").getEffectiveLevel()
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", logging.getLevelName(level))
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    runtime_env = {"env_vars": dict(options.env)} if options.env else None
    kwargs: dict[str, Any] = {"log_to_driver": False, "runtime_env": runtime_env, "logging_level": level}
    if options.address == LOCAL:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        need = options.workers * options.num_cpus + options.decode_cpus
        kwargs |= {
            "num_cpus": options.local_cpus or max(float(os.cpu_count() or 1), need),
            "num_gpus": None if options.num_gpus else 0,
            "include_dashboard": False,
            "object_store_memory": 512 * 1024**2,
            "_node_ip_address": "127.0.0.1",
        }
    else:
        kwargs["address"] = options.address
    try:
        ray.init(**kwargs)
    except Exception as exc:  # connection refused, version mismatch, bad address: one sentence
        raise RayError(
            f"Cannot start or join the Ray cluster at {options.address!r}: {first_line(exc)}"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def run_items(
    items: Sequence[Any],
    *,
    decode: Callable[[Any], Any],
    load: Callable[[], Callable[[Any, Any], Any]],
    options: RayOptions,
) -> Iterator[tuple[int, Any]]:
    """Run every item through ``decode`` (CPU tasks) and the answer ``load()`` builds (model actors).

    Args:
        items: Picklable items (a video path, a video and its samples...).
        decode: ``decode(item) -> decoded``, on a CPU task (probe and decode the item's windows).
        load: Called once in each actor (load the model); returns ``answer(item, decoded) -> result``.
        options: The cluster and the resources of each stage; a session must be open
            (:func:`ray_session`).

    Yields:
        ``(index of the item, result or ItemFailed)`` as results arrive, each item exactly once.

    Raises:
        RayError: the job failed as a whole (an actor kept dying, the cluster went away).
    """
    if not items:
        return
    ray = import_ray()
    rows = [{"key": i, "blob": pickle.dumps(item)} for i, item in enumerate(items)]
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 10_000))  # one row per task
    actor_args: dict[str, Any] = {
        "max_restarts": options.max_retries,
        "max_task_retries": options.max_retries,
    }
    # Ray 2.60 has no named parameter for bounded retries and restarts (its default, -1, retries an actor
    # that dies on every row forever): they go in as the ray_remote_args it now calls deprecated
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = ds.map(_Decode(decode), num_cpus=options.decode_cpus, max_retries=options.max_retries)
        ds = ds.map(
            _Answer, fn_constructor_args=(load,), compute=ray.data.ActorPoolStrategy(size=options.workers),
            num_cpus=options.num_cpus, num_gpus=options.num_gpus or None, **actor_args,
        )  # fmt: skip
    seen: set[int] = set()
    try:
        for row in ds.iter_rows():
            key = int(row["key"])
            if key in seen:  # Ray Data emits a row once; this only guards the writers
                continue
            seen.add(key)
            yield key, pickle.loads(row["blob"])
    except VidspanError:
        raise
    except Exception as exc:  # a Ray failure of the whole job
        raise RayError(f"The Ray job failed: {first_line(exc)}") from exc


class _Decode:
    """The CPU stage: ``decode(item)``, or the item's failure."""

    def __init__(self, decode: Callable[[Any], Any]):
        self.decode = decode

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        item = pickle.loads(row["blob"])
        try:
            decoded = self.decode(item)
        except Exception as exc:  # per-item boundary: the item fails, the job goes on
            decoded = ItemFailed(failure_reason(exc))
        return {"key": row["key"], "blob": pickle.dumps((item, decoded))}


class _Answer:
    """The model stage: one loaded model per actor, one answer per row."""

    def __init__(self, load: Callable[[], Callable[[Any, Any], Any]]):
        self.answer = load()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        item, decoded = pickle.loads(row["blob"])
        result = decoded
        if not isinstance(decoded, ItemFailed):
            try:
                result = self.answer(item, decoded)
            except Exception as exc:  # per-item boundary
                result = ItemFailed(failure_reason(exc))
        return {"key": row["key"], "blob": pickle.dumps(result)}


def failure_reason(exc: BaseException) -> str:
    """The one line recorded for a failed item (vidspan's own message, or the exception's type and text)."""
    return str(exc) if isinstance(exc, VidspanError) else f"{type(exc).__name__}: {exc}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[-1] if "Traceback" in text else text.splitlines()[0]
