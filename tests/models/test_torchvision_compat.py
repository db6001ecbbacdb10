"""The torchvision fallback the transformers backend applies itself (fresh interpreters: no shared state)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

PROBE = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
    "from vidspan.models.torchvision_compat import ensure_torchvision\n"
    "first = ensure_torchvision(); second = ensure_torchvision()\n"
    "import torchvision.transforms.functional as F, torch\n"
    "out = F.resize(torch.zeros(1, 3, 8, 8), [4, 4], antialias=True)\n"
    "print(first, second, tuple(out.shape))\n"
)


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=base | env
    )


@pytest.fixture(scope="module")
def plain_import_fails() -> bool:
    return python("import torchvision").returncode != 0


def test_fallback_only_when_needed_and_logged_once(plain_import_fails):
    done = python(PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(plain_import_fails)] * 2 + ["(1,", "3,", "4,", "4)"]
    assert done.stderr.count("using its pure-Python transforms only") == (1 if plain_import_fails else 0)


def test_fallback_can_be_turned_off(plain_import_fails):
    if not plain_import_fails:
        pytest.skip("torchvision matches torch here: there is nothing to turn off")
    code = (
        "from vidspan.errors import MissingDependencyError\n"
        "from vidspan.models.torchvision_compat import ensure_torchvision\n"
        "try:\n    ensure_torchvision()\nexcept MissingDependencyError as exc:\n    print(exc)\n"
    )
    done = python(code, VIDSPAN_TORCHVISION_FALLBACK="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("torchvision does not match torch ") and "torchvision::nms" in done.stdout
