"""Everyone in this process waiting for one run to change, woken together.

A thousand long-polls or event streams of one run must hear of a change within milliseconds
of each other. Woken one by one, each would read the run's head, then each would build (or
wait for) the new body, then answer: a pass over every waiter per step, each pass as long as
the waiters are many. A :class:`Room` instead follows the run's wake-up topic once for all
of them: after each wake-up it reads the head once (begun after the commit that woke it, so
it shows that commit), prepares what the waiters asked to have ready for a new version (their
rendered answers, kept by the status service), and only then hands the head to every waiter
in one go. A waiter then compares, finds its answer ready and sends it, without waiting again.

The room reads the head again every :data:`RECHECK_SECONDS` however the wake-ups behave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from legato.model.reads import RunHead
from legato.store.database import Database

__all__ = ["Prepare", "Room", "Rooms"]

log = logging.getLogger("legato.status")

#: However the wake-ups behave, a room reads the head again this often.
RECHECK_SECONDS = 5.0

#: What a waiter wants ready for a new version of the run (keyed, so that waiters wanting
#: the same thing share one preparation).
Prepare = Callable[[RunHead], Awaitable[object]]
#: Reads the run's head now (raises what a read raises, NotFound once the run is gone).
ReadHead = Callable[[], Awaitable[RunHead]]


class Room:
    """The waiters of one run; see the module's text."""

    def __init__(self, db: Database, run_id: int, read_head: ReadHead) -> None:
        self._db = db
        self._read_head = read_head
        self.run_id = run_id
        #: when (``time.monotonic()``) the room began following the run's wake-ups: a head
        #: read before that may have missed a commit
        self.following_since = time.monotonic()
        self._waiters: set[asyncio.Future[RunHead | BaseException | None]] = set()
        self._prepares: dict[Hashable, Prepare] = {}
        self._members = 0
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    def want(self, key: Hashable, prepare: Prepare) -> None:
        """Have ``prepare`` run for each new head before the waiters hear of it."""
        self._prepares.setdefault(key, prepare)

    async def next_head(self, timeout: float) -> RunHead | None:
        """The head read after the next wake-up (or recheck); None after ``timeout``
        seconds. Raises what the read raised."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[RunHead | BaseException | None] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(timeout, _settle, waiter, None)
        try:
            got = await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)
        if isinstance(got, BaseException):
            raise got
        return got

    async def _follow(self) -> None:
        async with self._db.watching(f"run:{self.run_id}") as changes:
            self.following_since = time.monotonic()
            self._started.set()
            while True:
                await changes.wait(RECHECK_SECONDS)
                if self._members == 0:  # closed: a cancel can be lost in a wait that ended
                    return
                changes.look()
                got: RunHead | BaseException
                try:
                    got = await self._read_head()
                except Exception as exc:  # NotFound once deleted, Unavailable: each waiter's
                    got = exc
                else:
                    for key, prepare in list(self._prepares.items()):
                        try:
                            await prepare(got)
                        except Exception:  # the waiter that needs it builds it and fails itself
                            self._prepares.pop(key, None)
                waiters, self._waiters = self._waiters, set()
                for waiter in waiters:
                    _settle(waiter, got)


def _settle(waiter: asyncio.Future[RunHead | BaseException | None], value: object) -> None:
    if not waiter.done():
        waiter.set_result(value)  # type: ignore[arg-type]


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a room ended with %r", task.exception())


class Rooms:
    """One :class:`Room` per run that someone in this process waits for."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rooms: dict[int, Room] = {}

    @contextlib.asynccontextmanager
    async def enter(self, run_id: int, read_head: ReadHead) -> AsyncIterator[Room]:
        """The room of ``run_id`` for as long as the block runs (``read_head``: how the room
        reads the head, if this caller opens it); it closes when the last one leaves."""
        room = self._rooms.get(run_id)
        if room is None:
            room = self._rooms[run_id] = Room(self._db, run_id, read_head)
            room._task = asyncio.create_task(room._follow())
        room._members += 1
        try:
            await room._started.wait()
            yield room
        finally:
            room._members -= 1
            if room._members == 0 and self._rooms.get(run_id) is room:
                del self._rooms[run_id]
                if room._task is not None:  # not awaited: the last waiter answers at once
                    room._task.cancel()
                    room._task.add_done_callback(_retrieved)
