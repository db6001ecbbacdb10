"""The library web app: HTTP API, media and the timeline page (``vidspan serve``; needs ``vidspan[server]``).

The OpenAI-compatible model server lives with its client in :mod:`vidspan.models.openai`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The FastAPI app over a library (see :func:`vidspan.server.app.create_app`); imports FastAPI lazily."""
    from vidspan.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)
