"""Deprecated: ``vidspan.index`` is now :mod:`vidspan.library` (kept for one release).

``import vidspan.index.store`` and the other old module paths still work: each is the new module under its
old name (``store`` is :mod:`vidspan.library.sqlite`, ``sql_reads`` is :mod:`vidspan.library.sql`), with a
:class:`DeprecationWarning` once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

from vidspan.library import *  # noqa: F403
from vidspan.library import __all__  # noqa: F401

_RENAMED = {"store": "sqlite", "sql_reads": "sql"}
_MODULES = (
    "types", "store", "postgres", "sql_reads", "vectors", "migrations", "embed", "indexer", "refine", "open",
)  # fmt: skip

warnings.warn(
    "vidspan.index is renamed vidspan.library; import from vidspan.library (vidspan.index goes in 0.3).",
    DeprecationWarning,
    stacklevel=2,
)


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``vidspan.index.<old>`` → the ``vidspan.library`` module that replaced it."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in _MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:  # noqa: ANN001
        name = spec.name.rpartition(".")[2]
        module = importlib.import_module(f"vidspan.library.{_RENAMED.get(name, name)}")
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        return None


if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
    sys.meta_path.insert(0, _OldPaths())
