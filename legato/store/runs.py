"""Reading runs and their parts; the few writes that are not state transitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from legato.model.filters import RunFilter
from legato.model.reads import RunSummary
from legato.store.tables import run_labels, runs, steps

__all__ = [
    "RunFilter",
    "count_queued",
    "delete_run",
    "find_run",
    "find_run_by_key",
    "run_steps",
]

LIST_COLUMNS = [runs.c[name] for name in RunSummary.__dataclass_fields__]


async def find_run(conn: AsyncConnection, namespace_id: int, ref: int | str) -> Row[Any] | None:
    """A run of the namespace by integer id or UUID; None for another tenant's run."""
    cond = runs.c.id == ref if isinstance(ref, int) else runs.c.uuid == ref
    return (
        await conn.execute(select(runs).where(cond, runs.c.namespace_id == namespace_id))
    ).first()


async def find_run_by_key(
    conn: AsyncConnection, namespace_id: int, idempotency_key: str
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(runs).where(
                runs.c.namespace_id == namespace_id, runs.c.idempotency_key == idempotency_key
            )
        )
    ).first()


async def find_run_by_external_id(
    conn: AsyncConnection, namespace_id: int, external_id: str
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(runs).where(
                runs.c.namespace_id == namespace_id, runs.c.external_id == external_id
            )
        )
    ).first()


async def run_steps(
    conn: AsyncConnection, run_id: int, *, parent: int | None = None, all_levels: bool = False
) -> list[Row[Any]]:
    query = select(steps).where(steps.c.run_id == run_id)
    if not all_levels:
        query = query.where(
            steps.c.parent_step_id.is_(None) if parent is None else steps.c.parent_step_id == parent
        )
    return list(await conn.execute(query.order_by(steps.c.rank, steps.c.id)))


def filtered(query: Select[Any], flt: RunFilter, *, labels: bool = True) -> Select[Any]:
    """``query`` narrowed to the runs ``flt`` selects (labels as EXISTS checks if asked)."""
    query = query.where(runs.c.namespace_id == flt.namespace_id)
    if flt.statuses:
        query = query.where(runs.c.status.in_(list(flt.statuses)))
    if flt.workflow:
        query = query.where(runs.c.workflow_name == flt.workflow)
    if flt.requestor:
        query = query.where(runs.c.requestor == flt.requestor)
    if flt.created_after is not None:
        query = query.where(runs.c.created_at >= flt.created_after)
    if flt.created_before is not None:
        query = query.where(runs.c.created_at < flt.created_before)
    if flt.parent_run_id is not None:
        query = query.where(runs.c.parent_run_id == flt.parent_run_id)
    elif flt.top_level_only:
        query = query.where(runs.c.parent_run_id.is_(None))
    if flt.schedule_id is not None:
        query = query.where(runs.c.schedule_id == flt.schedule_id)
        if flt.fire_time is not None:  # as shown: to the millisecond
            query = query.where(
                runs.c.fire_time >= flt.fire_time, runs.c.fire_time < flt.fire_time + 0.001
            )
    for key, value in sorted((flt.labels or {}).items()) if labels else ():
        query = query.where(_has_label(key, value))
    return query


def _has_label(key: str, value: str) -> Any:
    return (
        select(run_labels.c.run_id)
        .where(
            run_labels.c.run_id == runs.c.id, run_labels.c.key == key, run_labels.c.value == value
        )
        .exists()
    )


async def count_queued(conn: AsyncConnection, namespace_id: int) -> int:
    return int(
        (
            await conn.execute(
                select(func.count())
                .select_from(runs)
                .where(runs.c.namespace_id == namespace_id, runs.c.status == "QUEUED")
            )
        ).scalar_one()
    )


async def delete_run(conn: AsyncConnection, run_id: int) -> None:
    """Remove a finished run and everything that hangs off it (child runs cascade)."""
    children = (
        (await conn.execute(select(runs.c.id).where(runs.c.parent_run_id == run_id)))
        .scalars()
        .all()
    )
    for child in children:
        await delete_run(conn, child)
    await conn.execute(delete(runs).where(runs.c.id == run_id))


async def subtree_counts(
    conn: AsyncConnection, run_id: int, child_runs: dict[int, int]
) -> dict[int, dict[str, int]]:
    """Counts by status under every step that has children, keyed by step id, from two
    aggregates (no listing of children): foreach items, and the top-level steps of the child
    run of each sub-workflow step (``child_runs``: child run id -> step id)."""
    out: dict[int, dict[str, int]] = {}
    rows = await conn.execute(
        select(steps.c.parent_step_id, steps.c.status, func.count())
        .where(steps.c.run_id == run_id, steps.c.parent_step_id.is_not(None))
        .group_by(steps.c.parent_step_id, steps.c.status)
    )
    for parent, status, n in rows:
        out.setdefault(parent, {})[status] = n
    if child_runs:
        rows = await conn.execute(
            select(steps.c.run_id, steps.c.status, func.count())
            .where(steps.c.run_id.in_(list(child_runs)), steps.c.parent_step_id.is_(None))
            .group_by(steps.c.run_id, steps.c.status)
        )
        for child, status, n in rows:
            out.setdefault(child_runs[child], {})[status] = n
    return out
