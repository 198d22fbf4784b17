"""Aggregates the dashboard shows beside run status: capped counts by status and a
workflow's recent figures. Each walks one of the runs indexes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import namespaces, runs, steps

__all__ = ["capped_count", "leased_steps", "queued_by_namespace", "recent_runs_of"]


async def capped_count(conn: AsyncConnection, namespace_id: int, status: str, cap: int) -> int:
    """How many runs have ``status``, counting no further than ``cap`` (bounded work)."""
    inner = (
        select(runs.c.id)
        .where(runs.c.namespace_id == namespace_id, runs.c.status == status)
        .limit(cap)
        .subquery()
    )
    return int((await conn.execute(select(func.count()).select_from(inner))).scalar_one())


async def recent_runs_of(
    conn: AsyncConnection, namespace_id: int, since: float, limit: int
) -> list[tuple[str, str, float | None, float | None]]:
    """(workflow, status, started_at, finished_at) of the top-level runs created since."""
    rows = await conn.execute(
        select(runs.c.workflow_name, runs.c.status, runs.c.started_at, runs.c.finished_at)
        .where(
            runs.c.namespace_id == namespace_id,
            runs.c.created_at >= since,
            runs.c.parent_run_id.is_(None),
        )
        .order_by(runs.c.created_at.desc())
        .limit(limit)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def queued_by_namespace(conn: AsyncConnection, statuses: tuple[str, ...]) -> dict[str, Any]:
    """Runs per namespace in each of ``statuses`` (few runs are active at a time: each count
    walks its own short range of the namespace-and-status index)."""
    out: dict[str, Any] = {}
    for ns_id, name in await conn.execute(select(namespaces.c.id, namespaces.c.name)):
        for status in statuses:
            n = (
                await conn.execute(
                    select(func.count()).where(
                        runs.c.namespace_id == ns_id, runs.c.status == status
                    )
                )
            ).scalar_one()
            if n:
                out.setdefault(name, {})[status] = int(n)
    return out


async def leased_steps(conn: AsyncConnection) -> list[tuple[str, int, int, str]]:
    """(worker, namespace id, run id, step key) of every step a worker holds now."""
    rows = await conn.execute(
        select(steps.c.lease_owner, runs.c.namespace_id, steps.c.run_id, steps.c.key)
        .join(runs, runs.c.id == steps.c.run_id)
        .where(steps.c.status == "RUNNING", steps.c.lease_owner.is_not(None))
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]
