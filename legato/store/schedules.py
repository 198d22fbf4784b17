"""Schedules and their fires: rows, queries, and the statements a scheduler pass is made of.

Exactly-once lives here: a fire time is recorded with ``INSERT … ON CONFLICT DO NOTHING``
on the unique key (schedule, fire time), and only a row this transaction inserted may start
a run, in the same transaction. Due schedules are taken ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so processes firing at once share the work instead of waiting on each other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.schedules import iso_time
from legato.model.states import RUN_TERMINAL
from legato.store.database import Tx
from legato.store.outbox import enqueue_event
from legato.store.tables import namespaces, runs, schedule_fires, schedules

__all__ = [
    "FireRow",
    "buffered_ready",
    "delete_schedule",
    "due_schedules",
    "find_schedule",
    "held_due",
    "insert_fires",
    "insert_schedule",
    "list_fires",
    "list_schedules",
    "namespace_names",
    "next_wake",
    "open_runs",
    "owned_by",
    "record_events",
    "set_fire_runs",
    "update_schedule",
    "update_schedules",
]


@dataclass(frozen=True)
class FireRow:
    """A fire time about to be recorded, and what came of it."""

    schedule_id: int
    namespace_id: int
    fire_time: float
    outcome: str  # started | buffered | skipped_overlap | missed | paused | failed
    message: str | None = None
    manual: bool = False
    run_id: int | None = None


# -- schedules ----------------------------------------------------------------------------


async def insert_schedule(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return (await conn.execute(insert(schedules).returning(*schedules.c), values)).one()


async def update_schedule(conn: AsyncConnection, schedule_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(values))


_SCHEDULE_AFTER_FIRE = (
    "next_fire_at",
    "due_at",
    "buffered_fire_at",
    "fired_count",
    "skipped_count",
    "missed_count",
    "failed_count",
    "last_fire_at",
    "last_run_id",
    "updated_at",
)
_update_after_fire = (
    update(schedules)
    .where(schedules.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}") for name in _SCHEDULE_AFTER_FIRE})
)


async def update_schedules(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Schedules after a batch of fires, in one statement (``id`` and every column above)."""
    if rows:
        await conn.execute(
            _update_after_fire,
            [{f"b_{k}": r[k] for k in ("id", *_SCHEDULE_AFTER_FIRE)} for r in rows],
        )


async def delete_schedule(conn: AsyncConnection, schedule_id: int) -> None:
    await conn.execute(delete(schedules).where(schedules.c.id == schedule_id))


async def find_schedule(
    conn: AsyncConnection, namespace_id: int, ref: int | str, *, lock: bool = False
) -> Row[Any] | None:
    """A schedule by id or name (locked against a scheduler pass, on PostgreSQL)."""
    if isinstance(ref, int):
        where = schedules.c.id == ref
    else:
        where = schedules.c.name == ref
    query = select(schedules).where(schedules.c.namespace_id == namespace_id, where)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def list_schedules(
    conn: AsyncConnection, namespace_id: int, workflow: str | None = None
) -> list[Row[Any]]:
    query = select(schedules).where(schedules.c.namespace_id == namespace_id)
    if workflow:
        query = query.where(schedules.c.workflow == workflow)
    return list(await conn.execute(query.order_by(schedules.c.name)))


