"""The model registry: named models, backends, and ``get_model``.

Built-in models and backends register through the same pluggy hooks a third-party plugin uses
(``[project.entry-points.vidspan]``). Entry-point plugins are loaded unless ``VIDSPAN_LOAD_PLUGINS=0``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pluggy

from vidspan.errors import ModelError, UnknownModelError
from vidspan.models import families
from vidspan.models.base import Family, ModelSpec, VideoModel

logger = logging.getLogger(__name__)

hookspec = pluggy.HookspecMarker("vidspan")
hookimpl = pluggy.HookimplMarker("vidspan")

DEFAULT_MODEL = "marlin-2b"

BackendFactory = Callable[..., VideoModel]


class _Hooks:
    @hookspec
    def register_models(self, register: Callable[[ModelSpec], None]) -> None:
        """Register named models by calling ``register(spec)``."""

    @hookspec
    def register_backends(self, register: Callable[[str, BackendFactory], None]) -> None:
        """Register backends by calling ``register(name, factory)``; ``factory(spec, **options)``."""

    @hookspec
    def register_judges(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        """Register judge backends by calling ``register(name, factory)``; ``factory(model, **options)``
        returns a :class:`~vidspan.judge.base.Judge` (``get_judge("NAME:MODEL")`` finds it)."""

    @hookspec
    def register_benchmarks(self, register: Callable[[Any], None]) -> None:
        """Register benchmarks by calling ``register(spec)`` with a
        :class:`~vidspan.eval.benchmark.BenchmarkSpec` (grounding or captions)."""


_manager: pluggy.PluginManager | None = None
_extra_plugins: list[object] = []


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built on first use)."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager("vidspan")
        pm.add_hookspecs(_Hooks)
        from vidspan.models.builtin import BuiltinPlugin

        pm.register(BuiltinPlugin(), name="vidspan-builtin")
        if os.environ.get("VIDSPAN_LOAD_PLUGINS", "1") != "0":
            pm.load_setuptools_entrypoints("vidspan")
        for plugin in _extra_plugins:
            pm.register(plugin)
        _manager = pm
    return _manager


def register_plugin(plugin: object) -> None:
    """Register a plugin object (an object with ``@hookimpl`` methods) in this process."""
    global _manager
    _extra_plugins.append(plugin)
    if _manager is not None:
        _manager.register(plugin)


def unregister_plugin(plugin: object) -> None:
    """Undo :func:`register_plugin`."""
    if plugin in _extra_plugins:
        _extra_plugins.remove(plugin)
    if _manager is not None and _manager.is_registered(plugin):
        _manager.unregister(plugin)


def list_models() -> list[ModelSpec]:
    """Every registered model, in registration order."""
    specs: list[ModelSpec] = []
    plugin_manager().hook.register_models(register=specs.append)
    return specs


def list_backends() -> dict[str, BackendFactory]:
    """Backend name → factory."""
    backends: dict[str, BackendFactory] = {}
    plugin_manager().hook.register_backends(
        register=lambda name, factory: backends.__setitem__(name, factory)
    )
    return backends


def list_judges() -> dict[str, Callable[..., Any]]:
    """Judge backend name → factory (``openai``, ``gemini`` and any plugin's)."""
    judges: dict[str, Callable[..., Any]] = {}
    plugin_manager().hook.register_judges(register=lambda name, factory: judges.__setitem__(name, factory))
    return judges


def list_benchmarks() -> list[Any]:
    """Every registered :class:`~vidspan.eval.benchmark.BenchmarkSpec`, in registration order."""
    specs: list[Any] = []
    plugin_manager().hook.register_benchmarks(register=specs.append)
    return specs


def _lookup(name: str) -> ModelSpec | None:
    key = name.strip().lower()
    for spec in list_models():
        if key == spec.name or key in spec.aliases or key == spec.checkpoint.lower():
            return spec
    return None


def _spec_from_directory(path: Path) -> ModelSpec:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path} is not a model checkpoint directory: it has no config.json.")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read {config_file}: {exc}") from exc
    architectures = " ".join(config.get("architectures") or []).lower()
    model_type = str(config.get("model_type", ""))
    family: Family | None
    if "marlin" in architectures or "marlin" in path.name.lower():
        family = families.MARLIN
    else:
        family = families.family_for_name(path.name) if "timelens" in path.name.lower() else None
        family = family or families.MODEL_TYPE_FAMILIES.get(model_type)
    if family is None:
        supported = ", ".join(sorted(families.MODEL_TYPE_FAMILIES))
        raise ModelError(
            f"Unsupported checkpoint in {path}: model_type {model_type!r}. "
            f"Supported model types: {supported}."
        )
    return ModelSpec(name=str(path), family=family, checkpoint=str(path), description="local checkpoint")


