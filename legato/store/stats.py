"""Per workflow step duration history: a running mean and the latest samples, which give
progress weights, time-left estimates and p50/p95 baselines."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.estimates import StepHistory
from legato.model.records import RunState
from legato.store.tables import step_stats

__all__ = ["load_histories", "record_durations"]

MAX_SAMPLES = 100


async def record_durations(conn: AsyncConnection, items: list[tuple[RunState, str, float]]) -> None:
    """Fold successful step durations (seconds) into the history rows, one upsert."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    fresh: dict[tuple[int, str, str], list[float]] = {}
    for run, key, seconds in items:
        fresh.setdefault((run.namespace_id, run.workflow_name, key), []).append(round(seconds, 4))
    keys = sorted(fresh)
    current = {
        (r.namespace_id, r.workflow_name, r.step_key): _history(r)
        for r in await conn.execute(
            select(step_stats).where(
                step_stats.c.namespace_id.in_(sorted({k[0] for k in keys})),
                step_stats.c.workflow_name.in_(sorted({k[1] for k in keys})),
                step_stats.c.step_key.in_(sorted({k[2] for k in keys})),
            )
        )
    }
    rows = []
    now = time.time()
    for stat_key in keys:
        new = fresh[stat_key]
        old = current.get(stat_key)
        count = (old.count if old else 0) + len(new)  # (a Row's .count is tuple.count)
        mean = ((old.mean_s * old.count if old else 0.0) + sum(new)) / count
        samples = [*(old.samples if old else []), *new][-MAX_SAMPLES:]
        rows.append(
            {
                "namespace_id": stat_key[0],
                "workflow_name": stat_key[1],
                "step_key": stat_key[2],
                "count": count,
                "mean_s": mean,
                "samples": samples,
                "updated_at": now,
            }
        )
    stmt = upsert(step_stats)
    stmt = stmt.on_conflict_do_update(
        index_elements=["namespace_id", "workflow_name", "step_key"],
        set_={
            "count": stmt.excluded.count,
            "mean_s": stmt.excluded.mean_s,
            "samples": stmt.excluded.samples,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await conn.execute(stmt, rows)


async def load_histories(
    conn: AsyncConnection, namespace_id: int, workflows: Iterable[str]
) -> dict[tuple[str, str], StepHistory]:
    """(workflow, step key) -> history, for the workflows of the runs being shown."""
    names = sorted(set(workflows))
    if not names:
        return {}
    rows = await conn.execute(
        select(step_stats).where(
            step_stats.c.namespace_id == namespace_id, step_stats.c.workflow_name.in_(names)
        )
    )
    return {(r.workflow_name, r.step_key): _history(r) for r in rows}


def _history(row: Any) -> StepHistory:
    m = row._mapping  # not row.count: that is tuple.count
    return StepHistory(count=m["count"], mean_s=m["mean_s"], samples=list(m["samples"] or []))