async def owned_by(conn: AsyncConnection, namespace_id: int, workflow: str) -> list[Row[Any]]:
    """The schedules declared in a workflow's definition."""
    query = select(schedules).where(
        schedules.c.namespace_id == namespace_id, schedules.c.owner_workflow == workflow
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return list(await conn.execute(query))


async def due_schedules(tx: Tx, now: float, limit: int) -> list[Row[Any]]:
    """Schedules whose next fire (with its jitter) has come, locked for this pass; on
    PostgreSQL the ones another process is firing are skipped, not waited for."""
    query = (
        select(schedules)
        .where(schedules.c.due_at <= now)
        .order_by(schedules.c.due_at, schedules.c.id)
        .limit(limit)
    )
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(await tx.conn.execute(query))


async def buffered_ready(tx: Tx, limit: int) -> list[Row[Any]]:
    """Schedules holding a buffered fire whose previous run has ended."""
    query = (
        select(schedules)
        .join(runs, runs.c.id == schedules.c.last_run_id, isouter=True)
        .where(
            schedules.c.buffered_fire_at.is_not(None),
            or_(runs.c.id.is_(None), runs.c.status.in_(sorted(RUN_TERMINAL))),
        )
        .order_by(schedules.c.id)
        .limit(limit)
    )
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(of=schedules, skip_locked=True)
    return list(await tx.conn.execute(query))


async def held_due(tx: Tx, now: float, limit: int) -> list[int]:
    """Held runs whose start time has come."""
    query = (
        select(runs.c.id)
        .where(runs.c.held_until <= now)
        .order_by(runs.c.held_until, runs.c.id)
        .limit(limit)
    )
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [r.id for r in await tx.conn.execute(query)]


async def next_wake(conn: AsyncConnection) -> tuple[float | None, bool]:
    """The earliest due time of a schedule or a held run, and whether a buffered fire may
    start already (its previous run has ended): two reads on partial indexes."""
    due = (
        await conn.execute(
            select(func.min(schedules.c.due_at)).where(schedules.c.due_at.is_not(None))
        )
    ).scalar()
    held = (
        await conn.execute(
            select(func.min(runs.c.held_until)).where(runs.c.held_until.is_not(None))
        )
    ).scalar()
    ready = (
        await conn.execute(
            select(schedules.c.id)
            .join(runs, runs.c.id == schedules.c.last_run_id, isouter=True)
            .where(
                schedules.c.buffered_fire_at.is_not(None),
                or_(runs.c.id.is_(None), runs.c.status.in_(sorted(RUN_TERMINAL))),
            )
            .limit(1)
        )
    ).first()
    times = [t for t in (due, held) if t is not None]
    return (min(times) if times else None), ready is not None


async def open_runs(conn: AsyncConnection, schedule_id: int) -> list[int]:
    """The schedule's runs that have not ended (newest first)."""
    rows = await conn.execute(
        select(runs.c.id)
        .where(runs.c.schedule_id == schedule_id, runs.c.finished_at.is_(None))
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
    )
    return [r.id for r in rows]


# -- fires --------------------------------------------------------------------------------


async def insert_fires(tx: Tx, rows: Sequence[FireRow], now: float) -> set[tuple[int, float]]:
    """Record fire times; answers the (schedule, fire time) pairs this call inserted. A pair
    recorded already (by another process, or before a crash) is left as it is."""
    if not rows:
        return set()
    dialect = tx.conn.dialect.name
    table_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        table_insert(schedule_fires)
        .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"])
        .returning(schedule_fires.c.schedule_id, schedule_fires.c.fire_time)
    )
    result = await tx.conn.execute(
        stmt,
        [
            {
                "schedule_id": r.schedule_id,
                "namespace_id": r.namespace_id,
                "fire_time": r.fire_time,
                "outcome": r.outcome,
                "run_id": r.run_id,
                "message": r.message,
                "manual": r.manual,
                "recorded_at": now,
            }
            for r in rows
        ],
    )
    inserted = {(x.schedule_id, x.fire_time) for x in result}
    return inserted


async def set_fire_runs(tx: Tx, started: Sequence[tuple[int, float, int | None, str]]) -> None:
    """Name the run each fire started (and its outcome)."""
    if not started:
        return
    await tx.conn.execute(
        update(schedule_fires)
        .where(
            and_(
                schedule_fires.c.schedule_id == bindparam("b_schedule"),
                schedule_fires.c.fire_time == bindparam("b_time"),
            )
        )
        .values(run_id=bindparam("b_run"), outcome=bindparam("b_outcome")),
        [{"b_schedule": s, "b_time": t, "b_run": r, "b_outcome": o} for s, t, r, o in started],
    )


async def list_fires(
    conn: AsyncConnection, schedule_id: int, limit: int, before: float | None = None
) -> list[Row[Any]]:
    """The latest fires, newest fire time first."""
    query = select(schedule_fires).where(schedule_fires.c.schedule_id == schedule_id)
    if before is not None:
        query = query.where(schedule_fires.c.fire_time < before)
    query = query.order_by(schedule_fires.c.fire_time.desc()).limit(limit)
    return list(await conn.execute(query))


# -- webhooks -----------------------------------------------------------------------------


async def record_events(
    tx: Tx, schedule: Row[Any] | Any, namespace: str | None, fires: Sequence[FireRow]
) -> None:
    """``schedule.fired`` (a run started) and ``schedule.skipped`` (none did, and why) for
    the subscriptions of the schedule's namespace, queued in this transaction."""
    now = time.time()
    for fire in fires:
        if fire.outcome == "buffered":
            continue
        fired = fire.outcome == "started"
        kind = "schedule.fired" if fired else "schedule.skipped"
        message = (
            f"schedule {schedule.name} started run {fire.run_id}"
            if fired
            else f"schedule {schedule.name}: {fire.outcome}"
            + (f" ({fire.message})" if fire.message else "")
        )
        payload = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "time": iso_time(now),
            "run": {"id": fire.run_id, "workflow": schedule.workflow, "namespace": namespace}
            if fired
            else None,
            "step": None,
            "message": message,
            "data": {
                "schedule": {
                    "id": schedule.id,
                    "name": schedule.name,
                    "workflow": schedule.workflow,
                    "namespace": namespace,
                },
                "fire_time": iso_time(fire.fire_time),
                "outcome": fire.outcome,
                "reason": None if fired else fire.outcome,
                "run_id": fire.run_id,
                "manual": fire.manual,
            },
        }
        await enqueue_event(
            tx.conn, schedule.namespace_id, schedule.workflow, kind, payload, fire.run_id
        )


async def namespace_names(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    rows = await conn.execute(
        select(namespaces.c.id, namespaces.c.name).where(namespaces.c.id.in_(wanted))
    )
    return {r.id: r.name for r in rows}
