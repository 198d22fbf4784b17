"""What the Oracle self-service face needs beyond the run service: executions found by integer
id or by external id (a change-ticket number) and limited to one ``requestor``, many statuses
in one read, and the step tree walked one level at a time across sub-workflow runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from legato.model.errors import Conflict, InvalidInput, NotFound
from legato.model.ids import MAX_ID, parse_id
from legato.model.reads import RunOrigin
from legato.model.starts import StartRun
from legato.model.states import StepStatus
from legato.service.principal import Principal
from legato.service.runs import RunService
from legato.service.status import MAX_BATCH
from legato.service.views import step_view
from legato.store import reads as reads_store
from legato.store import runs as run_store
from legato.store.database import Database

__all__ = ["SelfServiceSupport"]

#: How many sub-workflow levels a step id is looked for in.
MAX_DEPTH = 16
#: Requestors whose execution id is the client's own number (kept as the run's external id).
BY_EXTERNAL_ID = frozenset({"CONFIG"})
_NESTING_KINDS = frozenset({"group", "workflow"})
_LOG_PAGE = 1000
_ERROR_LEVELS = frozenset({"error", "critical"})
_LOG_PAGES = 100


def _status(row: Any) -> str:
    """The run's status, ``SCHEDULED`` for a run waiting for a later start time."""
    if row.status == "QUEUED" and row.held_until is not None:
        return "SCHEDULED"
    return str(row.status)


def _execution_not_found(ref: str) -> NotFound:
    return NotFound(f"execution {ref} does not exist", code="execution_not_found")


