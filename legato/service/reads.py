"""Status reads of runs, at the cost they must have.

A read takes the run's head (one indexed row: its id, status and version), then the rest of
the read model from a per-process cache keyed by that version, reading the database again
only when the run changed. Everything stays exact: the head is read after the request came,
and a cached read is used only for the version that head names, so an answer never shows a
state older than the last change committed before the request. Concurrent builds of the same
version share one database read. What moves with the clock is left to read time
(:class:`ReadFacts`); the few live facts it needs (is any worker alive, is the namespace at its
limit) are read at most once a second per process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from legato.model.errors import NotFound
from legato.model.estimates import StepHistory
from legato.model.ids import MAX_ID, parse_id
from legato.model.reads import (
    ErrorRecord,
    EventRecord,
    ReadFacts,
    ResourceRecord,
    RunHead,
    RunOrigin,
    RunRead,
    StepRecord,
    ValueRecord,
)
from legato.model.states import RUN_TERMINAL, RunStatus, StepStatus
from legato.service.batching import SharedReads
from legato.service.flights import Flights
from legato.store import reads as reader
from legato.store.database import Database
from legato.store.stats import load_histories
from legato.store.step_reports import last_progress_message

__all__ = ["RunReads", "parse_ref"]

T = TypeVar("T")
#: Runs whose reads a process keeps (each a few kB for ordinary runs).
CACHED_RUNS = 4096
#: How long live facts (worker liveness, namespace load, duration history) are reused.
FACTS_SECONDS = 1.0
HISTORY_SECONDS = 2.0
#: A worker that has not beaten for this long is not alive.
WORKER_SILENCE_SECONDS = 60.0


def parse_ref(ref: int | str) -> int | str | None:
    """A run reference as the store takes it (integer id or UUID); None for what can name
    no run. Only ASCII digits make an id."""
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return ref if 0 < ref <= MAX_ID else None
    text = ref.strip()
    number = parse_id(text, low=1)
    if number is not None:
        return number
    if text.isdigit() or not text or len(text) > 36:  # Unicode digits name no run
        return None
    return text


class _Entry:
    """What the process keeps of one run at one version."""

    __slots__ = ("parts", "uuid", "version")

    def __init__(self, head: RunHead) -> None:
        self.version = head.version
        self.uuid = head.uuid
        self.parts: dict[Hashable, Any] = {}

    def of(self, head: RunHead) -> bool:
        """Whether this is what is kept of the run and version ``head`` names."""
        return self.version == head.version and self.uuid == head.uuid


class RunReads:
    def __init__(self, db: Database, *, capacity: int = CACHED_RUNS) -> None:
        self.db = db
        self.capacity = capacity
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._builds: Flights[Any] = Flights()
        self._head_reads: Flights[RunHead] = Flights()
        # PostgreSQL: concurrent point reads (heads by run or step id, origins by id) share a
        # statement (a round trip and a server process's time each); SQLite reads inline
        self._heads: SharedReads[int, RunHead] = SharedReads(lambda ids: reader.heads_now(db, ids))
        self._uuid_heads: SharedReads[str, RunHead] = SharedReads(
            lambda uuids: reader.heads_by_uuid_now(db, uuids)
        )
        self._step_heads: SharedReads[int, RunHead] = SharedReads(
            lambda ids: reader.heads_of_steps_now(db, ids)
        )
        self._origins: SharedReads[int, tuple[int, RunOrigin]] = SharedReads(
            lambda ids: reader.run_origins_now(db, ids)
        )
        self._facts: Flights[Any] = Flights()
        self._histories: dict[tuple[int, str], tuple[float, dict[str, StepHistory]]] = {}
        self._heartbeats: tuple[float, list[tuple[float, tuple[str, ...]]]] = (0.0, [])
        self._full: dict[int, tuple[float, bool]] = {}

    # -- heads ---------------------------------------------------------------------------

    async def head(
        self, namespace_id: int, ref: int | str, *, since: float | None = None
    ) -> RunHead:
        """The run's head, read now; NotFound for what names no run of the namespace.

        With ``since`` (a ``time.monotonic()``), a read of the same run begun after that
        moment may be shared: the watchers a commit wakes all at once read its head once."""
        if since is not None:
            return await self._shared_head(namespace_id, ref, since)
        store_ref = parse_ref(ref)
        head = None
        if store_ref is not None and not self.db.is_sqlite:
            if isinstance(store_ref, int):
                head = await self._heads.get(store_ref)
            else:
                head = await self._uuid_heads.get(store_ref)
            if head is not None and head.namespace_id != namespace_id:
                head = None
        elif store_ref is not None:
            head = await reader.head_now(self.db, namespace_id, store_ref)
        if head is None:
            raise NotFound(f"run {ref} does not exist", code="run_not_found")
        return head

    async def _shared_head(self, namespace_id: int, ref: int | str, since: float) -> RunHead:
        return await self._head_reads.run(
            (namespace_id, ref), lambda: self.head(namespace_id, ref), begun_after=since
        )

    async def head_of_step(self, namespace_id: int, step_id: int) -> RunHead:
        """The head of the run that step ``step_id`` (of any level) belongs to, read now;
        NotFound for a step of no run of the namespace."""
        head = None
        if 0 < step_id <= MAX_ID and not self.db.is_sqlite:
            head = await self._step_heads.get(step_id)
            if head is not None and head.namespace_id != namespace_id:
                head = None
        elif 0 < step_id <= MAX_ID:
            head = await reader.head_of_step_now(self.db, namespace_id, step_id)
        if head is None:
            raise NotFound(f"step {step_id} does not exist", code="step_not_found")
        return head

    async def origin(
        self, namespace_id: int, ref: int | str, *, by_external_id: bool = False
    ) -> RunOrigin | None:
        """A run by id (or external id) with what it was started for, read now."""
        if not by_external_id and not (isinstance(ref, int) and 0 < ref <= MAX_ID):
            return None
        if isinstance(ref, int) and not by_external_id and not self.db.is_sqlite:
            found = await self._origins.get(ref)
            return found[1] if found is not None and found[0] == namespace_id else None
        return await reader.run_origin_now(
            self.db, namespace_id, ref, by_external_id=by_external_id
        )

    async def find(self, namespace_id: int, refs: Sequence[int | str]) -> dict[int | str, RunHead]:
        """Heads of the namespace's runs among ids and UUIDs, by each of the two."""
        if not refs:
            return {}
        async with self.db.read() as conn:
            return await reader.find_heads(conn, namespace_id, refs)

    async def value(self, namespace_id: int, value_id: int) -> tuple[ValueRecord, RunHead] | None:
        async with self.db.read() as conn:
            return await reader.read_value(conn, namespace_id, value_id)

    # -- the read model, by version ------------------------------------------------------

    async def run(self, head: RunHead) -> RunRead:
        """The run with its top-level steps, subtree counts and duration history."""
        return await self._part(head, "run", lambda: self._read_run(head))

    async def level(self, head: RunHead, parent: int | None) -> tuple[StepRecord, ...]:
        """One level of the step tree: the top level, or the children of ``parent``."""
        if parent is None:
            return (await self.run(head)).steps
        return await self._part(head, ("level", parent), lambda: self._read_level(head, parent))

    async def all_steps(self, head: RunHead) -> tuple[StepRecord, ...]:
        return await self._part(head, "all_steps", lambda: self._read_all_steps(head))

    async def step_args(self, head: RunHead) -> dict[int, Any]:
        """The resolved ``with:`` of each top-level step, by step id."""
        return await self._part(head, "step_args", lambda: self._step_args(head))

    async def said(self, head: RunHead, step_id: int) -> str | None:
        """The latest message step ``step_id`` reported with its progress, if any."""
        return await self._part(head, ("said", step_id), lambda: self._said(step_id))

    async def values(self, head: RunHead) -> tuple[ValueRecord, ...]:
        return await self._part(head, "values", lambda: self._list(reader.read_values, head))

    async def events(self, head: RunHead) -> tuple[EventRecord, ...]:
        return await self._part(head, "events", lambda: self._list(reader.read_events, head))

    async def errors(self, head: RunHead) -> tuple[ErrorRecord, ...]:
        return await self._part(head, "errors", lambda: self._list(reader.read_errors, head))

    async def resources(self, head: RunHead) -> tuple[ResourceRecord, ...]:
        return await self._part(head, "resources", lambda: self._list(reader.read_resources, head))

    def remembered(self, head: RunHead, key: Hashable) -> Any:
        """Something a face derived from this version of the run (a rendered body), if kept."""
        entry = self._entries.get(head.id)
        return entry.parts.get(("face", key)) if entry and entry.of(head) else None

    def remember(self, head: RunHead, key: Hashable, value: Any) -> None:
        entry = self._entry(head)
        if entry is not None:
            entry.parts[("face", key)] = value

    def forget(self, run_id: int) -> None:
        self._entries.pop(run_id, None)

    # -- live facts ----------------------------------------------------------------------

    async def facts(
        self, read: RunRead, namespace: str, steps: tuple[StepRecord, ...] = ()
    ) -> ReadFacts:
        """The clock, and the live facts that explain why ``steps`` (default: the run's
        top-level steps) wait; read only when a step is ready to run. ``namespace``: the
        run's, whose steps only some workers may serve."""
        now = time.time()
        waiting = steps or read.steps
        if not any(s.status == StepStatus.READY for s in waiting):
            return ReadFacts(now)
        alive = await self._workers_alive(now, namespace)
        full = False
        if read.run.status == RunStatus.QUEUED:
            full = await self._namespace_full(read.run.namespace_id)
        return ReadFacts(now, workers_alive=alive, namespace_full=full)

    async def _workers_alive(self, now: float, namespace: str) -> bool:
        """Whether a worker that serves ``namespace`` (every namespace, or it by name) beat
        lately."""
        checked, beats = self._heartbeats
        if time.monotonic() - checked > FACTS_SECONDS:
            beats = await self._facts.run("heartbeats", self._read_heartbeats)
        return any(
            beat > now - WORKER_SILENCE_SECONDS and (not serves or namespace in serves)
            for beat, serves in beats
        )

    async def _read_heartbeats(self) -> list[tuple[float, tuple[str, ...]]]:
        started = time.monotonic()
        async with self.db.read() as conn:
            beats = await reader.worker_heartbeats(conn)
        self._heartbeats = (started, beats)
        return beats

    async def _namespace_full(self, namespace_id: int) -> bool:
        cached = self._full.get(namespace_id)
        if cached is not None and time.monotonic() - cached[0] <= FACTS_SECONDS:
            return cached[1]

        async def read() -> bool:
            started = time.monotonic()
            full = await reader.namespace_full(self.db, namespace_id)
            self._full[namespace_id] = (started, full)
            return full

        full: bool = await self._facts.run(("full", namespace_id), read)
        return full

    # -- building ------------------------------------------------------------------------

    def _entry(self, head: RunHead) -> _Entry | None:
        entry = self._entries.get(head.id)
        if entry is not None and entry.uuid == head.uuid and entry.version >= head.version:
            self._entries.move_to_end(head.id)
            return entry if entry.version == head.version else None
        entry = _Entry(head)
        self._entries[head.id] = entry
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry

    async def _part(self, head: RunHead, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(head.id)
        if entry is not None and entry.of(head) and key in entry.parts:
            self._entries.move_to_end(head.id)
            return entry.parts[key]  # type: ignore[no-any-return]
        value: T = await self._builds.run(
            (head.id, head.uuid, head.version, key), lambda: self._build(head, key, build)
        )
        return value

    async def _build(self, head: RunHead, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        value = await build()
        entry = self._entry(head)
        if entry is not None:
            entry.parts[key] = value
        return value

    async def _read_run(self, head: RunHead) -> RunRead:
        async with self.db.read() as conn:
            run = await reader.read_run(conn, head.id)
            if run is None:
                raise NotFound(f"run {head.id} does not exist", code="run_not_found")
            steps = await reader.read_steps(conn, head.id)
            children = {s.child_run_id: s.id for s in steps if s.child_run_id is not None}
            counts = await reader.read_subtree_counts(conn, head.id, children)
            # a finished run is read once and kept: its baselines are read fresh for it
            histories = await self._history(
                conn, run.namespace_id, run.workflow_name, fresh=run.status in RUN_TERMINAL
            )
        return RunRead(head.version, run, tuple(steps), counts, histories)

    async def _history(
        self, conn: Any, namespace_id: int, workflow: str, *, fresh: bool = False
    ) -> dict[str, Any]:
        key = (namespace_id, workflow)
        cached = self._histories.get(key)
        if not fresh and cached is not None and time.monotonic() - cached[0] <= HISTORY_SECONDS:
            return cached[1]
        loaded = await load_histories(conn, namespace_id, [workflow])
        histories = {step: h for (_wf, step), h in loaded.items()}
        if len(self._histories) > self.capacity:
            self._histories.clear()
        self._histories[key] = (time.monotonic(), histories)
        return histories

    async def _read_level(self, head: RunHead, parent: int) -> tuple[StepRecord, ...]:
        async with self.db.read() as conn:
            return tuple(await reader.read_steps(conn, head.id, parent=parent))

    async def _read_all_steps(self, head: RunHead) -> tuple[StepRecord, ...]:
        async with self.db.read() as conn:
            return tuple(await reader.read_steps(conn, head.id, all_levels=True))

    async def _said(self, step_id: int) -> str | None:
        async with self.db.read() as conn:
            return await last_progress_message(conn, step_id)

    async def _step_args(self, head: RunHead) -> dict[int, Any]:
        async with self.db.read() as conn:
            return await reader.read_step_args(conn, head.id)

    async def _list(
        self, fn: Callable[[Any, int], Awaitable[list[T]]], head: RunHead
    ) -> tuple[T, ...]:
        async with self.db.read() as conn:
            return tuple(await fn(conn, head.id))
