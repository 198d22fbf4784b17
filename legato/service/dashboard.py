"""What the dashboard shows beyond the API's resources: counts by status for the chips, the
figures of each workflow over the last day, and queue depth per namespace."""

from __future__ import annotations

import statistics
import time
from typing import Any

from legato.model.states import RunStatus
from legato.service.principal import Principal
from legato.store import dashboard as store
from legato.store import runs as run_store
from legato.store.database import Database

__all__ = ["COUNT_CAP", "DashboardService"]

#: counts by status stop here (the chip then says "10000+"): bounded work at any size
COUNT_CAP = 10_000
_DAY = 86_400.0
_RECENT_LIMIT = 20_000


class DashboardService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def counts_by_status(self, p: Principal) -> dict[str, int]:
        p.require("viewer")
        async with self.db.read() as conn:
            return {
                str(s): await store.capped_count(conn, p.namespace_id, str(s), COUNT_CAP + 1)
                for s in RunStatus
            }

    async def workflow_figures(self, p: Principal) -> dict[str, dict[str, Any]]:
        """Per workflow, over the last 24 h of top-level runs: how many, the share of the
        finished ones that succeeded, and the median duration of the successful ones."""
        p.require("viewer")
        async with self.db.read() as conn:
            rows = await store.recent_runs_of(
                conn, p.namespace_id, time.time() - _DAY, _RECENT_LIMIT
            )
        figures: dict[str, dict[str, Any]] = {}
        durations: dict[str, list[float]] = {}
        for workflow, status, started, finished in rows:
            f = figures.setdefault(workflow, {"runs_24h": 0, "finished": 0, "succeeded": 0})
            f["runs_24h"] += 1
            if finished is not None:
                f["finished"] += 1
            if status == RunStatus.SUCCEEDED:
                f["succeeded"] += 1
                if started is not None and finished is not None:
                    durations.setdefault(workflow, []).append(finished - started)
        for workflow, f in figures.items():
            f["success_rate"] = f["succeeded"] / f["finished"] if f["finished"] else None
            found = durations.get(workflow)
            f["p50_ms"] = round(statistics.median(found) * 1000) if found else None
        return figures

    async def queue_depth(self, p: Principal) -> dict[str, dict[str, int]]:
        """Queued and running runs per namespace (the caller's, or all for the
        installation's admins)."""
        p.require("viewer")
        async with self.db.read() as conn:
            found = await store.queued_by_namespace(
                conn, (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELING)
            )
        return {ns: v for ns, v in found.items() if p.administers_all or ns == p.namespace}

    async def work_of_workers(self, p: Principal) -> dict[str, dict[str, Any]]:
        """Per worker: how many slots it uses now, and the steps it runs (of the namespaces
        the caller sees)."""
        p.require("viewer")
        async with self.db.read() as conn:
            held = await store.leased_steps(conn)
        work: dict[str, dict[str, Any]] = {}
        for worker, namespace_id, run_id, key in held:
            entry = work.setdefault(worker, {"slots_in_use": 0, "running": []})
            entry["slots_in_use"] += 1
            if p.administers_all or namespace_id == p.namespace_id:
                entry["running"].append({"run_id": run_id, "step": key})
        return work

    async def find_run(self, p: Principal, text: str) -> int | None:
        """The run a person typed: its id, its UUID or its external id (in the caller's
        namespace)."""
        p.require("viewer")
        text = text.strip()
        if not text or len(text) > 200:
            return None
        async with self.db.read() as conn:
            row = None
            if text.isdigit() and len(text) < 19:
                row = await run_store.find_run(conn, p.namespace_id, int(text))
            elif len(text) == 36:
                row = await run_store.find_run(conn, p.namespace_id, text)
            if row is None:
                row = await run_store.find_run_by_external_id(conn, p.namespace_id, text)
        return None if row is None else int(row.id)
