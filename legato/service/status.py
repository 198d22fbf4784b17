"""Status resources of a run and watching them change.

Every resource of a run (the run, its steps, values, events, errors, resources) is answered as
a :class:`Snapshot`: the body plus the run's ``change_seq``, which the store raises on every
change of the run. A face derives its validators (ETags) from it, long-polls with
:meth:`StatusService.poll` and streams changes with :meth:`StatusService.watch`; both wait on the
run's wake-up topic (``run:{id}``), which crosses processes on PostgreSQL (LISTEN/NOTIFY) and
is local on SQLite, so a waiter answers right after the commit that changed the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from legato.model.errors import InvalidInput, NotFound
from legato.model.ids import parse_id
from legato.model.states import RUN_TERMINAL
from legato.service.tenancy import Principal
from legato.service.views import iso
from legato.store import runs as run_store
from legato.store import status as status_store
from legato.store.database import Database

__all__ = ["MAX_BATCH", "Body", "Snapshot", "StatusService", "parse_ref"]

MAX_ID = 2**63 - 1
MAX_BATCH = 100
#: However the wake-ups behave, a waiter looks again this often.
RECHECK_SECONDS = 5.0

#: Builds a resource's body from the run's integer id (inside a namespace already checked).
Body = Callable[[int], Awaitable[Any]]


@dataclass(frozen=True)
class Snapshot:
    """A status resource and the change of its run it reflects (at least)."""

    run_id: int
    change_seq: int
    run_status: str
    body: Any

    @property
    def finished(self) -> bool:
        return self.run_status in RUN_TERMINAL


def parse_ref(ref: int | str) -> int | str | None:
    """A run reference as the store takes it (integer id or UUID); None for what can name
    no run."""
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return ref if 0 < ref <= MAX_ID else None
    text = ref.strip()
    number = parse_id(text, low=1)
    if number is not None:
        return number
    if text.isdigit() or not text or len(text) > 36:
        return None
    return text


def value_view(v: Any) -> dict[str, Any]:
    return {
        "id": v.id,
        "scope": v.scope,
        "name": v.name,
        "type": v.type,
        "value": v.value,
        "step": v.step_key,
        "step_id": v.step_id,
        "created_at": iso(v.created_at),
    }


def error_view(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "code": e.code,
        "message": e.message,
        "time": iso(e.time),
        "step": e.step_key,
    }


def resource_view(r: Any) -> dict[str, Any]:
    row = r._mapping
    return {
        "id": row["id"],
        "type": row["type"],
        "resource_id": row["resource_id"],
        "action_result": row["action_result"],
        "metadata": row["metadata"] if row["metadata"] is not None else {},
        "step": row["step_key"],
        "time": iso(row["time"]),
    }


class StatusService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- snapshots -------------------------------------------------------------------------

    async def _head(self, p: Principal, ref: int | str) -> Any:
        store_ref = parse_ref(ref)
        head = None
        if store_ref is not None:
            async with self.db.read() as conn:
                head = await status_store.find_run_head(conn, p.namespace_id, store_ref)
        if head is None:
            raise NotFound(f"run {ref} does not exist", code="run_not_found")
        return head

    async def snapshot(self, p: Principal, ref: int | str, body: Body) -> Snapshot:
        """The run's change counter, then the body: the body is at least as new as the
        counter, so a validator derived from it never claims a state the body lacks."""
        head = await self._head(p, ref)
        return Snapshot(head.id, head.change_seq, head.status, await body(head.id))

    async def values(self, p: Principal, ref: int | str) -> Snapshot:
        async def body(run_id: int) -> Any:
            async with self.db.read() as conn:
                rows = await status_store.list_values(conn, run_id)
            return {"values": [value_view(v) for v in rows]}

        return await self.snapshot(p, ref, body)

    async def errors(self, p: Principal, ref: int | str) -> Snapshot:
        async def body(run_id: int) -> Any:
            async with self.db.read() as conn:
                rows = await run_store.list_errors(conn, run_id)
            return {"errors": [error_view(e) for e in rows]}

        return await self.snapshot(p, ref, body)

    async def resources(self, p: Principal, ref: int | str) -> Snapshot:
        async def body(run_id: int) -> Any:
            async with self.db.read() as conn:
                rows = await status_store.list_resources(conn, run_id)
            return {"resources": [resource_view(r) for r in rows]}

        return await self.snapshot(p, ref, body)

    async def value(self, p: Principal, value_id: int) -> Snapshot:
        """One value by its id; another namespace's value does not exist."""
        found = None
        if 0 < value_id <= MAX_ID:
            async with self.db.read() as conn:
                found = await status_store.find_value(conn, p.namespace_id, value_id)
        if found is None:
            raise NotFound(f"value {value_id} does not exist", code="value_not_found")
        value, head = found
        return Snapshot(head.id, head.change_seq, head.status, value_view(value))

    async def output(self, p: Principal, ref: int | str, step_ref: str, name: str) -> Snapshot:
        """The output ``name`` of a step (by key or id), once the step has given it."""

        async def body(run_id: int) -> Any:
            async with self.db.read() as conn:
                step_id = await status_store.find_step_id(conn, run_id, step_ref)
                if step_id is None:
                    raise NotFound(f"run {ref} has no step '{step_ref}'", code="step_not_found")
                row = await status_store.find_output(conn, run_id, step_id, name)
            if row is None:
                raise NotFound(
                    f"step '{step_ref}' of run {ref} has no output '{name}'",
                    code="value_not_found",
                )
            return value_view(row)

        return await self.snapshot(p, ref, body)

    # -- many runs -------------------------------------------------------------------------

    async def batch_get(
        self, p: Principal, refs: Sequence[int | str], body: Body
    ) -> dict[str, Any]:
        """``{"runs": [...], "not_found": [...]}`` in the asked order; another namespace's
        runs are not found."""
        if len(refs) > MAX_BATCH:
            raise InvalidInput(
                f"at most {MAX_BATCH} ids per request, got {len(refs)}",
                errors=[{"path": "ids", "message": f"at most {MAX_BATCH} ids"}],
            )
        parsed = [parse_ref(r) for r in refs]
        ids = [r for r in parsed if isinstance(r, int)]
        uuids = [r for r in parsed if isinstance(r, str)]
        async with self.db.read() as conn:
            rows = await status_store.find_run_ids(conn, p.namespace_id, ids, uuids)
        by_ref: dict[int | str, int] = {}
        for row in rows:
            by_ref[row.id] = row.id
            by_ref[row.uuid] = row.id
        found: list[Any] = []
        missing: list[int | str] = []
        for ref, key in zip(refs, parsed, strict=True):
            run_id = by_ref.get(key) if key is not None else None
            if run_id is not None:
                with contextlib.suppress(NotFound):  # deleted meanwhile
                    found.append(await body(run_id))
                    continue
            missing.append(key if isinstance(key, int) else ref)
        return {"runs": found, "not_found": missing}

    # -- waiting ---------------------------------------------------------------------------

    async def poll(
        self,
        load: Callable[[], Awaitable[Snapshot]],
        unchanged: Callable[[Snapshot], bool],
        timeout: float,
    ) -> Snapshot:
        """Load; while ``unchanged`` holds and ``timeout`` seconds have not passed, wait for
        the run to change and load again. Answers the last snapshot."""
        snap = await load()
        if timeout <= 0 or not unchanged(snap):
            return snap
        deadline = time.monotonic() + timeout
        topic = f"run:{snap.run_id}"
        changed = self.db.subscribe(topic)
        try:
            while True:
                changed.clear()  # before the load: a commit after it sets the event again
                snap = await load()
                left = deadline - time.monotonic()
                if not unchanged(snap) or left <= 0:
                    return snap
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left, RECHECK_SECONDS))
        finally:
            self.db.unsubscribe(topic, changed)

    async def watch(
        self, p: Principal, ref: int | str, body: Body, *, after_seq: int | None = None
    ) -> AsyncIterator[Snapshot]:
        """The run now (unless ``after_seq`` is its current change already) and again after
        each change, until the run has finished; ends early if the run is deleted."""
        run_id = (await self._head(p, ref)).id
        topic = f"run:{run_id}"
        changed = self.db.subscribe(topic)
        last = after_seq
        try:
            while True:
                changed.clear()  # before the load: a commit after it sets the event again
                try:
                    snap = await self.snapshot(p, run_id, body)
                except NotFound:
                    return
                if last is None or snap.change_seq > last:
                    last = snap.change_seq
                    yield snap
                if snap.finished:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), RECHECK_SECONDS)
        finally:
            self.db.unsubscribe(topic, changed)
