"""Leases on running steps: renew a worker's, find the lapsed ones and the overdue runs."""

from __future__ import annotations

import functools
import time
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, select, update

from legato.model.states import RunStatus, StepStatus
from legato.store.database import Database, Tx
from legato.store.tables import runs, steps

__all__ = ["expired_steps", "heartbeat", "overdue_runs"]


async def heartbeat(db: Database, worker: str, lease_seconds: float) -> set[int]:
    """Renew every lease ``worker`` holds; answer the ids of steps asked to cancel."""

    async def tx_beat(tx: Tx) -> set[int]:
        rows = await tx.conn.execute(
            update(steps)
            .where(steps.c.lease_owner == worker, steps.c.status == StepStatus.RUNNING)
            .values(lease_expires_at=time.time() + lease_seconds)
            .returning(steps.c.id, steps.c.cancel_requested)
        )
        return {r.id for r in rows if r.cancel_requested}

    return await db.write(tx_beat)


@functools.cache
def _expired_query(limit: int) -> Select[Any]:
    now: BindParameter[float] = bindparam("now")
    grace: BindParameter[float] = bindparam("grace")
    return (
        select(
            steps.c.id,
            steps.c.run_id,
            steps.c.attempt,
            steps.c.lease_owner,
            (steps.c.lease_expires_at < now).label("lapsed"),
        )
        .where(steps.c.status == StepStatus.RUNNING, steps.c.lease_owner.is_not(None))
        .where(
            (steps.c.lease_expires_at < now)
            | and_(
                steps.c.timeout_s.is_not(None),
                steps.c.started_at + steps.c.timeout_s + grace < now,
            )
        )
        .limit(limit)
    )


async def expired_steps(db: Database, grace: float, limit: int = 200) -> list[Any]:
    """Running steps whose lease lapsed, or that outlived their timeout by ``grace``."""
    # built once: the reaper asks every second, and building it cost more than running it
    query = _expired_query(limit)
    async with db.read() as conn:
        return list(await conn.execute(query, {"now": time.time(), "grace": grace}))


@functools.cache
def _overdue_query(limit: int) -> Select[Any]:
    return (
        select(runs.c.id)
        .where(
            runs.c.deadline_at < bindparam("now"),
            runs.c.finished_at.is_(None),
            runs.c.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]),
        )
        .limit(limit)
    )


async def overdue_runs(db: Database, limit: int = 100) -> list[int]:
    query = _overdue_query(limit)
    async with db.read() as conn:
        return list((await conn.execute(query, {"now": time.time()})).scalars())
