"""``PgVideoIndex``: the video library in PostgreSQL + pgvector, for shared, multi-writer deployments.

Same public methods and semantics as the SQLite :class:`vidspan.library.sqlite.VideoIndex`. Tables:
``videos``, ``events`` (cascade-deleted with their video; a ``vector(384)`` embedding per event with an HNSW
``vector_cosine_ops`` index, and a generated ``tsvector`` column with a GIN index) and
``_vidspan_migrations``. Search fuses a ``ts_rank_cd`` ranking with a cosine-distance ranking by reciprocal
rank fusion (RRF, k = 60) in one SQL statement.

Needs ``pip install 'vidspan[postgres]'`` (psycopg 3 + pgvector) and a server with the ``vector`` extension.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from vidspan.errors import MissingDependencyError, PostgresError
from vidspan.library.open import is_postgres_url
from vidspan.library.sql import SqlReads, event_vectors, video_row
from vidspan.library.sqlite import _STOPWORDS, RRF_K, IndexNotFoundError
from vidspan.library.types import SearchHit
from vidspan.types import Caption

if TYPE_CHECKING:
    from vidspan.library.embed import TextEmbedder

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 384
"""Values per event embedding (all-MiniLM-L6-v2); the ``vector`` column has this fixed size."""

_MIGRATION_LOCK = 0x76696473  # pg_advisory_xact_lock key: one migrating client at a time


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and ``status``)."""
    return re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)


def glob_to_regex(pattern: str) -> str:
    """An :mod:`fnmatch` pattern as an anchored PostgreSQL regular expression (``~``) with the same meaning.

    ``*`` and ``?`` match any characters (``/`` included), ``[seq]`` / ``[!seq]`` are character sets (reversed
    ranges match nothing, as in fnmatch); every other character is matched literally.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            stuff, i = pattern[i:j], j + 1
            negate = stuff.startswith("!")
            if negate:
                stuff = stuff[1:]
            items: list[str] = []
            k = 0
            while k < len(stuff):
                if k + 2 < len(stuff) and stuff[k + 1] == "-":
                    lo, hi = stuff[k], stuff[k + 2]
                    if lo <= hi:
                        items.append(f"{_class_char(lo)}-{_class_char(hi)}")
                    k += 3
                else:
                    items.append(_class_char(stuff[k]))
                    k += 1
            if not items:
                out.append("." if negate else "[^\\s\\S]")  # fnmatch: an empty set matches nothing
            else:
                out.append("[" + ("^" if negate else "") + "".join(items) + "]")
        else:
            out.append(_literal(c))
    return "^(" + "".join(out) + ")$"


def _literal(c: str) -> str:
    # in PostgreSQL AREs a backslash before a non-alphanumeric character makes it literal
    return c if c.isalnum() else "\\" + c


def _class_char(c: str) -> str:
    return c if c.isalnum() else "\\" + c


def tsquery_text(text: str) -> str | None:
    """User text as a safe ``to_tsquery`` argument: words OR-ed (stopwords dropped when others remain)."""
    words = re.findall(r"\w+", text.lower())
    content = [w for w in words if w not in _STOPWORDS] or words
    unique = list(dict.fromkeys(content))
    if not unique:
        return None
    return " | ".join("'" + w.replace("'", "''") + "'" for w in unique)


# ---------------------------------------------------------------------- migrations

PgMigration = Callable[[Any], None]
PG_MIGRATIONS: list[PgMigration] = []
"""Every PostgreSQL migration, oldest first; never edit a released one, append a new one."""


def _pg_migration(fn: PgMigration) -> PgMigration:
    PG_MIGRATIONS.append(fn)
    return fn


@_pg_migration
def create_videos_and_events(conn: Any) -> None:
    """Videos and their timed events, with a vector(384) embedding and a tsvector per event."""
    for statement in (
        "CREATE EXTENSION IF NOT EXISTS vector",
        """CREATE TABLE videos (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            size BIGINT NOT NULL DEFAULT 0,
            mtime DOUBLE PRECISION NOT NULL DEFAULT 0,
            duration DOUBLE PRECISION NOT NULL DEFAULT 0,
            scene TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            indexed_at TEXT NOT NULL,
            raw TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX videos_sha256 ON videos (sha256)",
        f"""CREATE TABLE events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            video_id BIGINT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
            start DOUBLE PRECISION NOT NULL,
            "end" DOUBLE PRECISION NOT NULL,
            description TEXT NOT NULL,
            embedding_model TEXT,
            embedding vector({EMBEDDING_DIM}),
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', description)) STORED
        )""",
        "CREATE INDEX events_video ON events (video_id, start)",
        "CREATE INDEX events_tsv ON events USING gin (tsv)",
        "CREATE INDEX events_embedding ON events USING hnsw (embedding vector_cosine_ops)",
    ):
        conn.execute(statement)


