"""The counts ``/metrics`` reports from the store (aggregates on indexed columns)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import namespaces, runs, steps

__all__ = ["ready_steps", "run_counts"]


async def run_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    rows = await conn.execute(
        select(namespaces.c.name, runs.c.status, func.count())
        .join(namespaces, namespaces.c.id == runs.c.namespace_id)
        .group_by(namespaces.c.name, runs.c.status)
    )
    return {(ns, status): n for ns, status, n in rows}


async def ready_steps(conn: AsyncConnection) -> int:
    return int(
        (
            await conn.execute(
                select(func.count()).select_from(steps).where(steps.c.status == "READY")
            )
        ).scalar_one()
    )
