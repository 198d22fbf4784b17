"""Reads behind the status resources: a run's change counter, its values, errors and
affected resources with the key of the step each belongs to, one value by id, and many runs by
reference. Every read is scoped to a namespace: another tenant's rows are simply not found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import resources, run_values, runs, steps

__all__ = [
    "find_output",
    "find_run_head",
    "find_run_ids",
    "find_value",
    "list_resources",
    "list_values",
]

_HEAD = (runs.c.id, runs.c.change_seq, runs.c.status)
_VALUE = (*run_values.c, steps.c.key.label("step_key"))


async def find_run_head(conn: AsyncConnection, namespace_id: int, ref: int | str) -> Any:
    """``id``, ``change_seq`` and ``status`` of a run of the namespace (integer id or UUID)."""
    cond = runs.c.id == ref if isinstance(ref, int) else runs.c.uuid == ref
    return (
        await conn.execute(select(*_HEAD).where(cond, runs.c.namespace_id == namespace_id))
    ).first()


async def find_run_ids(
    conn: AsyncConnection, namespace_id: int, ids: Sequence[int], uuids: Sequence[str]
) -> list[Row[Any]]:
    """``id`` and ``uuid`` of the namespace's runs among the given ids and UUIDs."""
    conds = []
    if ids:
        conds.append(runs.c.id.in_(list(ids)))
    if uuids:
        conds.append(runs.c.uuid.in_(list(uuids)))
    if not conds:
        return []
    query = select(runs.c.id, runs.c.uuid).where(runs.c.namespace_id == namespace_id, or_(*conds))
    return list(await conn.execute(query))


def _values_query() -> Any:
    return select(*_VALUE).select_from(
        run_values.outerjoin(steps, steps.c.id == run_values.c.step_id)
    )


async def list_values(conn: AsyncConnection, run_id: int) -> list[Row[Any]]:
    """Inputs, carried values, step outputs and run outputs, in the order they were written."""
    query = _values_query().where(run_values.c.run_id == run_id).order_by(run_values.c.id)
    return list(await conn.execute(query))


async def find_value(
    conn: AsyncConnection, namespace_id: int, value_id: int
) -> tuple[Row[Any], Row[Any]] | None:
    """A value of the namespace and the head of its run."""
    value = (
        await conn.execute(
            _values_query()
            .join(runs, runs.c.id == run_values.c.run_id)
            .where(run_values.c.id == value_id, runs.c.namespace_id == namespace_id)
        )
    ).first()
    if value is None:
        return None
    head = await find_run_head(conn, namespace_id, value.run_id)
    return None if head is None else (value, head)


async def find_output(
    conn: AsyncConnection, run_id: int, step_id: int, name: str
) -> Row[Any] | None:
    """The latest output ``name`` of a step."""
    query = (
        _values_query()
        .where(
            run_values.c.run_id == run_id,
            run_values.c.step_id == step_id,
            run_values.c.scope == "output",
            run_values.c.name == name,
        )
        .order_by(run_values.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def find_step_id(conn: AsyncConnection, run_id: int, step_ref: str) -> int | None:
    """A step of the run by key (any level) or by id."""
    cond = steps.c.key == step_ref
    if step_ref.isdigit() and int(step_ref) < 2**63:
        cond = or_(cond, steps.c.id == int(step_ref))
    row = (
        await conn.execute(
            select(steps.c.id).where(steps.c.run_id == run_id, cond).order_by(steps.c.id).limit(1)
        )
    ).first()
    return None if row is None else int(row.id)


async def list_resources(conn: AsyncConnection, run_id: int) -> list[Row[Any]]:
    query = (
        select(*resources.c, steps.c.key.label("step_key"))
        .select_from(resources.outerjoin(steps, steps.c.id == resources.c.step_id))
        .where(resources.c.run_id == run_id)
        .order_by(resources.c.id)
    )
    return list(await conn.execute(query))
