"""Searchable video libraries: an embedded store of videos, timed events and their embeddings."""