@_pg_migration
def create_embedder_record(conn: Any) -> None:
    """The library's embedder, recorded when it is first indexed (a library with no vectors yet)."""
    conn.execute(
        "CREATE TABLE _vidspan_embedder (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, "
        "dim INTEGER NOT NULL)"
    )


def _migrate(conn: Any, *, create: bool, where: str) -> int:
    """Apply pending migrations (each in its own transaction, serialised by an advisory lock); returns the
    schema version. With ``create`` false an empty database raises :class:`IndexNotFoundError`."""
    exists = conn.execute("SELECT to_regclass('_vidspan_migrations') IS NOT NULL").fetchone()[0]
    if not exists and not create:
        raise IndexNotFoundError(where)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _vidspan_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    current = _schema_version(conn)
    if current > len(PG_MIGRATIONS):
        raise PostgresError(
            f"The index at {where} has schema version {current}, newer than this vidspan supports "
            f"({len(PG_MIGRATIONS)}). Upgrade vidspan."
        )
    for version, fn in enumerate(PG_MIGRATIONS, start=1):
        if version <= current:
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            done = conn.execute("SELECT 1 FROM _vidspan_migrations WHERE version = %s", (version,)).fetchone()
            if not done:
                fn(conn)
                conn.execute(
                    "INSERT INTO _vidspan_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, fn.__name__, datetime.now(timezone.utc).isoformat(timespec="seconds")),
                )
                logger.info("Index schema migrated: %s", fn.__name__)
    return _schema_version(conn)


def _schema_version(conn: Any) -> int:
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM _vidspan_migrations").fetchone()[0])


def _import_psycopg() -> tuple[Any, Any]:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MissingDependencyError(
            f"A PostgreSQL index needs psycopg and pgvector ({exc.name} is missing). "
            "Install with: pip install 'vidspan[postgres]'"
        ) from None
    return psycopg, register_vector


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


