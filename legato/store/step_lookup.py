"""A step found by its integer id alone (dialects that address steps without their run)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import runs, steps

__all__ = ["find_step_run"]


async def find_step_run(conn: AsyncConnection, namespace_id: int, step_id: int) -> int | None:
    """The id of the run the step belongs to, if that run is the namespace's."""
    row = (
        await conn.execute(
            select(steps.c.run_id)
            .join(runs, runs.c.id == steps.c.run_id)
            .where(steps.c.id == step_id, runs.c.namespace_id == namespace_id)
        )
    ).first()
    return None if row is None else int(row.run_id)