def resolve(name: str, *, family: str | None = None) -> ModelSpec:
    """Turn a model name, alias, hub id or local checkpoint directory into a :class:`ModelSpec`.

    Args:
        name: A registered name or alias (``"marlin-2b"``), a hub id (``"Qwen/Qwen3-VL-8B-Instruct"``) or a
            local directory holding a checkpoint.
        family: Force a family by name (``"qwen3-vl"``), e.g. for a served model with an unusual name.

    Raises:
        UnknownModelError: the name matches nothing; the message suggests close names.
    """
    forced = _family(family) if family else None
    spec = _lookup(name)
    if (
        spec is None
        and (os.sep in name or name.startswith(".") or Path(name).is_dir())
        and Path(name).exists()
    ):
        spec = _spec_from_directory(Path(name).expanduser().resolve())
    if spec is None and "/" in name and not Path(name).exists():
        guessed = forced or families.family_for_name(name)
        if guessed is not None:
            spec = ModelSpec(name=name, family=guessed, checkpoint=name, description="hub checkpoint")
    if spec is None:
        if forced is not None:
            return ModelSpec(name=name, family=forced, checkpoint=name)
        raise UnknownModelError(_unknown_message(name))
    return replace(spec, family=forced) if forced is not None else spec


def _family(name: str) -> Family:
    key = name.strip().lower()
    if key in families.FAMILIES:
        return families.FAMILIES[key]
    close = difflib.get_close_matches(key, list(families.FAMILIES), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"Unknown model family {name!r}.{hint} Families: {', '.join(families.FAMILIES)}.")


def _unknown_message(name: str) -> str:
    candidates: list[str] = []
    for spec in list_models():
        candidates += [spec.name, *spec.aliases]
    close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.5)
    if Path(name).suffix or os.sep in name:
        return (
            f"Unknown model {name!r}: no registered model has that name and no checkpoint directory exists "
            "there. Run 'vidspan models' to list all."
        )
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"Unknown model {name!r}.{hint} Run 'vidspan models' to list all."


def get_model(
    name: str = DEFAULT_MODEL,
    *,
    backend: str | None = None,
    base_url: str | None = None,
    family: str | None = None,
    **options: Any,
) -> VideoModel:
    """Load a model by name.

    Args:
        name: Registered name or alias, hub id, or local checkpoint directory. With ``base_url``, the name is
            also the model name sent to the server.
        backend: ``"transformers"`` (local) or ``"openai"`` (an OpenAI-compatible server). Defaults to
            ``"openai"`` when ``base_url`` is given, else ``"transformers"``.
        base_url: Base URL of an OpenAI-compatible server such as vLLM (``http://host:8000/v1``).
        family: Force the model family (prompts, time encoding, output format).
        **options: Backend options (``device``, ``dtype`` for transformers; ``api_key``, ``timeout_seconds``,
            ``input_mode``... for the HTTP backend).

    Raises:
        UnknownModelError: unknown name or backend (with suggestions).
        MissingDependencyError: the backend's optional dependencies are not installed.
        ModelUnavailableError: the weights cannot be found or downloaded.
    """
    spec, options = model_spec(name, backend=backend, base_url=base_url, family=family, **options)
    logger.info("loading %s (%s backend, %s family)", spec.name, spec.backend, spec.family.name)
    return list_backends()[spec.backend](spec, **options)


def model_spec(
    name: str = DEFAULT_MODEL,
    *,
    backend: str | None = None,
    base_url: str | None = None,
    family: str | None = None,
    **options: Any,
) -> tuple[ModelSpec, dict[str, Any]]:
    """What :func:`get_model` would load, without loading it: the spec (with its backend) and the
    backend's options. Ray jobs describe the model on the driver this way and load it in each worker.

    Raises:
        UnknownModelError: unknown name or backend (with suggestions).
    """
    spec: ModelSpec | None = None
    if base_url is None and backend in (None, "transformers"):
        spec = resolve(name, family=family)
    backend_name = backend or ("openai" if base_url else spec.backend if spec else "transformers")
    backends = list_backends()
    if backend_name not in backends:
        close = difflib.get_close_matches(backend_name, list(backends), n=2, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"Unknown backend {backend_name!r}.{hint} Backends: {', '.join(backends)}.")
    if backend_name == "openai":
        spec = _served_spec(name, family)
        options["base_url"] = base_url
        options.setdefault("served_model", name)
    else:
        if base_url:
            raise ValueError(f"Invalid base_url: {base_url!r}. It is only used with the openai backend.")
        spec = spec or resolve(name, family=family)
    return replace(spec, backend=backend_name), options


def _served_spec(name: str, family: str | None) -> ModelSpec:
    """A server may call its model anything: use the registry when it can, a name guess or ``family`` else."""
    try:
        return resolve(name, family=family)
    except (UnknownModelError, ModelError):
        guessed = families.family_for_name(name)
        if guessed is None:
            raise UnknownModelError(
                f"Cannot tell the family of served model {name!r}. Pass --family "
                f"({', '.join(families.FAMILIES)})."
            ) from None
        return ModelSpec(name=name, family=guessed, checkpoint=name)
