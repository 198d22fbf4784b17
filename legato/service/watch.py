"""One way to follow a topic: subscribe, look, wait for the next commit that wakes it (or a
timeout), look again; unsubscribed when the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from legato.store.database import Database

__all__ = ["Watch", "watch"]


class Watch:
    """The wake-ups of one topic while its ``watch`` block runs."""

    def __init__(self, db: Database, topic: str, woken: asyncio.Event) -> None:
        self._db = db
        self._topic = topic
        self._woken = woken

    def look(self) -> float | None:
        """Call before each look: when (``time.monotonic()``) the commit that woke the topic
        since the last look came, so that a read begun after it may be shared; None when
        nothing woke it. A commit after this call wakes the next ``wait``."""
        since = self._db.woken_at(self._topic) if self._woken.is_set() else None
        self._woken.clear()
        return since

    async def wait(self, timeout: float) -> bool:
        """Until a commit wakes the topic or ``timeout`` seconds pass; True when woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout)
            return True
        return False


@contextlib.asynccontextmanager
async def watch(db: Database, topic: str) -> AsyncIterator[Watch]:
    """Follow ``topic`` for as long as the block runs."""
    async with db.watching(topic) as woken:
        yield Watch(db, topic, woken)
