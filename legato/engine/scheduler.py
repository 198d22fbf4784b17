"""The scheduler: fires due schedules, releases delayed runs, starts buffered fires.

Every server and worker process runs one. It sleeps until the earliest due time (two reads
on partial indexes), and is woken early when schedules change or a delayed run is created
(across processes through LISTEN/NOTIFY on PostgreSQL) and when a run a schedule started
ends (a buffered fire may wait for it). Exactly-once does not depend on there being one: the
store's unique key on (schedule, fire time) decides, and due rows are shared out with
``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from legato.engine.firing import fire_many
from legato.engine.transitions import SCHEDULE_RUNS_TOPIC, SCHEDULES_TOPIC, Transitions
from legato.model.errors import Unavailable
from legato.store.database import Database, Tx
from legato.store.schedules import (
    buffered_ready,
    due_schedules,
    held_due,
    namespace_names,
    next_wake,
)

__all__ = ["Scheduler", "SchedulerConfig"]

log = logging.getLogger("legato.scheduler")


@dataclass(frozen=True)
class SchedulerConfig:
    batch: int = 200  # schedules (or held runs) per transaction
    #: the longest sleep without a wake-up: a safety net for wake-ups that cannot cross
    #: processes (SQLite), not the way due work is found
    max_sleep: float = 30.0
    #: how soon to look again when due rows were left to another process (PostgreSQL)
    contended_sleep: float = 0.2


class Scheduler:
    def __init__(
        self,
        db: Database,
        transitions: Transitions,
        config: SchedulerConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.transitions = transitions
        self.config = config or SchedulerConfig()
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        async with (
            self.db.watching(SCHEDULES_TOPIC) as changed,
            self.db.watching(SCHEDULE_RUNS_TOPIC) as ended,
        ):
            while not stop.is_set():
                changed.look()
                ended.look()
                try:
                    wake_at, buffered = await self._next_wake()
                    # a pass writes (it locks SQLite's database): only when something is due
                    if buffered or (wake_at is not None and wake_at <= self.clock()):
                        await self.tick(stop=stop)
                        wake_at, buffered = await self._next_wake()
                    delay = self._delay(wake_at, buffered)
                except Unavailable:
                    delay = 1.0
                except Exception:  # a bad row must not stop every schedule
                    log.exception("scheduler pass failed")
                    delay = 1.0
                await _first(stop, changed.woken, ended.woken, timeout=delay)

    async def _next_wake(self) -> tuple[float | None, bool]:
        async with self.db.read() as conn:
            return await next_wake(conn)

    def _delay(self, wake_at: float | None, buffered: bool) -> float:
        if buffered:  # the previous run ended but its fire is another process's to start
            return self.config.contended_sleep
        if wake_at is None:
            return self.config.max_sleep
        left = wake_at - self.clock()
        if left <= 0:  # due, yet not ours: another process holds it and will wake us
            return self.config.contended_sleep
        return min(left, self.config.max_sleep)

    async def tick(self, now: float | None = None, stop: asyncio.Event | None = None) -> int:
        """Everything due at ``now``: answers how many runs were started or released."""
        done = 0
        while stop is None or not stop.is_set():
            n, more = await self.db.write(lambda tx: self._fire_batch(tx, now))
            done += n
            if not more:
                break
        while stop is None or not stop.is_set():
            n, more = await self.db.write(lambda tx: self._release_batch(tx, now))
            done += n
            if not more:
                break
        n, _ = await self.db.write(self._buffered_batch)
        return done + n

    async def _fire_batch(self, tx: Tx, now: float | None) -> tuple[int, bool]:
        at = self.clock() if now is None else now
        rows = await due_schedules(tx, at, self.config.batch)
        if not rows:
            return 0, False
        names = await namespace_names(tx.conn, {r.namespace_id for r in rows})
        fired = await fire_many(tx, self.transitions, rows, at, namespaces=names)
        started = sum(len(f.started) for f in fired)
        tx.wake(SCHEDULES_TOPIC)  # others sleeping on these rows' old due times look again
        return started, len(rows) == self.config.batch

    async def _release_batch(self, tx: Tx, now: float | None) -> tuple[int, bool]:
        at = self.clock() if now is None else now
        ids = await held_due(tx, at, self.config.batch)
        if not ids:
            return 0, False
        released = await self.transitions.release_in(tx, ids)
        return released, len(ids) == self.config.batch

    async def _buffered_batch(self, tx: Tx) -> tuple[int, bool]:
        rows = await buffered_ready(tx, self.config.batch)
        if not rows:
            return 0, False
        names = await namespace_names(tx.conn, {r.namespace_id for r in rows})
        fired = await fire_many(
            tx, self.transitions, rows, self.clock(), namespaces=names, buffered_start=True
        )
        return sum(len(f.started) for f in fired), False


async def _first(*events: asyncio.Event, timeout: float) -> None:
    """Wait until one of ``events`` is set, or ``timeout`` seconds."""
    if any(e.is_set() for e in events):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        for w in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await w
