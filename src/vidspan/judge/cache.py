"""The judge-reply cache: one SQLite file mapping a request's key to the judge's reply.

A key is the sha256 of the judge's identity (backend, model, decoding settings, endpoint) and the request's
fingerprint (prompt, system text, frames, JSON mode, sample and retry indices), so a re-run of an
evaluation asks the judge only what it has not answered before, and costs nothing for the rest. The file
is in WAL mode, so several processes can share it; one object can be shared by threads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from vidspan.errors import JudgeCacheError
from vidspan.judge.base import JudgeReply, JudgeRequest, JudgeSettings

logger = logging.getLogger(__name__)

CACHE_FILE_NAME = "judge-cache.sqlite"
SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 30_000


def default_cache_path() -> Path:
    """``$VIDSPAN_USER_PATH/judge-cache.sqlite`` (``VIDSPAN_USER_PATH`` defaults to ``~/.cache/vidspan``)."""
    root = os.environ.get("VIDSPAN_USER_PATH") or "~/.cache/vidspan"
    return Path(root).expanduser() / CACHE_FILE_NAME


def cache_key(settings: JudgeSettings, request: JudgeRequest) -> str:
    """sha256 over ``settings.identity()`` and ``request.fingerprint()`` (never the API key)."""
    try:
        head = json.dumps({"judge": settings.identity(), "request": request.fingerprint()}, sort_keys=True)
    except TypeError as exc:
        raise ValueError(
            f"Invalid judge settings: {settings.extra!r}. Their extra fields must be JSON values."
        ) from exc
    return hashlib.sha256(head.encode("utf-8")).hexdigest()


class JudgeCache:
    """Judge replies on disk, keyed by :func:`cache_key`.

    Args:
        path: The SQLite file; default :func:`default_cache_path`. Its folder is created if missing.

    Raises:
        JudgeCacheError: the file is not a SQLite database, was made by a newer vidspan, or cannot be
            created or written.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._unwritable(exc) from exc
        try:
            self._init_schema()
        except JudgeCacheError:
            self._conn.close()
            raise
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._translate(exc) from exc

    def _init_schema(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JudgeCacheError(
                f"The judge cache {self.path} was written by a newer vidspan (schema {version}, this one "
                f"reads {SCHEMA_VERSION}). Upgrade vidspan or pass another cache path."
            )
        conn.execute("PRAGMA journal_mode = WAL")  # may stay 'delete' on filesystems without WAL; fine
        conn.execute(
            "CREATE TABLE IF NOT EXISTS judge_replies ("
            " key TEXT PRIMARY KEY, reply TEXT NOT NULL, created REAL NOT NULL)"
        )
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def get(self, key: str) -> JudgeReply | None:
        """The cached reply for ``key`` (marked ``cached=True``), or ``None``."""
        try:
            with self._lock:
                row = self._conn.execute("SELECT reply FROM judge_replies WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            return JudgeReply(
                text=data["text"],
                prompt_tokens=data.get("prompt_tokens"),
                completion_tokens=data.get("completion_tokens"),
                cost_usd=data.get("cost_usd"),
                cached=True,
                served_model=data.get("served_model"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring an unreadable entry %s in the judge cache %s: %s", key, self.path, exc)
            return None

    def put(self, key: str, reply: JudgeReply) -> None:
        """Store ``reply`` under ``key``; the first reply stored for a key is the one kept."""
        data: dict[str, Any] = {
            "text": reply.text,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "cost_usd": reply.cost_usd,
            "served_model": reply.served_model,
        }
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR IGNORE INTO judge_replies (key, reply, created) VALUES (?, ?, ?)",
                    (key, json.dumps(data), time.time()),
                )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def __len__(self) -> int:
        try:
            with self._lock:
                return int(self._conn.execute("SELECT COUNT(*) FROM judge_replies").fetchone()[0])
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JudgeCache({str(self.path)!r})"

    def _translate(self, exc: sqlite3.Error) -> JudgeCacheError:
        text = str(exc).lower()
        if "readonly" in text or "unable to open" in text or "disk i/o" in text or "full" in text:
            return self._unwritable(exc)
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return JudgeCacheError(
                f"The judge cache {self.path} is not a usable SQLite database ({exc}). Delete it to start "
                "an empty cache, or pass another cache path."
            )
        return JudgeCacheError(f"The judge cache {self.path} failed: {exc}.")

    def _unwritable(self, exc: BaseException) -> JudgeCacheError:
        return JudgeCacheError(
            f"Cannot write the judge cache {self.path}: {exc}. Set VIDSPAN_USER_PATH to a writable folder, "
            "pass another cache path, or turn the cache off with cache=False."
        )
