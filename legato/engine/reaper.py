"""The reaper: takes over steps whose worker died, and enforces step and run deadlines.

Any node may run it; every change it makes goes through the fenced complete-and-advance path,
so two reapers racing (or a reaper racing a slow worker) record each outcome once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from legato.engine.retention import purge_expired_runs
from legato.engine.transitions import Transitions, lease_lost
from legato.model.advance import DEFAULT_MAX_TAKEOVERS
from legato.model.records import StepResult
from legato.model.states import StepStatus
from legato.store.database import Database, wait_set
from legato.store.leases import expired_steps, overdue_runs

__all__ = ["Reaper"]

log = logging.getLogger("legato.reaper")


class Reaper:
    def __init__(
        self,
        db: Database,
        transitions: Transitions,
        *,
        interval: float = 1.0,
        timeout_grace: float = 5.0,
        retention_interval: float = 60.0,
        max_takeovers: int = DEFAULT_MAX_TAKEOVERS,
    ) -> None:
        self.db = db
        self.transitions = transitions
        self.interval = interval
        self.timeout_grace = timeout_grace
        self.retention_interval = retention_interval
        self.max_takeovers = max_takeovers
        self._next_retention = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("reaper sweep failed")
            await wait_set(stop, self.interval)

    async def sweep(self) -> int:
        """One pass; answers how many steps and runs it changed."""
        changed = 0
        rows = await expired_steps(self.db, self.timeout_grace)
        if rows:
            results = []
            for row in rows:
                if row.lapsed:
                    results.append(
                        lease_lost(row.id, row.attempt, row.lease_owner, self.max_takeovers)
                    )
                else:
                    results.append(
                        StepResult(
                            row.id,
                            row.attempt,
                            StepStatus.TIMED_OUT,
                            worker=row.lease_owner,
                            error={
                                "code": "step_timeout",
                                "message": "step exceeded its timeout (enforced by the reaper)",
                            },
                        )
                    )
            changed += await self.transitions.complete(results, [r.run_id for r in rows])
        for run_id in await overdue_runs(self.db):
            changed += await self.transitions.cancel(
                run_id, "run exceeded its timeout", code="run_timeout"
            )
        if time.monotonic() >= self._next_retention:  # once a minute: purge what has expired
            self._next_retention = time.monotonic() + self.retention_interval
            await purge_expired_runs(self.db)
        return changed
