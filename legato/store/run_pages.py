"""Runs listed by page number (offset) with their total, for faces whose clients page that
way; the same filters as the keyset list of ``legato.store.runs``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import desc, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from legato.model.filters import RunFilter
from legato.store.runs import LIST_COLUMNS, filtered
from legato.store.tables import runs, steps, workflows

__all__ = [
    "count_runs",
    "find_run_with_workflow",
    "find_workflow_by_uuid",
    "page_runs",
    "top_steps",
]


async def count_runs(conn: AsyncConnection, flt: RunFilter) -> int:
    """How many runs the filter matches."""
    query = filtered(select(func.count()).select_from(runs), flt)
    return int((await conn.execute(query)).scalar_one())


async def page_runs(
    conn: AsyncConnection, flt: RunFilter, *, limit: int, offset: int
) -> list[Row[Any]]:
    """Newest first; each row also holds its workflow's ``workflow_uuid`` and
    ``workflow_description``."""
    query: Select[Any] = select(
        *LIST_COLUMNS,
        workflows.c.uuid.label("workflow_uuid"),
        workflows.c.description.label("workflow_description"),
    ).join(workflows, workflows.c.id == runs.c.workflow_id)
    query = filtered(query, flt)
    query = query.order_by(desc(runs.c.created_at), desc(runs.c.id)).limit(limit).offset(offset)
    return list(await conn.execute(query))


async def find_run_with_workflow(
    conn: AsyncConnection, namespace_id: int, ref: int | str
) -> Row[Any] | None:
    """One run of the namespace (by id or UUID) with its workflow's UUID and description."""
    cond = runs.c.id == ref if isinstance(ref, int) else runs.c.uuid == ref
    query: Select[Any] = (
        select(
            *LIST_COLUMNS,
            runs.c.inputs,
            runs.c.outputs,
            workflows.c.uuid.label("workflow_uuid"),
            workflows.c.description.label("workflow_description"),
        )
        .join(workflows, workflows.c.id == runs.c.workflow_id)
        .where(cond, runs.c.namespace_id == namespace_id)
    )
    row: Row[Any] | None = (await conn.execute(query)).first()
    return row


async def top_steps(conn: AsyncConnection, run_ids: list[int]) -> list[Row[Any]]:
    """The top-level steps of several runs, in order."""
    if not run_ids:
        return []
    query = (
        select(steps)
        .where(steps.c.run_id.in_(run_ids), steps.c.parent_step_id.is_(None))
        .order_by(steps.c.run_id, steps.c.rank, steps.c.id)
    )
    return list(await conn.execute(query))


async def find_workflow_by_uuid(
    conn: AsyncConnection, namespace_id: int, workflow_uuid: str
) -> Row[Any] | None:
    query: Select[Any] = select(workflows.c.name, workflows.c.version).where(
        workflows.c.namespace_id == namespace_id, workflows.c.uuid == workflow_uuid
    )
    row: Row[Any] | None = (await conn.execute(query)).first()
    return row
