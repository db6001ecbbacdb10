"""The index schema as an ordered list of ``@migration`` functions.

Each migration runs once, in its own transaction, and is recorded in ``_vidspan_migrations``
(``version, name, applied_at``). Never edit a released migration: append a new one.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone

logger = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []
"""Every migration, oldest first; the schema version is the number applied."""


def migration(fn: Migration) -> Migration:
    """Append ``fn`` to :data:`MIGRATIONS` (its version is its position, from 1)."""
    MIGRATIONS.append(fn)
    return fn


@migration
def create_videos_and_events(conn: sqlite3.Connection) -> None:
    """Videos, their timed events, and one float32 embedding per event."""
    _execute_all(
        conn,
        """
        -- AUTOINCREMENT: ids are never reused, so a stale /media/{id} link cannot show another video
        CREATE TABLE videos (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            mtime REAL NOT NULL DEFAULT 0,
            duration REAL NOT NULL DEFAULT 0,
            scene TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            indexed_at TEXT NOT NULL,
            raw TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX videos_sha256 ON videos (sha256);

        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
            start REAL NOT NULL,
            "end" REAL NOT NULL,
            description TEXT NOT NULL
        );
        CREATE INDEX events_video ON events (video_id, start);

        -- vector: little-endian float32, dim values; model names the embedder that made it
        CREATE TABLE event_embeddings (
            event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL
        );
        """,
    )


@migration
def create_event_fts(conn: sqlite3.Connection) -> None:
    """An FTS5 external-content table over event descriptions, kept in sync by triggers."""
    _execute_all(
        conn,
        """
        CREATE VIRTUAL TABLE events_fts USING fts5 (
            description, content='events', content_rowid='id', tokenize='porter unicode61'
        );
        CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
            INSERT INTO events_fts (rowid, description) VALUES (new.id, new.description);
        END;
        CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
            INSERT INTO events_fts (events_fts, rowid, description)
                VALUES ('delete', old.id, old.description);
        END;
        CREATE TRIGGER events_fts_update AFTER UPDATE OF description ON events BEGIN
            INSERT INTO events_fts (events_fts, rowid, description)
                VALUES ('delete', old.id, old.description);
            INSERT INTO events_fts (rowid, description) VALUES (new.id, new.description);
        END;
        """,
    )


@migration
def create_change_counter(conn: sqlite3.Connection) -> None:
    """A counter bumped on every embedding change, so in-memory vector caches know when to reload."""
    _execute_all(
        conn,
        """
        CREATE TABLE _vidspan_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO _vidspan_state VALUES ('embeddings_generation', 0);
        CREATE TRIGGER event_embeddings_insert AFTER INSERT ON event_embeddings BEGIN
            UPDATE _vidspan_state SET value = value + 1 WHERE name = 'embeddings_generation';
        END;
        CREATE TRIGGER event_embeddings_delete AFTER DELETE ON event_embeddings BEGIN
            UPDATE _vidspan_state SET value = value + 1 WHERE name = 'embeddings_generation';
        END;
        CREATE TRIGGER event_embeddings_update AFTER UPDATE ON event_embeddings BEGIN
            UPDATE _vidspan_state SET value = value + 1 WHERE name = 'embeddings_generation';
        END;
        """,
    )


@migration
def create_vector_checkpoint(conn: sqlite3.Connection) -> None:
    """What the vector index files beside the library cover (see :mod:`vidspan.library.vectors`): the
    checkpoint row, the ids it holds that were deleted since, and an epoch that retires it when an
    embedding it holds is rewritten. The triggers run inside the writing transaction."""
    _execute_all(
        conn,
        """
        CREATE TABLE _vidspan_vector_index (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            segment TEXT NOT NULL,
            count INTEGER NOT NULL,
            covered INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            model TEXT NOT NULL,
            kind TEXT NOT NULL,
            trained_on INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            built_at TEXT NOT NULL
        );
        CREATE TABLE _vidspan_vector_tombstones (event_id INTEGER PRIMARY KEY);
        INSERT INTO _vidspan_state VALUES ('vectors_epoch', 0);
        CREATE TRIGGER vector_checkpoint_delete AFTER DELETE ON event_embeddings
            WHEN old.event_id <= (SELECT covered FROM _vidspan_vector_index) BEGIN
            INSERT OR IGNORE INTO _vidspan_vector_tombstones VALUES (old.event_id);
        END;
        CREATE TRIGGER vector_checkpoint_rewrite AFTER INSERT ON event_embeddings
            WHEN new.event_id <= (SELECT covered FROM _vidspan_vector_index) BEGIN
            UPDATE _vidspan_state SET value = value + 1 WHERE name = 'vectors_epoch';
        END;
        CREATE TRIGGER vector_checkpoint_update AFTER UPDATE ON event_embeddings BEGIN
            UPDATE _vidspan_state SET value = value + 1 WHERE name = 'vectors_epoch';
        END;
        """,
    )


@migration
def create_embedder_record(conn: sqlite3.Connection) -> None:
    """The library's embedder, recorded when it is first indexed: a library with no vectors yet (every
    video failed, or had no events) still knows the embedder it was created with."""
    _execute_all(
        conn,
        """
        CREATE TABLE _vidspan_embedder (
            id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, dim INTEGER NOT NULL
        );
        """,
    )


def _execute_all(conn: sqlite3.Connection, script: str) -> None:
    # not executescript(): it commits the open transaction first. Statements end with ";" at a line end;
    # a trigger body (BEGIN ... END;) is kept whole.
    statement = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"Invalid migration SQL: {statement.strip()!r}. It must end with ';'.")


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of migrations applied to ``conn``'s database (0 for a new file)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _vidspan_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = conn.execute("SELECT coalesce(max(version), 0) FROM _vidspan_migrations").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the pending migrations, each in its own transaction; returns the names applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``).

    Raises:
        RuntimeError: the database was written by a newer vidspan (more migrations than this one knows).
    """
    applied: list[str] = []
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"This index has schema version {current}, newer than this vidspan supports ({len(MIGRATIONS)}). "
            "Upgrade vidspan."
        )
    for version, fn in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated while we waited for the write lock
            done = conn.execute("SELECT 1 FROM _vidspan_migrations WHERE version = ?", (version,)).fetchone()
            if not done:
                fn(conn)
                conn.execute(
                    "INSERT INTO _vidspan_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, fn.__name__, datetime.now(timezone.utc).isoformat(timespec="seconds")),
                )
                applied.append(fn.__name__)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if applied:
        logger.info("Index schema migrated: %s", ", ".join(applied))
    return applied
