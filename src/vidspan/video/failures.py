"""Decode failures of one read, summarised: a damaged file logs one line, not one per packet."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

__all__ = ["DecodeFailures"]


class DecodeFailures:
    """Packets that failed to decode during one read of a file, collected across decoder threads.

    :meth:`report` logs them as one warning with the count, the stretch of source time they cover, the
    first error and how many sampled frames had to be filled in, e.g. ``clip.mp4: 92 packets could not be
    decoded between 3.2 s and 7.9 s (Invalid data found when processing input); 7 of 64 sampled frames
    are copies of the nearest decoded one``.
    """

    def __init__(self, path: Path, time_base: float | None):
        self._path = path
        self._time_base = time_base
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._count = 0
        self._first: str | None = None
        self._stopped = False
        self.missing_frames = 0
        """Wanted frames that never came out (each replaced by its nearest decoded frame)."""
        self.wanted_frames = 0

    def add(self, pts: int | None, error: BaseException, *, stopped: bool = False) -> None:
        """Record one packet (its pts in stream units, when known) that failed with ``error``.

        ``stopped``: the demuxer gave up there (the rest of the file was not read), rather than one packet.
        """
        with self._lock:
            self._stopped = self._stopped or stopped
            self._count += 0 if stopped else 1
            if pts is not None and self._time_base:
                self._times.append(pts * self._time_base)
            if self._first is None:
                self._first = getattr(error, "strerror", None) or str(error)

    @property
    def count(self) -> int:
        """How many packets failed."""
        return self._count

    def report(self, logger: logging.Logger) -> None:
        """Log the failures as one warning (nothing when there were none)."""
        if not (self._count or self._stopped or self.missing_frames):
            return
        parts = []
        if self._count:
            where = ""
            if self._times:
                lo, hi = min(self._times), max(self._times)
                where = f" at {lo:.1f} s" if hi - lo < 0.05 else f" between {lo:.1f} s and {hi:.1f} s"
            packets = "1 packet" if self._count == 1 else f"{self._count} packets"
            parts.append(f"{packets} could not be decoded{where}")
        if self._stopped:
            parts.append("decoding stopped early")
        detail = f" ({self._first})" if self._first else ""
        text = ", ".join(parts) + detail if parts else "some frames did not decode"
        if self.missing_frames:
            text += (
                f"; {self.missing_frames} of {self.wanted_frames} sampled frames are copies of the nearest "
                "decoded one"
            )
        logger.warning("%s: %s", self._path, text)
