"""Concurrent callers of one read share one call of it.

A burst of requests for the same thing (a thousand pollers of one run, woken by one commit; a
thousand requests with one API key when its cached check lapses) would otherwise each send the
same statement and queue for connections. :class:`Flights` runs the call once, in a task of its
own (a caller that goes away does not cancel the others' answer), and hands every caller the
same result or exception.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Flights"]

V = TypeVar("V")


class Flights(Generic[V]):
    def __init__(self) -> None:
        self._pending: dict[Hashable, tuple[float, asyncio.Future[V]]] = {}

    async def run(
        self, key: Hashable, call: Callable[[], Awaitable[V]], *, begun_after: float = -math.inf
    ) -> V:
        """The result of ``call()``, shared with the callers of the same ``key`` meanwhile;
        only a call begun after ``begun_after`` (``time.monotonic()``) is joined, so a caller
        that must see what was committed at that moment never gets an older answer."""
        pending = self._pending.get(key)
        if pending is None or pending[0] < begun_after:
            task: asyncio.Future[V] = asyncio.ensure_future(call())
            pending = (time.monotonic(), task)
            self._pending[key] = pending
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(pending[1])

    def _landed(self, key: Hashable, done: asyncio.Future[V]) -> None:
        current = self._pending.get(key)
        if current is not None and current[1] is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # retrieved, even when every caller has gone
