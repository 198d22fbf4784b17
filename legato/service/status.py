"""Status resources of a run and watching them change.

Every resource of a run (the run, its steps, values, events, errors, resources, one output) is
answered as a :class:`Snapshot`: the run's head (id, status and version, which rises on every
committed change of the run or its sub-workflow runs) and a way to build the body of that
version. A face derives its validators (ETags) from the head alone, so a conditional request
that matches is answered without building anything; it long-polls with
:meth:`StatusService.poll` and streams changes with :meth:`StatusService.watch`, both waiting on
the run's wake-up topic (``run:{id}``), which crosses processes on PostgreSQL (LISTEN/NOTIFY)
and is local on SQLite, so a waiter answers right after the commit that changed the run.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from legato.model.errors import InvalidInput, NotFound
from legato.model.ids import MAX_ID
from legato.model.reads import (
    ErrorRecord,
    ResourceRecord,
    RunHead,
    RunRead,
    StepRecord,
    ValueRecord,
)
from legato.service.flights import Flights
from legato.service.principal import Principal
from legato.service.reads import RunReads, parse_ref
from legato.service.rooms import RECHECK_SECONDS, Prepare, Rooms
from legato.service.views import (
    error_view,
    event_view,
    level_view,
    resource_view,
    run_detail_view,
    value_view,
)
from legato.store.database import Database

__all__ = ["MAX_BATCH", "Snapshot", "StatusService", "parse_ref"]

T = TypeVar("T")
MAX_BATCH = 100
#: How long a running run's rendered body is reused (many watchers of one change share it).
FRESH_SECONDS = 0.1
#: How long an event stream waits for news before it looks again itself (its room looks
#: every RECHECK_SECONDS anyway).
STREAM_PATIENCE = 3600.0


@dataclass(frozen=True)
class Snapshot:
    """A status resource at one version of its run: the head now, the body on demand."""

    head: RunHead
    #: what resource this is (with the run id and version, it names the body exactly)
    key: Hashable
    build: Callable[[], Awaitable[Any]]

    @property
    def run_id(self) -> int:
        return self.head.id

    @property
    def change_seq(self) -> int:
        return self.head.version

    @property
    def run_status(self) -> str:
        return self.head.status

    @property
    def finished(self) -> bool:
        return self.head.finished

    async def body(self) -> Any:
        return await self.build()


#: A resource of a run, given its head: what the faces ask the service for.
Resource = Callable[[RunHead], Snapshot]


class StatusService:
    def __init__(self, db: Database, reads: RunReads) -> None:
        self.db = db
        self.reads = reads
        self._builds: Flights[Any] = Flights()
        self._rooms = Rooms(db)

    # -- resources -----------------------------------------------------------------------

    async def head(self, p: Principal, ref: int | str, *, since: float | None = None) -> RunHead:
        return await self.reads.head(p.namespace_id, ref, since=since)

    async def head_of_step(self, p: Principal, step_id: int) -> RunHead:
        """The head of the run a step (by id, of any level) belongs to."""
        return await self.reads.head_of_step(p.namespace_id, step_id)

    async def snapshot(
        self, p: Principal, ref: int | str, resource: Resource, *, since: float | None = None
    ) -> Snapshot:
        """``resource`` of the run as it is now (``since``: see :meth:`RunReads.head`)."""
        return resource(await self.head(p, ref, since=since))

    def run(self, p: Principal) -> Resource:
        """The run with its top-level steps, progress, time left, waiting reasons and the
        counts of every subtree."""

        async def build(head: RunHead) -> Any:
            read = await self.reads.run(head)
            return run_detail_view(read, p.namespace, await self.reads.facts(read, p.namespace))

        return lambda head: Snapshot(head, "run", lambda: build(head))

    async def read(self, p: Principal, ref: int | str) -> RunRead:
        """The typed read of a run now (for faces that render it their own way)."""
        return await self.reads.run(await self.head(p, ref))

    def steps(self, p: Principal, parent: int | None = None) -> Resource:
        """One level of the step tree (top level, or the items of ``parent``), in detail."""

        async def build(head: RunHead) -> Any:
            read = await self.reads.run(head)
            level = await self.reads.level(head, parent)
            return {
                "steps": level_view(read, level, await self.reads.facts(read, p.namespace, level))
            }

        return lambda head: Snapshot(head, ("steps", parent), lambda: build(head))

    def step(self, p: Principal, step_ref: str) -> Resource:
        """One step of any level, by key or id."""

        async def build(head: RunHead) -> Any:
            read = await self.reads.run(head)
            everything = await self.reads.all_steps(head)
            found = _find_step(everything, step_ref)
            if found is None:
                raise NotFound(f"run {head.id} has no step '{step_ref}'", code="step_not_found")
            level = tuple(s for s in everything if s.parent_step_id == found.parent_step_id)
            [view] = [
                v
                for v in level_view(
                    read, level, await self.reads.facts(read, p.namespace, (found,))
                )
                if v["id"] == found.id
            ]
            return view

        return lambda head: Snapshot(head, ("step", step_ref), lambda: build(head))

    def events(self, p: Principal) -> Resource:
        async def build(head: RunHead) -> Any:
            return {"events": [event_view(e) for e in await self.reads.events(head)]}

        return lambda head: Snapshot(head, "events", lambda: build(head))

    def values(self, p: Principal) -> Resource:
        async def build(head: RunHead) -> Any:
            return {"values": [value_view(v) for v in await self.reads.values(head)]}

        return lambda head: Snapshot(head, "values", lambda: build(head))

    def errors(self, p: Principal) -> Resource:
        async def build(head: RunHead) -> Any:
            return {"errors": [error_view(e) for e in await self.reads.errors(head)]}

        return lambda head: Snapshot(head, "errors", lambda: build(head))

    def resources(self, p: Principal) -> Resource:
        async def build(head: RunHead) -> Any:
            return {"resources": [resource_view(r) for r in await self.reads.resources(head)]}

        return lambda head: Snapshot(head, "resources", lambda: build(head))

    def output(self, p: Principal, step_ref: str, name: str) -> Resource:
        """The output ``name`` of a step (by key or id), once the step has given it."""

        async def build(head: RunHead) -> Any:
            found = _find_step(await self.reads.all_steps(head), step_ref)
            if found is None:
                raise NotFound(f"run {head.id} has no step '{step_ref}'", code="step_not_found")
            latest = None
            for v in await self.reads.values(head):
                if v.step_id == found.id and v.scope == "output" and v.name == name:
                    latest = v
            if latest is None:
                raise NotFound(
                    f"step '{step_ref}' of run {head.id} has no output '{name}'",
                    code="value_not_found",
                )
            return value_view(latest)

        return lambda head: Snapshot(head, ("output", step_ref, name), lambda: build(head))

    async def run_at(self, head: RunHead) -> RunRead:
        """The typed read of the run at ``head``'s version."""
        return await self.reads.run(head)

    async def step_args_of(self, head: RunHead) -> dict[int, Any]:
        """The resolved ``with:`` of each top-level step at ``head``'s version, by step id."""
        return await self.reads.step_args(head)

    async def said_of(self, head: RunHead, step_id: int) -> str | None:
        """The latest message a step of the run reported with its progress, if any."""
        return await self.reads.said(head, step_id)

    async def values_of(self, head: RunHead) -> tuple[ValueRecord, ...]:
        return await self.reads.values(head)

    async def errors_of(self, head: RunHead) -> tuple[ErrorRecord, ...]:
        return await self.reads.errors(head)

    async def resources_of(self, head: RunHead) -> tuple[ResourceRecord, ...]:
        return await self.reads.resources(head)

    async def value(self, p: Principal, value_id: int) -> Snapshot:
        """One value by its id; another namespace's value does not exist."""
        found = None
        if 0 < value_id <= MAX_ID:
            found = await self.reads.value(p.namespace_id, value_id)
        if found is None:
            raise NotFound(f"value {value_id} does not exist", code="value_not_found")
        value, head = found

        async def build() -> Any:
            return value_view(value)

        return Snapshot(head, ("value", value_id), build)

    async def rendered(
        self, snap: Snapshot, form: Hashable, encode: Callable[[Any], bytes]
    ) -> bytes:
        """The snapshot's body as ``encode`` makes it (``form`` names the encoding), kept
        as :meth:`kept` keeps answers."""

        async def build() -> bytes:
            return encode(await snap.body())

        return await self.kept(snap.head, (snap.key, form), build)

    async def kept(self, head: RunHead, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        """What ``build`` makes of this version of the run (``key`` names it: a face's
        answer, in its format), kept while the run stays at this version: for good once it
        has finished, else for :data:`FRESH_SECONDS`, since what a running run shows also
        tells time (time left, elapsed, waiting until) and live facts (whether a worker is
        alive). ``build`` must read the run at ``head``'s version, or later."""
        kept = self.reads.remembered(head, key)
        now = time.monotonic()
        if kept is not None and (head.finished or now - kept[0] < FRESH_SECONDS):
            return kept[1]  # type: ignore[no-any-return]

        async def make() -> Any:
            started = time.monotonic()
            value = await build()
            self.reads.remember(head, key, (started, value))
            return value

        # the requests that find it missing meanwhile share one build, as they would share
        # what it keeps: any of a finished run, one begun lately of a running one
        since = -math.inf if head.finished else now - FRESH_SECONDS
        made: T = await self._builds.run(
            (head.id, head.uuid, head.version, key), make, begun_after=since
        )
        return made

    # -- many runs -------------------------------------------------------------------------

    async def batch_get(self, p: Principal, refs: Sequence[int | str]) -> dict[str, Any]:
        """``{"runs": [...], "not_found": [...]}`` in the asked order; another namespace's
        runs are not found."""
        if len(refs) > MAX_BATCH:
            raise InvalidInput(
                f"at most {MAX_BATCH} ids per request, got {len(refs)}",
                errors=[{"path": "ids", "message": f"at most {MAX_BATCH} ids"}],
            )
        parsed = [parse_ref(r) for r in refs]
        heads = await self.reads.find(p.namespace_id, [r for r in parsed if r is not None])
        resource = self.run(p)
        found: list[Any] = []
        missing: list[int | str] = []
        for ref, key in zip(refs, parsed, strict=True):
            head = heads.get(key) if key is not None else None
            if head is not None:
                with contextlib.suppress(NotFound):  # deleted meanwhile
                    found.append(await resource(head).body())
                    continue
            missing.append(key if isinstance(key, int) else ref)
        return {"runs": found, "not_found": missing}

    # -- waiting ---------------------------------------------------------------------------

    async def poll(
        self,
        load: Callable[[float | None], Awaitable[Snapshot]],
        unchanged: Callable[[Snapshot], bool],
        timeout: float,
    ) -> Snapshot:
        """Load; while ``unchanged`` holds and ``timeout`` seconds have not passed, wait for
        the run to change and load again (``load``'s argument: the wake-up, whose read may
        be shared). Answers the last snapshot."""
        snap = await load(None)
        if timeout <= 0 or not unchanged(snap):
            return snap
        deadline = time.monotonic() + timeout
        async with self.db.watching(f"run:{snap.run_id}") as changes:
            while True:
                # woken or looking again (RECHECK_SECONDS): a read begun since is shared
                snap = await load(changes.look() or time.monotonic())
                left = deadline - time.monotonic()
                if not unchanged(snap) or left <= 0:
                    return snap
                await changes.wait(min(left, RECHECK_SECONDS))

    async def poll_run(
        self,
        p: Principal,
        ref: int | str,
        resource: Resource,
        unchanged: Callable[[Snapshot], bool],
        timeout: float,
        *,
        prepare: tuple[Hashable, Prepare] | None = None,
    ) -> Snapshot:
        """:meth:`poll` for a resource of a run, waiting in the run's room with everyone
        else of this process who waits for it (``prepare``: what to have ready, under its
        key, before the waiters hear of a new version)."""
        read_at = time.monotonic()
        snap = resource(await self.head(p, ref))
        if timeout <= 0 or not unchanged(snap):
            return snap
        deadline = time.monotonic() + timeout
        run_id = snap.run_id
        async with self._rooms.enter(run_id, self._head_reader(p, run_id)) as room:
            if prepare is not None:
                room.want(*prepare)
            if read_at < room.following_since:  # a commit before the room followed the run
                snap = resource(await self.head(p, run_id))
            while unchanged(snap):
                left = deadline - time.monotonic()
                head = await room.next_head(left) if left > 0 else None
                if head is None:
                    break
                snap = resource(head)
        return snap

    async def watch(
        self,
        p: Principal,
        ref: int | str,
        resource: Resource,
        *,
        after_seq: int | None = None,
        prepare: tuple[Hashable, Prepare] | None = None,
    ) -> AsyncIterator[Snapshot]:
        """The resource now (unless ``after_seq`` is its version already) and again after
        each change, until the run has finished; ends early if the run is deleted. Waits in
        the run's room (``prepare``: as for :meth:`poll_run`)."""
        read_at = time.monotonic()
        head = await self.head(p, ref)
        last = after_seq
        async with self._rooms.enter(head.id, self._head_reader(p, head.id)) as room:
            if prepare is not None:
                room.want(*prepare)
            if read_at < room.following_since:
                head = await self.head(p, head.id)
            while True:
                snap = resource(head)
                if last is None or snap.change_seq > last:
                    last = snap.change_seq
                    yield snap
                if snap.finished:
                    return
                try:
                    head = await room.next_head(STREAM_PATIENCE) or head
                except NotFound:
                    return

    def _head_reader(self, p: Principal, run_id: int) -> Callable[[], Awaitable[RunHead]]:
        return lambda: self.head(p, run_id)


def _find_step(steps: Sequence[StepRecord], step_ref: str) -> StepRecord | None:
    """A step by key (the first of any level) or by id."""
    for s in steps:
        if s.key == step_ref:
            return s
    if step_ref.isascii() and step_ref.isdigit():
        for s in steps:
            if str(s.id) == step_ref:
                return s
    return None
