"""The model of a Ray job: described on the driver, loaded once in every model actor.

The driver never loads the weights (it may have no GPU): :func:`remote_model` resolves the name the way
:func:`vidspan.get_model` would (a bad name or checkpoint fails here, before the cluster starts) and gives
a :class:`RemoteModel` with the same name, family and base settings, which is all a run's identity and
header need. Each actor then calls :meth:`RemoteModel.load`. A model passed already loaded (a test
double, a model built in code) travels to the actors pickled.
"""

from __future__ import annotations

from typing import Any

from vidspan.errors import VidspanError
from vidspan.models.base import Generation, ModelSpec, VideoModel
from vidspan.types import Clip

__all__ = ["RemoteModel", "loaded", "remote_model"]


class RemoteModel(VideoModel):
    """A model that runs in Ray actors: it names the model here and loads it there."""

    def __init__(
        self, spec: ModelSpec, name: str, options: dict[str, Any], instance: VideoModel | None = None
    ):
        self.spec = spec
        self.given_name = name
        self.options = dict(options)
        self.instance = instance

    def load(self) -> VideoModel:
        """The real model, in the calling process (a model actor)."""
        if self.instance is not None:
            return self.instance
        from vidspan.windows import load_model

        return load_model(self.given_name, **self.options)

    def generate(self, clip: Clip, prompt: str, *, max_new_tokens: int) -> Generation:
        raise VidspanError(f"{self.name} runs in the Ray workers, not in the driver.")

    def settings(self) -> dict[str, Any]:
        if self.instance is not None:
            return self.instance.settings()
        return super().settings()


def remote_model(model: Any, **model_options: Any) -> RemoteModel:
    """Describe ``model`` (a name, checkpoint or loaded :class:`VideoModel`) for a Ray job without loading it.

    Raises:
        UnknownModelError: the name or backend matches nothing.
        ModelError: a checkpoint directory that cannot be a model.
    """
    from vidspan.models.registry import DEFAULT_MODEL, model_spec

    if isinstance(model, RemoteModel):
        return model
    if isinstance(model, VideoModel):
        if model_options:
            raise TypeError(
                f"Invalid model options: {sorted(model_options)}. "
                "They only apply when the model is given by name."
            )
        return RemoteModel(model.spec, model.name, {}, instance=model)
    given = {k: v for k, v in model_options.items() if v is not None}
    name = model or DEFAULT_MODEL
    spec, _ = model_spec(name, **dict(given))
    return RemoteModel(spec, name, given)


def loaded(vm: VideoModel) -> VideoModel:
    """In a model actor: the real model behind ``vm`` (loaded once per process), or ``vm`` itself."""
    return vm.load() if isinstance(vm, RemoteModel) else vm
