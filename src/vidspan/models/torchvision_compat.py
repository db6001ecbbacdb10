"""Import torchvision for transformers' video processors, also when its compiled ops do not match torch.

transformers 5.x video processors need torchvision's pure-Python transforms. On a CPU-only machine the
only Linux torchvision wheel on PyPI is a CUDA build, and importing it next to a CPU torch fails with
``RuntimeError: operator torchvision::nms does not exist``: two fake-kernel registrations in
``torchvision/_meta_registrations.py`` look up the schemas of ``nms`` and ``qnms``, which the unloadable
C++ extension would have defined. vidspan then defines those two schemas itself and imports torchvision
again. Everything the processors use works; ``torchvision.ops`` (detection ops) stays unusable, which
vidspan never calls. The fallback is logged once at INFO (``-v`` shows it).

- A torchvision that imports cleanly is used as it is: nothing is patched.
- A failure for any other reason, or a failure the two schemas do not cure, raises
  :class:`~vidspan.errors.MissingDependencyError` with the original cause.
- ``VIDSPAN_TORCHVISION_FALLBACK=0`` turns the fallback off (then a mismatch is an error).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from vidspan.errors import MissingDependencyError

logger = logging.getLogger(__name__)

FALLBACK_ENV = "VIDSPAN_TORCHVISION_FALLBACK"
_SCHEMA_OPS = ("nms", "qnms")
_LIBRARY: Any = None  # keeps the schema definitions alive for the life of the process
_state: dict[str, bool] = {}


def ensure_torchvision() -> bool:
    """Import torchvision, defining its two missing operator schemas when its build does not match torch.

    Returns:
        True when the fallback was applied (in this call or an earlier one), False when torchvision
        imported as it is.

    Raises:
        MissingDependencyError: torchvision is not installed, or it fails to import even with the fallback.
    """
    if "applied" in _state:
        return _state["applied"]
    import torch

    try:
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "The transformers backend needs torchvision for the video processors. Install the torchvision "
            f"build that matches torch {torch.__version__} (pip install --no-deps torchvision)."
        ) from exc
    except RuntimeError as exc:
        cause = " ".join(str(exc).split())
        if "torchvision::" not in cause or os.environ.get(FALLBACK_ENV, "1") == "0":
            raise _mismatch(torch, cause) from exc
        _apply_fallback(torch, cause)
        _state["applied"] = True
        return True
    _state["applied"] = False
    return False


def _apply_fallback(torch: Any, cause: str) -> None:
    """Define the missing schemas, forget the half-imported modules and import torchvision again."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = torch.library.Library("torchvision", "DEF")
        for op in _SCHEMA_OPS:
            _LIBRARY.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _forget_torchvision()
    try:
        import torchvision  # noqa: F401, F811
    except (ImportError, RuntimeError) as exc:
        _forget_torchvision()
        raise _mismatch(torch, cause) from exc
    logger.info(
        "torchvision %s does not match torch %s (%s); using its pure-Python transforms only "
        "(torchvision.ops is unavailable; set %s=0 to make this an error)",
        torchvision.__version__, torch.__version__, cause, FALLBACK_ENV,
    )  # fmt: skip


def _forget_torchvision() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def _mismatch(torch: Any, cause: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"torchvision does not match torch {torch.__version__} ({cause}); install the torchvision build "
        "made for this torch (for a CPU-only torch, a CPU build of torchvision)."
    )
