"""Make PyPI's CUDA-built torchvision importable next to a CPU torch (tests and benchmarks only).

PyPI's only Linux torchvision wheel is a CUDA build whose compiled ops fail to load beside CPU torch;
importing it then raises ``RuntimeError: operator torchvision::nms does not exist`` from two fake-kernel
registrations. Defining those two schemas first lets the pure-Python transforms import, which is all
transformers' video processors and qwen-vl-utils use. ``torchvision.ops`` stays unusable.
The library never calls this: on machines with a matching torchvision it is not needed.
"""

from __future__ import annotations

import sys
from typing import Any

_LIBRARY: Any = None  # keeps the schema definitions alive for the life of the process


def ensure_torchvision() -> bool:
    """Import torchvision, defining the missing operator schemas when needed.

    Returns:
        True when the workaround had to be applied.
    """
    global _LIBRARY
    import torch

    try:
        import torchvision  # noqa: F401

        return False
    except RuntimeError:
        pass
    if _LIBRARY is None:
        _LIBRARY = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _LIBRARY.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torchvision  # noqa: F401, F811

    return True