class PgVideoIndex(SqlReads):
    """A searchable library of captioned videos in PostgreSQL + pgvector (implements ``Library``).

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (libpq URI; ``?host=/socket/dir`` works too).
        create: Create the schema in an empty database; when false an empty database raises
            :class:`IndexNotFoundError`.
        embedder: Embeds search queries (default: the shared all-MiniLM-L6-v2 embedder, loaded lazily).

    Raises:
        PostgresError: the URL is invalid, the server cannot be reached, or pgvector is not installed there.

    Example:
        >>> with PgVideoIndex("postgresql://localhost/videos") as index:  # doctest: +SKIP
        ...     hits = index.search("a hand lifts a bottle", limit=5)
    """

    PARAM = "%s"
    PATH_ORDER = ' ORDER BY v.path COLLATE "C"'
    EMBEDDER_SQL = (
        f"SELECT embedding_model, {EMBEDDING_DIM} FROM events WHERE embedding_model IS NOT NULL LIMIT 1"
    )

    def __init__(self, url: str, *, create: bool = True, embedder: TextEmbedder | None = None):
        if not is_postgres_url(url):
            raise PostgresError(f"Invalid PostgreSQL URL: {redact_url(str(url))!r}. It must start with "
                                "'postgresql://' or 'postgres://'.")  # fmt: skip
        psycopg, register_vector = _import_psycopg()
        self.url = url
        self.path = redact_url(url)
        self._embedder = embedder
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.ProgrammingError as exc:
            raise PostgresError(f"Invalid PostgreSQL URL {self.path}: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            raise PostgresError(f"Cannot connect to PostgreSQL at {self.path}: {_first_line(exc)}") from None
        try:
            self._version = _migrate(self._conn, create=create, where=self.path)
            register_vector(self._conn)
        except psycopg.errors.FeatureNotSupported as exc:  # pragma: no cover - depends on the server
            self._conn.close()
            raise PostgresError(
                f"Cannot use PostgreSQL at {self.path}: {_first_line(exc)} (the pgvector extension is needed)"
            ) from None
        except psycopg.Error as exc:
            self._conn.close()
            hint = " (the pgvector extension is needed)" if "vector" in str(exc) else ""
            raise PostgresError(f"Cannot use PostgreSQL at {self.path}: {_first_line(exc)}{hint}") from None
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PgVideoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock, self._conn.transaction():
            yield self._conn

    # ------------------------------------------------------------------ writing

    def add_video(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        caption: Caption,
        embeddings: np.ndarray | Sequence[Sequence[float]],
        *,
        duration_seconds: float | None = None,
        size: int | None = None,
        mtime: float | None = None,
        embedding_model: str = "all-minilm-l6-v2",
    ) -> int:
        """Store a captioned video and its event embeddings in one transaction; returns the video id.

        An older entry for the same path (and its events) is replaced. Arguments as for
        :meth:`vidspan.library.sqlite.VideoIndex.add_video`; vectors must have 384 values.
        """
        vectors = event_vectors(caption, embeddings, EMBEDDING_DIM)
        self.check_embedder(embedding_model, writing=True)
        if vectors.shape[1] != EMBEDDING_DIM:
            raise ValueError(
                f"Invalid embeddings: {vectors.shape[1]} values per vector. It must be {EMBEDDING_DIM}, "
                "the vector size of a PostgreSQL index."
            )
        row = video_row(path, sha256, caption, duration_seconds, size, mtime)
        abspath = row[0]
        with self._transaction() as conn:
            conn.execute("DELETE FROM videos WHERE path = %s", (abspath,))
            video_id = conn.execute(
                "INSERT INTO videos (path, sha256, size, mtime, duration, scene, model, indexed_at, raw,"
                " settings) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                row,
            ).fetchone()[0]  # fmt: skip
            if caption.events:
                with conn.cursor() as cur:
                    cur.executemany(
                        'INSERT INTO events (video_id, start, "end", description, embedding_model, '
                        "embedding) VALUES (%s, %s, %s, %s, %s, %s)",
                        [
                            (video_id, float(e.start), float(e.end), e.description, embedding_model, vector)
                            for e, vector in zip(caption.events, vectors, strict=True)
                        ],
                    )
        logger.info("Indexed %s: %d events", abspath, len(caption.events))
        return int(video_id)

    def reembed(self, embedder: Any, *, batch_size: int = 256, progress: Any = None) -> int:
        """Replace every event's vector with ``embedder``'s, in one transaction; returns the events done.

        Raises:
            ValueError: the embedder's vectors are not the 384 values a PostgreSQL library holds.
        """
        if embedder.dim != EMBEDDING_DIM:
            raise ValueError(
                f"Invalid embedder {embedder.name}: {embedder.dim}-d vectors. A PostgreSQL library holds "
                f"{EMBEDDING_DIM}-d vectors (pgvector column)."
            )
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, description FROM events ORDER BY id").fetchall()
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                vectors = embedder.embed([r[1] for r in chunk])
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE events SET embedding = %s, embedding_model = %s WHERE id = %s",
                        [(v, embedder.name, r[0]) for r, v in zip(chunk, vectors, strict=True)],
                    )
                if progress is not None:
                    progress(min(start + batch_size, len(rows)), len(rows))
            self._write_embedder(conn, embedder.name, embedder.dim)
        self._embedder = embedder
        return len(rows)

    # ------------------------------------------------------------------ reading

    def status(self) -> dict[str, Any]:
        """Counts and settings, for ``vidspan library`` and the server's health page."""
        with self._lock:
            num_videos, num_events, num_vectors, size = self._conn.execute(
                "SELECT (SELECT count(*) FROM videos), (SELECT count(*) FROM events), "
                "(SELECT count(*) FROM events WHERE embedding IS NOT NULL), "
                "pg_total_relation_size('videos') + pg_total_relation_size('events')"
            ).fetchone()
            models = [
                r[0]
                for r in self._conn.execute(
                    "SELECT DISTINCT embedding_model FROM events WHERE embedding_model IS NOT NULL ORDER BY 1"
                )
            ]
            version = _schema_version(self._conn)
        return {
            "path": self.path,
            "num_videos": int(num_videos),
            "num_events": int(num_events),
            "num_embeddings": int(num_vectors),
            "embedding_models": models,
            "schema_version": version,
            "schema_latest": len(PG_MIGRATIONS),
            "vector_backend": "pgvector-hnsw",
            "size_bytes": int(size),
        }

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        path_glob: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[SearchHit]:
        """Events matching ``query`` by words (``ts_rank_cd``) and by meaning (pgvector cosine), fused by RRF.

        Args as for :meth:`vidspan.library.sqlite.VideoIndex.search`; ``score`` is the RRF score (sum over
        rankings of ``1 / (60 + rank)``).
        """
        if limit < 1:
            raise ValueError(f"Invalid limit: {limit}. It must be >= 1.")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"Invalid time range: start={start}, end={end}. It must satisfy start < end.")
        depth = max(50, 5 * limit)
        params: dict[str, Any] = {"depth": depth, "limit": limit, "k": RRF_K}
        where = ""
        if path_glob is not None:
            where += " AND (v.path ~ %(glob)s OR regexp_replace(v.path, '^.*/', '') ~ %(glob)s)"
            params["glob"] = glob_to_regex(path_glob)
        if start is not None:
            where += ' AND e."end" > %(start)s'
            params["start"] = float(start)
        if end is not None:
            where += " AND e.start < %(end)s"
            params["end"] = float(end)
        text = tsquery_text(query)
        if text is not None:
            params["tsq"] = text
            text_sql = (
                "SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r FROM ("
                "SELECT e.id, ts_rank_cd(e.tsv, q) AS rank FROM events e JOIN videos v ON v.id = e.video_id, "
                "to_tsquery('english', %(tsq)s) q WHERE e.tsv @@ q" + where +
                " ORDER BY rank DESC, e.id LIMIT %(depth)s) s"
            )  # fmt: skip
        else:
            text_sql = "SELECT NULL::bigint AS id, NULL::bigint AS r WHERE false"
        if query.strip():
            self.check_embedder(self.embedder.name)
            params["qvec"] = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
            vector_sql = (
                "SELECT id, row_number() OVER (ORDER BY dist, id) AS r FROM ("
                "SELECT e.id, e.embedding <=> %(qvec)s AS dist "
                "FROM events e JOIN videos v ON v.id = e.video_id "
                "WHERE e.embedding IS NOT NULL" + where + " ORDER BY dist, e.id LIMIT %(depth)s) s"
            )  # fmt: skip
        else:
            vector_sql = "SELECT NULL::bigint AS id, NULL::bigint AS r WHERE false"
        sql = (
            f"WITH t AS ({text_sql}), x AS ({vector_sql}), "
            "fused AS (SELECT coalesce(t.id, x.id) AS id, "
            "coalesce(1.0::float8 / (%(k)s + t.r), 0) + coalesce(1.0::float8 / (%(k)s + x.r), 0) AS score "
            "FROM t FULL OUTER JOIN x ON x.id = t.id) "
            'SELECT e.id, e.video_id, e.start, e."end", e.description, v.path, f.score FROM fused f '
            "JOIN events e ON e.id = f.id JOIN videos v ON v.id = e.video_id "
            "ORDER BY f.score DESC, e.id LIMIT %(limit)s"
        )
        ef_search = min(1000, max(40, 2 * depth if where else depth))
        with self._transaction() as conn:
            conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
            rows = conn.execute(sql, params).fetchall()
        return [
            SearchHit(
                video=r[5],
                start=r[2],
                end=r[3],
                score=float(r[6]),
                caption=r[4],
                video_id=int(r[1]),
                event_id=int(r[0]),
            )
            for r in rows
        ]


