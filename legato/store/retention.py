"""What the retention job reads and deletes: finished runs older than their namespace keeps."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.states import RUN_TERMINAL
from legato.store.tables import namespaces, runs

__all__ = ["delete_runs", "expired_runs", "retention_policies"]


async def retention_policies(conn: AsyncConnection) -> list[tuple[int, int]]:
    """(namespace id, retention days) of every namespace that has a retention."""
    rows = await conn.execute(
        select(namespaces.c.id, namespaces.c.retention_days).where(
            namespaces.c.retention_days.is_not(None)
        )
    )
    return [(int(r.id), int(r.retention_days)) for r in rows]


async def expired_runs(
    conn: AsyncConnection, namespace_id: int, finished_before: float, limit: int
) -> list[int]:
    """Top-level finished runs of the namespace that ended before the cutoff (their
    sub-workflow runs go with them). A run ends after it is created, so the created_at bound
    keeps each lookup a range scan of ``ix_runs_ns_status_created``."""
    found: list[int] = []
    for status in sorted(str(s) for s in RUN_TERMINAL):
        if len(found) >= limit:
            break
        rows = await conn.execute(
            select(runs.c.id)
            .where(
                runs.c.namespace_id == namespace_id,
                runs.c.status == status,
                runs.c.created_at < finished_before,
                runs.c.finished_at < finished_before,
                runs.c.parent_run_id.is_(None),
            )
            .order_by(runs.c.created_at, runs.c.id)
            .limit(limit - len(found))
        )
        found += [int(r.id) for r in rows]
    return found


async def delete_runs(conn: AsyncConnection, run_ids: list[int]) -> int:
    """Deletes the runs and their sub-workflow runs; steps, logs, events and values cascade.
    Answers how many runs went."""
    levels: list[list[int]] = []
    level = list(run_ids)
    while level:
        levels.append(level)
        level = list(
            (await conn.execute(select(runs.c.id).where(runs.c.parent_run_id.in_(level))))
            .scalars()
            .all()
        )
    deleted = 0
    for ids in reversed(levels):  # the deepest sub-workflow runs first
        result = await conn.execute(delete(runs).where(runs.c.id.in_(ids)))
        deleted += int(result.rowcount or 0)
    return deleted