class SelfServiceSupport:
    def __init__(self, db: Database, runs: RunService) -> None:
        self.db = db
        self.runs = runs

    async def _find(self, conn: Any, p: Principal, ref: str, requestor: str) -> Any:
        """The run named ``ref`` (integer id, or external id; CONFIG looks at the external id
        first) when it carries ``requestor``; None otherwise."""
        ref = ref.strip()
        if not ref or len(ref) > 200:
            return None
        by_id = parse_id(ref, low=1)
        row = None
        if requestor in BY_EXTERNAL_ID or by_id is None:
            row = await run_store.find_run_by_external_id(conn, p.namespace_id, ref)
        if row is None and by_id is not None:
            row = await run_store.find_run(conn, p.namespace_id, by_id)
        if row is None or row.requestor != requestor or row.parent_run_id is not None:
            return None
        return row

    async def statuses(
        self, p: Principal, refs: Sequence[str], requestor: str
    ) -> list[tuple[str, str | None]]:
        """The run status of each execution in the asked order; None for one not found."""
        if len(refs) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} ids per request, got {len(refs)}")
        out: list[tuple[str, str | None]] = []
        for ref in refs:
            found = await self._origin(p, ref, requestor)
            out.append((ref, None if found is None else _status(found)))
        return out

    async def _origin(self, p: Principal, ref: str, requestor: str) -> RunOrigin | None:
        """What :meth:`_find` finds, by point reads of one row each (no transaction)."""
        ref = ref.strip()
        if not ref or len(ref) > 200:
            return None
        by_id = parse_id(ref, low=1)
        reads = self.runs.reads
        found = None
        if requestor in BY_EXTERNAL_ID or by_id is None:
            found = await reads.origin(p.namespace_id, ref, by_external_id=True)
        if found is None and by_id is not None:
            found = await reads.origin(p.namespace_id, by_id)
        if found is None or found.requestor != requestor or found.parent_run_id is not None:
            return None
        return found

    async def schedule(
        self, p: Principal, ref: str, requestor: str, until: float
    ) -> dict[str, Any]:
        """Start an execution that has not started at ``until`` (it waits QUEUED until then,
        and can be cancelled meanwhile); a time that has come starts it now."""
        p.require("operator")
        async with self.db.read() as conn:
            row = await self._find(conn, p, ref, requestor)
        if row is None:
            raise _execution_not_found(ref)
        if row.status != "QUEUED" or row.started_at is not None:
            if until <= time.time():
                return await self.runs.get(p, row.id)
            raise Conflict(
                f"execution {ref} has started already ({row.status}); it cannot be scheduled",
                code="run_started",
            )
        if not await self.runs.transitions.hold(row.id, until):
            raise Conflict(f"execution {ref} has started already", code="run_started")
        return await self.runs.get(p, row.id)

    async def execution(self, p: Principal, ref: str, requestor: str) -> dict[str, Any]:
        """The run of an execution (its native view)."""
        async with self.db.read() as conn:
            row = await self._find(conn, p, ref, requestor)
        if row is None:
            raise _execution_not_found(ref)
        return await self.runs.get(p, row.id)

    async def sub_steps(
        self, p: Principal, ref: str, requestor: str, step_id: int
    ) -> list[dict[str, Any]]:
        """The children of ``step_id`` (0: the run's top-level steps): foreach items, a group's
        steps, or the top-level steps of a sub-workflow step's child run. Each is the native
        step view plus ``has_sub_steps`` and ``remark`` (a failed step's error, else the
        latest log line of the step or of a step below it, else its status message)."""
        async with self.db.read() as conn:
            run = await self._find(conn, p, ref, requestor)
            if run is None:
                raise _execution_not_found(ref)
            if step_id == 0:
                return await self._level(conn, run.id, None)
            found = await self._locate(conn, p, run.id, step_id, MAX_DEPTH)
            if found is None:
                raise NotFound(f"execution {ref} has no step {step_id}", code="step_not_found")
            run_id, step = found
            if step.child_run_id is not None:
                return await self._level(conn, step.child_run_id, None)
            return await self._level(conn, run_id, step.id)

    async def _locate(
        self, conn: Any, p: Principal, run_id: int, step_id: int, depth: int
    ) -> tuple[int, Any] | None:
        """The step ``step_id`` in the run or, level by level, in its sub-workflow runs."""
        if not 0 < step_id <= MAX_ID or depth <= 0:
            return None
        rows = await run_store.run_steps(conn, run_id, all_levels=True)
        for row in rows:
            if row.id == step_id:
                return run_id, row
        for row in rows:
            if row.child_run_id is not None:
                child = await run_store.find_run(conn, p.namespace_id, int(row.child_run_id))
                if child is None:
                    continue
                found = await self._locate(conn, p, child.id, step_id, depth - 1)
                if found is not None:
                    return found
        return None

    async def _level(self, conn: Any, run_id: int, parent: int | None) -> list[dict[str, Any]]:
        rows = await run_store.run_steps(conn, run_id, parent=parent)
        children = {int(s.child_run_id): s.id for s in rows if s.child_run_id is not None}
        counts = await run_store.subtree_counts(conn, run_id, children)
        remarks = await _remarks(conn, run_id)
        out = []
        for s in rows:
            view = step_view(s)
            view["has_sub_steps"] = bool(counts.get(s.id)) or s.kind in _NESTING_KINDS
            error = s.error.get("message") if isinstance(s.error, dict) else None
            if s.status in (StepStatus.FAILED, StepStatus.TIMED_OUT) and error:
                view["remark"] = str(error)
            else:
                view["remark"] = remarks.get(s.id) or s.status_message
            out.append(view)
        return out

    async def start(
        self,
        p: Principal,
        requestor: str,
        inputs: dict[str, Any],
        external_id: str | None,
        start_at: float | None = None,
    ) -> dict[str, Any]:
        """A run of the workflow named after the requestor (``EXADATA_CPU_SCALE`` ->
        ``exadata-cpu-scale``), carrying the requestor; held until ``start_at`` if given."""
        view, _new = await self.runs.start(
            p,
            StartRun(
                workflow=workflow_for(requestor),
                inputs=inputs,
                requestor=requestor,
                operation_type=requestor,
                external_id=external_id,
                start_at=start_at,
            ),
        )
        return view

    async def cancel(self, p: Principal, ref: str, requestor: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await self._find(conn, p, ref, requestor)
        if row is None:
            raise _execution_not_found(ref)
        return await self.runs.cancel(p, row.id)


async def _remarks(conn: Any, run_id: int) -> dict[int, str]:
    """Step id -> the latest log line of the step or of any step below it (a group's, a
    foreach's), from one pass over the run's log. Error lines are left out: a failed step's
    remark is its error, a step waiting to retry keeps the milestone its last attempt reached."""
    latest: dict[str, tuple[int, str]] = {}
    after = 0
    for _page in range(_LOG_PAGES):
        rows = await reads_store.read_logs(conn, run_id, after=after, limit=_LOG_PAGE)
        for line in rows:
            if line.step_key is not None and str(line.level).lower() not in _ERROR_LEVELS:
                latest[line.step_key] = (line.id, line.message)
        if len(rows) < _LOG_PAGE:
            break
        after = rows[-1].id
    if not latest:
        return {}
    steps = await run_store.run_steps(conn, run_id, all_levels=True)
    by_id = {s.id: s for s in steps}
    best: dict[int, tuple[int, str]] = {}
    for s in steps:
        hit = latest.get(s.key)
        node = s if hit is not None else None
        while node is not None and hit is not None:
            if best.get(node.id, (-1, ""))[0] < hit[0]:
                best[node.id] = hit
            node = by_id.get(node.parent_step_id)
    return {step_id: message for step_id, (_seq, message) in best.items()}


def workflow_for(requestor: str) -> str:
    return requestor.strip().lower().replace("_", "-")
