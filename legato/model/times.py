"""Times as every face writes them: ISO 8601 in UTC, with milliseconds and ``Z``."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

__all__ = ["iso", "iso_time"]


def iso(ts: float | None) -> str | None:
    """``ts`` (seconds since the epoch) as ``2024-05-01T12:00:00.000Z``; None stays None."""
    return None if ts is None else iso_time(ts)


@functools.lru_cache(maxsize=65536)
def iso_time(ts: float) -> str:
    """``ts`` (seconds since the epoch) as ``2024-05-01T12:00:00.000Z``."""
    # the same runs' times are written again and again (lists, polls): format each once
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
