"""What running steps report besides their result: log lines, progress, carried values and
affected resources. Written in batches by the worker, in one transaction per batch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.records import value_type
from legato.store.database import Tx
from legato.store.tables import logs, progress_points, resources, run_values, runs, steps

__all__ = ["StepReports", "last_progress_message", "read_progress", "write_step_reports"]


@dataclass
class StepReports:
    logs: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[int, tuple[int, float, str | None]] = field(default_factory=dict)
    vars: list[tuple[int, int, str, Any]] = field(default_factory=list)  # run, step, name, value
    resources: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)  # every progress report, kept

    def __bool__(self) -> bool:
        return bool(self.logs or self.progress or self.vars or self.resources)

    def take(self) -> StepReports:
        taken = StepReports(self.logs, self.progress, self.vars, self.resources, self.points)
        self.logs, self.progress, self.vars, self.resources, self.points = [], {}, [], [], []
        return taken


_set_progress = (
    update(steps)
    .where(steps.c.id == bindparam("b_id"), steps.c.status == "RUNNING")
    .values(progress=bindparam("b_progress"), status_message=bindparam("b_message"))
)


async def write_step_reports(tx: Tx, act: StepReports) -> None:
    conn = tx.conn
    now = time.time()
    touched: set[int] = set()
    if act.logs:
        await conn.execute(insert(logs), act.logs)
        touched.update(line["run_id"] for line in act.logs)
    if act.progress:
        await conn.execute(
            _set_progress,
            [
                {"b_id": step_id, "b_progress": fraction, "b_message": message or "Running"}
                for step_id, (_run, fraction, message) in act.progress.items()
            ],
        )
        touched.update(run_id for run_id, _f, _m in act.progress.values())
    if act.points:
        await conn.execute(insert(progress_points), act.points)
    if act.vars:
        await _merge_vars(conn, act.vars, now)
        touched.update(run_id for run_id, *_ in act.vars)
    if act.resources:
        await conn.execute(insert(resources), [{**r, "time": now} for r in act.resources])
        touched.update(r["run_id"] for r in act.resources)
    if touched:
        await conn.execute(
            update(runs)
            .where(runs.c.id.in_(sorted(touched)))
            .values(updated_at=now, change_seq=runs.c.change_seq + 1)
        )
        for run_id in touched:
            tx.wake(f"run:{run_id}")


async def _merge_vars(
    conn: AsyncConnection, items: list[tuple[int, int, str, Any]], now: float
) -> None:
    run_ids = sorted({run_id for run_id, *_ in items})
    current = {
        r.id: dict(r.vars or {})
        for r in await conn.execute(select(runs.c.id, runs.c.vars).where(runs.c.id.in_(run_ids)))
    }
    for run_id, _step, name, value in items:
        current.setdefault(run_id, {})[name] = value
    await conn.execute(
        update(runs).where(runs.c.id == bindparam("b_id")).values(vars=bindparam("b_vars")),
        [{"b_id": rid, "b_vars": v} for rid, v in current.items()],
    )
    await conn.execute(
        insert(run_values),
        [
            {
                "run_id": run_id,
                "step_id": step_id,
                "scope": "var",
                "name": name,
                "type": value_type(value),
                "value": value,
                "created_at": now,
            }
            for run_id, step_id, name, value in items
        ],
    )


async def read_progress(conn: AsyncConnection, step_id: int) -> list[Row[Any]]:
    return list(
        await conn.execute(
            select(progress_points)
            .where(progress_points.c.step_id == step_id)
            .order_by(progress_points.c.id)
        )
    )


_LAST_SAID = (
    select(progress_points.c.message)
    .where(
        progress_points.c.step_id == bindparam("step_id"),
        progress_points.c.message.is_not(None),
        progress_points.c.message != "",
    )
    .order_by(progress_points.c.id.desc())
    .limit(1)
)


async def last_progress_message(conn: AsyncConnection, step_id: int) -> str | None:
    """The latest message a step reported with its progress (None if it said none)."""
    row = (await conn.execute(_LAST_SAID, {"step_id": step_id})).first()
    return None if row is None else str(row[0])
