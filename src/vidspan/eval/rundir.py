"""The one run directory every evaluation writes: a typed, versioned header, append-only JSONL, a lock.

Grounding runs, caption generation, AutoDQ, reference audits and pairwise comparisons all open their
directory with :meth:`RunDir.open`. A run directory holds:

- ``header.json``: a :class:`RunHeader` (``format_version``, ``kind``, ``identity``, ``status``, library
  versions, git commit, start and finish times) plus the fields that kind of run records;
- append-only JSONL files (one record per finished sample) and small JSON or text files, each written
  atomically, so an interrupted run never leaves a half-written file in place of a whole one;
- ``.lock``: held (``flock``) by the one process writing the run, so a second writer is refused.

``identity`` holds every setting that changes the results, derived from the settings objects themselves
(``dataclasses.asdict``), never listed by hand. Opening a directory that holds a run of another kind or
identity is refused with one sentence naming what differs; opening it with the same identity resumes it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from vidspan.errors import RunError

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "HEADER",
    "RunDir",
    "RunError",
    "RunHeader",
    "finished_ids",
    "git_sha",
    "now",
    "read_records",
    "versions",
    "write_json",
]

FORMAT_VERSION = 1
"""The version of the run-directory format this code writes (``header.json``'s ``format_version``)."""
HEADER = "header.json"
LOCK = ".lock"
Status = Literal["started", "finished"]


@dataclass(frozen=True, slots=True)
class RunHeader:
    """The part of ``header.json`` every kind of run shares (field order is the file's key order).

    Attributes:
        kind: What ran: ``"grounding"``, ``"captions"``, ``"caption-eval"``, ``"reference-audit"``,
            ``"pairwise"``...
        identity: Every setting that changes the results; a run resumes only under the same identity.
        status: ``"started"`` until the run writes its results, then ``"finished"``.
        versions: Python and library versions of the first session.
        git_sha: The vidspan commit, when run from a git checkout.
        started_at: When the run was created (UTC, ISO 8601).
        finished_at: When its results were last written, or ``None``.
        format_version: :data:`FORMAT_VERSION` of the writer.
    """

    kind: str
    identity: dict[str, Any]
    status: Status = "started"
    versions: dict[str, str] = field(default_factory=dict)
    git_sha: str | None = None
    started_at: str = ""
    finished_at: str | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The header fields in file order."""
        return {
            "format_version": self.format_version, "kind": self.kind, "status": self.status,
            "identity": self.identity, "versions": self.versions, "git_sha": self.git_sha,
            "started_at": self.started_at, "finished_at": self.finished_at,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunHeader:
        """The shared fields of a ``header.json`` (other fields are the run kind's own)."""
        return cls(
            kind=str(data.get("kind", "")),
            identity=dict(data.get("identity") or {}),
            status="finished" if data.get("status") == "finished" or data.get("finished_at") else "started",
            versions=dict(data.get("versions") or {}),
            git_sha=data.get("git_sha"),
            started_at=str(data.get("started_at") or data.get("created") or ""),
            finished_at=data.get("finished_at"),
            format_version=int(data.get("format_version") or FORMAT_VERSION),
        )


class RunDir:
    """An open run directory, locked for this process until :meth:`close` (or the ``with`` block ends).

    Use :meth:`open`; ``header`` is the whole ``header.json`` as a dict (the shared :class:`RunHeader`
    fields plus the run kind's own), saved with :meth:`save_header`.
    """

    def __init__(self, directory: Path, header: dict[str, Any], lock: IO[str] | None, resumed: bool):
        self.directory = directory
        self.header = header
        self.resumed = resumed
        self._lock = lock

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], kind: str, identity: dict[str, Any], **fields: Any
    ) -> RunDir:
        """Create a run directory with its header, or reopen the run of the same kind and identity in it.

        Args:
            directory: New, empty, or holding a run to resume.
            kind: The kind of run (recorded, and checked on resume).
            identity: Every setting that changes the results (made JSON-plain before comparing).
            **fields: More header fields of this kind of run (written when the run is created).

        Raises:
            RunError: The directory holds a run of another kind or with other settings, other files, an
                unreadable header, or another process is writing it.
        """
        directory = Path(directory)
        identity = _plain(identity)
        header_path = directory / HEADER
        if not header_path.exists() and directory.exists():
            others = [p.name for p in directory.iterdir() if p.name != LOCK]
            if others:
                raise RunError(
                    f"{directory} is not empty and holds no vidspan run; choose an empty or new directory."
                )
        directory.mkdir(parents=True, exist_ok=True)
        lock = _lock(directory)
        try:
            if header_path.exists():
                header = _read_header(header_path)
                _check_same_run(directory, header, kind, identity)
                logger.info("resuming the run in %s", directory)
                return cls(directory, header, lock, resumed=True)
            base = RunHeader(kind, identity, versions=versions(), git_sha=git_sha(), started_at=now())
            header = base.to_dict() | fields
            write_json(header_path, header)
            return cls(directory, header, lock, resumed=False)
        except BaseException:
            _unlock(lock)
            raise

    @property
    def info(self) -> RunHeader:
        """The shared header fields, typed."""
        return RunHeader.from_dict(self.header)

    def path(self, name: str) -> Path:
        """A file of the run."""
        return self.directory / name

    def records(self, name: str) -> dict[str, dict[str, Any]]:
        """The records of JSONL file ``name`` by id (see :func:`read_records`)."""
        return read_records(self.path(name))

    def finished_ids(self, name: str) -> set[str]:
        """Ids finished without error in ``name`` (see :func:`finished_ids`)."""
        return finished_ids(self.path(name))

    @contextmanager
    def appending(self, name: str) -> Iterator[Any]:
        """``with run.appending("samples.jsonl") as append: append(record)``: one flushed line per record."""
        with self.path(name).open("a", encoding="utf-8") as out:

            def append(record: dict[str, Any]) -> None:
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                out.flush()

            yield append

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write ``name`` atomically."""
        write_json(self.path(name), data)

    def write_text(self, name: str, text: str) -> None:
        """Write ``name`` atomically."""
        tmp = self.path(name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path(name))

    def save_header(self) -> None:
        """Write the (changed) header atomically."""
        write_json(self.path(HEADER), self.header)

    def finish(self) -> None:
        """Stamp the header finished (``status``, ``finished_at``) and save it."""
        self.header["status"] = "finished"
        self.header["finished_at"] = now()
        self.save_header()

    def close(self) -> None:
        """Release the lock (the directory stays as it is)."""
        _unlock(self._lock)
        self._lock = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_same_run(directory: Path, header: dict[str, Any], kind: str, identity: dict[str, Any]) -> None:
    if header.get("kind") != kind:
        raise RunError(
            f"{directory} holds a {header.get('kind') or 'different'} run, not a {kind} run; use another "
            "output directory."
        )
    if header.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise RunError(
            f"{directory} holds a run in format version {header.get('format_version')!r}; this vidspan "
            f"reads version {FORMAT_VERSION}. Use another output directory."
        )
    old = header.get("identity")
    if not isinstance(old, dict):  # written before identities were recorded: the same keys at the top
        old = {key: header.get(key) for key in identity}
    changed = [key for key in sorted(set(identity) | set(old)) if _plain(old.get(key)) != identity.get(key)]
    if changed:
        raise RunError(
            f"{directory} holds a run made with other settings ({', '.join(changed)}); use another "
            "output directory to start a new run, or the same settings to resume it."
        )


def _read_header(path: Path) -> dict[str, Any]:
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"Cannot read {path}: {exc}") from None
    if not isinstance(header, dict):
        raise RunError(f"Cannot read {path}: it is not a JSON object.")
    return header


def _lock(directory: Path) -> IO[str] | None:
    """Hold ``directory/.lock`` exclusively for this process, or refuse with the holder's pid."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        logger.debug("no fcntl here: %s is not locked against a second writer", directory)
        return None
    handle = (directory / LOCK).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunError(
            f"{directory} is being written by another vidspan process (pid {holder}); wait for it to "
            "finish or use another output directory."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _unlock(handle: IO[str] | None) -> None:
    if handle is not None and not handle.closed:
        handle.close()  # closing the descriptor releases the flock


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples become lists, keys sorted, paths strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """A JSONL file as ``{id: record}``: a later line for an id wins; a torn last line is skipped.

    Raises:
        RunError: A line other than the last is not JSON, or a line is not a record with an ``id``.
    """
    records: dict[str, dict[str, Any]] = {}
    if not path.is_file():
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
            raise RunError(
                f"{path} line {number} is not JSON ({exc}); fix or delete the line to resume."
            ) from None
        if not isinstance(record, dict) or "id" not in record:
            raise RunError(f"{path} line {number} is not a sample record (no 'id').")
        records[str(record["id"])] = record
    return records


def finished_ids(path: Path) -> set[str]:
    """Ids of records that finished without error; a torn last line is cut off so appends stay valid."""
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
    """The current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Python and the versions of the libraries that move results."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    packages = ("vidspan", "transformers", "torch", "av", "numpy", "trl", "peft", "datasets", "accelerate")
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_sha() -> str | None:
    """The vidspan checkout's commit, or ``None`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
