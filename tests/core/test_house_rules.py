"""Rules of the codebase that a reviewer would otherwise have to remember."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import vidspan

PACKAGE = Path(vidspan.__file__).parent


def test_modules_stay_small_and_named_by_content():
    too_long = {}
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        if lines > 800:
            too_long[str(path.relative_to(PACKAGE))] = lines
        assert path.stem not in {"utils", "helpers", "common", "misc"}, (
            f"{path}: name modules by their content"
        )
    assert not too_long, f"modules over the 800-line limit: {too_long}"


def test_core_import_does_not_import_torch_or_transformers():
    code = (
        "import sys, vidspan, vidspan.cli.main, vidspan.parse, vidspan.video; "
        "heavy = [m for m in ('torch', 'transformers', 'torchvision') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_public_namespace_is_curated():
    assert len(vidspan.__all__) <= 25
    for name in vidspan.__all__:
        assert hasattr(vidspan, name), name


def test_library_never_prints_or_exits():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"(?<![\w.])print\(|\bsys\.exit\(", code):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}")
    assert not offenders, offenders
