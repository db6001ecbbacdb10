"""Searchable video libraries: an embedded store of videos, timed events and their embeddings.

>>> from vidspan.library import open_library                      # doctest: +SKIP
>>> lib = open_library("videos.sqlite")                           # or a postgresql:// URL  # doctest: +SKIP
>>> hits = lib.search("a person opens the door")                  # doctest: +SKIP
"""

from vidspan.library.open import is_postgres_url, open_index
from vidspan.library.types import IndexedEvent, IndexedVideo, Library, SearchHit

open_library = open_index
"""Open the library named by a SQLite path or a ``postgresql://`` URL (see :func:`open_index`)."""

__all__ = [
    "IndexedEvent", "IndexedVideo", "Library", "SearchHit", "is_postgres_url", "open_index", "open_library",
]  # fmt: skip
