"""The torchvision fallback for tests and benchmarks that import torchvision directly.

It is the library's own :func:`vidspan.models.torchvision_compat.ensure_torchvision`; the transformers
backend applies it itself, so only code that imports torchvision (or qwen-vl-utils) before loading a
model needs to call it.
"""

from __future__ import annotations

from vidspan.models.torchvision_compat import ensure_torchvision

__all__ = ["ensure_torchvision"]
