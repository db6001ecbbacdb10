"""Run directories shared by every evaluation: atomic JSON files, append-only JSONL, versions.

A run directory is append-only JSONL plus small JSON files written atomically, so an interrupted run
never leaves a half-written file in place of a whole one and can be resumed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from vidspan.errors import VidspanError

logger = logging.getLogger(__name__)


class RunError(VidspanError):
    """A run directory cannot be used (settings differ from the run being resumed, broken files)."""


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """``samples.jsonl`` as ``{id: record}``: a later line for an id wins; a torn last line is skipped."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                logger.warning("%s: skipping a torn last line (an interrupted run)", path)
                continue
            raise RunError(f"{path} line {number} is not JSON: {exc}") from exc
        records[record["id"]] = record
    return records


def finished_ids(path: Path) -> set[str]:
    """Ids of samples that finished without error; a torn last line is cut off so appends stay valid."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            logger.warning("%s: removing a torn last line left by an interrupted run", path)
            with path.open("r+b") as f:
                f.truncate(keep)
    return {i for i, r in read_records(path).items() if not r.get("error")}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a crash never leaves a half-written file in place of a whole one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("vidspan", "transformers", "torch", "av", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
