"""Reading HTTP replies the same way in every client vidspan has (model servers and judges)."""

from __future__ import annotations

import email.utils
import math
import time


def retry_after_seconds(value: str | None, milliseconds: str | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``; None if absent.

    ``retry-after-ms`` wins when both are sent; the result is never negative (callers apply their caps).
    """
    if milliseconds:
        try:
            seconds = float(milliseconds) / 1000.0
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def body_snippet(raw: bytes, limit: int = 200) -> str:
    """The start of a reply body as text, for error messages."""
    text = raw.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."
