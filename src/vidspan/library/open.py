"""``open_index``: open the library named by ``--db`` (a SQLite file, or a ``postgresql://`` URL)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidspan.library.postgres import PgVideoIndex
    from vidspan.library.sqlite import VideoIndex


def is_postgres_url(db: object) -> bool:
    """True when ``db`` is a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_index(
    db: str | os.PathLike[str] | None = None, *, create: bool = True, **options: Any
) -> VideoIndex | PgVideoIndex:
    """A :class:`~vidspan.library.postgres.PgVideoIndex` for a ``postgresql://`` / ``postgres://`` URL, else a
    SQLite :class:`~vidspan.library.sqlite.VideoIndex` (``None``: the default index file).

    Args:
        db: The index file or PostgreSQL URL.
        create: Create a missing index (file or schema); when false a missing one raises
            :class:`~vidspan.library.sqlite.IndexNotFoundError`.
        **options: Passed to the index class (e.g. ``embedder``).
    """
    if is_postgres_url(db):
        from vidspan.library.postgres import PgVideoIndex

        assert isinstance(db, str)
        return PgVideoIndex(db, create=create, **options)
    from vidspan.library.sqlite import VideoIndex

    return VideoIndex(db, create=create, **options)
