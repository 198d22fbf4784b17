"""What the datasourcesvc face needs beyond the run service: runs paged by offset with
their total, a run with its workflow's UUID and description, the namespace's queue, a
workflow found by UUID, and a run's whole log with its steps' times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from legato.model.errors import NotFound
from legato.model.filters import RunFilter
from legato.service.principal import Principal
from legato.store import reads as reads_store
from legato.store import run_pages
from legato.store import runs as run_store
from legato.store.database import Database
from legato.store.tenancy import find_namespace, namespace_by_id

__all__ = ["DatasourcesvcSupport", "step_record"]

_LOG_BATCH = 1000


def step_record(s: Any, args: Any) -> dict[str, Any]:
    """A step as datasourcesvc's run records show it (``args``: its resolved ``with:``)."""
    return {
        "id": s.id,
        "key": s.key,
        "name": s.name,
        "kind": s.kind,
        "type": s.type_label,
        "rank": s.rank,
        "status": s.status,
        "error": s.error,
        "outputs": s.outputs if s.outputs is not None else {},
        "args": args,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
    }


def _run_record(row: Any, namespace: str, steps: list[Any]) -> dict[str, Any]:
    mapping: Mapping[str, Any] = row._mapping
    return {
        "id": row.id,
        "uuid": row.uuid,
        "namespace": namespace,
        "workflow_uuid": row.workflow_uuid,
        "workflow_name": row.workflow_name,
        "workflow_version": row.workflow_version,
        "description": row.workflow_description or "",
        "operation_type": row.operation_type,
        "requestor": row.requestor,
        "labels": dict(row.labels or {}),
        "status": row.status,
        "error": row.error,
        "inputs": mapping.get("inputs") or {},
        "outputs": mapping.get("outputs") or {},
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "updated_at": row.updated_at,
        "steps": [step_record(s, s.args) for s in steps],
    }


class DatasourcesvcSupport:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def scope(self, p: Principal, namespace: str) -> Principal:
        """The caller acting in ``namespace``: its own, or any one for the installation's
        admins; another tenant's namespace is not found."""
        if namespace == p.namespace:
            return p
        if p.administers_all:
            async with self.db.read() as conn:
                row = await find_namespace(conn, namespace)
            if row is not None:
                return replace(p, namespace_id=int(row.id), namespace=row.name)
        raise NotFound(f"namespace '{namespace}' does not exist", code="namespace_not_found")

    async def page(
        self, p: Principal, flt: RunFilter, *, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The total the filter matches, and one page of runs (newest first) with their
        top-level steps."""
        async with self.db.read() as conn:
            total = await run_pages.count_runs(conn, flt)
            rows = await run_pages.page_runs(conn, flt, limit=limit, offset=offset)
            steps = await run_pages.top_steps(conn, [r.id for r in rows])
        by_run: dict[int, list[Any]] = {}
        for s in steps:
            by_run.setdefault(s.run_id, []).append(s)
        return total, [_run_record(r, p.namespace, by_run.get(r.id, [])) for r in rows]

    async def run(self, p: Principal, ref: int | str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await run_pages.find_run_with_workflow(conn, p.namespace_id, ref)
            if row is None:
                raise NotFound(f"run {ref} does not exist", code="run_not_found")
            steps = await run_store.run_steps(conn, row.id)
        return _run_record(row, p.namespace, list(steps))

    async def queue(self, p: Principal) -> tuple[int, int | None]:
        """How many runs of the namespace are queued, and its own queue limit (if any)."""
        async with self.db.read() as conn:
            queued = await run_store.count_queued(conn, p.namespace_id)
            ns = await namespace_by_id(conn, p.namespace_id)
        return queued, None if ns is None else ns.max_queued_runs

    async def workflow_by_uuid(self, p: Principal, workflow_uuid: str) -> tuple[str, int] | None:
        """The name and version of the workflow version with that UUID, in the namespace."""
        async with self.db.read() as conn:
            row = await run_pages.find_workflow_by_uuid(conn, p.namespace_id, workflow_uuid)
        return None if row is None else (str(row.name), int(row.version))

    async def logs(
        self, p: Principal, ref: int | str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The run (with its steps) and every log line it has, in order."""
        run = await self.run(p, ref)
        lines: list[dict[str, Any]] = []
        after = 0
        async with self.db.read() as conn:
            while True:
                rows = await reads_store.read_logs(conn, run["id"], after=after, limit=_LOG_BATCH)
                lines.extend(
                    {"time": r.time, "level": r.level, "step": r.step_key, "message": r.message}
                    for r in rows
                )
                if len(rows) < _LOG_BATCH:
                    break
                after = rows[-1].id
        return run, lines
