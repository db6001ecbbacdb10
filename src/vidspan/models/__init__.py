"""Model families, backends and the registry."""

from vidspan.models.base import Family, Generation, ModelSpec, VideoModel
from vidspan.models.registry import (
    DEFAULT_MODEL,
    get_model,
    hookimpl,
    list_backends,
    list_models,
    register_plugin,
    resolve,
    unregister_plugin,
)

__all__ = [
    "DEFAULT_MODEL",
    "Family",
    "Generation",
    "ModelSpec",
    "VideoModel",
    "get_model",
    "hookimpl",
    "list_backends",
    "list_models",
    "register_plugin",
    "resolve",
    "unregister_plugin",
]
