"""The worker hot path: claim ready steps, renew leases, find expired ones.

Each is one statement (plus the batched bookkeeping that rides along in the same
transaction). The two databases differ only in how the claim locks: PostgreSQL skips rows
another worker is claiming (``FOR UPDATE SKIP LOCKED``); SQLite holds the single write lock
(``BEGIN IMMEDIATE``) for the few microseconds the statement takes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, text, update

from legato.model.states import RunStatus, StepStatus
from legato.store.database import Database, Tx
from legato.store.tables import events, runs, steps

__all__ = ["ClaimedStep", "claim", "expired_steps", "heartbeat", "overdue_runs"]


@dataclass(frozen=True)
class ClaimedStep:
    id: int
    run_id: int
    key: str
    name: str
    kind: str
    attempt: int
    max_attempts: int
    args: dict[str, Any]
    timeout_s: float | None
    item: Any
    lease_expires_at: float


# PostgreSQL skips rows another worker is claiming; SQLite already holds the write lock.
_CLAIM_SQL = """
    UPDATE steps SET status = 'RUNNING', attempt = attempt + 1, lease_owner = :worker,
           lease_expires_at = :expires, started_at = :now, status_message = 'Running',
           progress = NULL
     WHERE id IN (SELECT id FROM steps
                   WHERE status = 'READY' AND not_before <= :now
                   ORDER BY priority DESC, id LIMIT :limit {lock})
 RETURNING id, run_id, key, name, kind, attempt, max_attempts, args, timeout_s, item"""
_LOCK = {"sqlite": "", "postgresql": "FOR UPDATE SKIP LOCKED"}


async def claim(db: Database, worker: str, limit: int, lease_seconds: float) -> list[ClaimedStep]:
    """Claim up to ``limit`` ready steps for ``worker``; mark their runs RUNNING."""

    async def tx_claim(tx: Tx) -> list[ClaimedStep]:
        now = time.time()
        expires = now + lease_seconds
        stmt = text(_CLAIM_SQL.format(lock=_LOCK[db.dialect])).columns(
            args=steps.c.args.type, item=steps.c.item.type
        )
        rows = (
            await tx.conn.execute(
                stmt, {"worker": worker, "expires": expires, "now": now, "limit": limit}
            )
        ).all()
        if not rows:
            return []
        claimed = [
            ClaimedStep(
                r.id,
                r.run_id,
                r.key,
                r.name,
                r.kind,
                r.attempt,
                r.max_attempts,
                r.args or {},
                r.timeout_s,
                r.item,
                expires,
            )
            for r in rows
        ]
        run_ids = sorted({c.run_id for c in claimed})
        started = (
            (
                await tx.conn.execute(
                    update(runs)
                    .where(runs.c.id.in_(run_ids), runs.c.status == RunStatus.QUEUED)
                    .values(
                        status=RunStatus.RUNNING,
                        started_at=now,
                        updated_at=now,
                        status_message="Running",
                        change_seq=runs.c.change_seq + 1,
                    )
                    .returning(runs.c.id)
                )
            )
            .scalars()
            .all()
        )
        if len(started) < len(run_ids):
            await tx.conn.execute(
                update(runs)
                .where(runs.c.id.in_(sorted(set(run_ids) - set(started))))
                .values(updated_at=now, change_seq=runs.c.change_seq + 1)
            )
        await tx.conn.execute(
            insert(events),
            [
                *(
                    {
                        "run_id": rid,
                        "step_id": None,
                        "step_key": None,
                        "type": "run.started",
                        "status": RunStatus.RUNNING,
                        "message": "Run started",
                        "time": now,
                        "data": None,
                    }
                    for rid in started
                ),
                *(
                    {
                        "run_id": c.run_id,
                        "step_id": c.id,
                        "step_key": c.key,
                        "type": "step.started",
                        "status": StepStatus.RUNNING,
                        "message": f"{c.name} started (attempt {c.attempt})",
                        "time": now,
                        "data": {"attempt": c.attempt, "worker": worker},
                    }
                    for c in claimed
                ),
            ],
        )
        for rid in run_ids:
            tx.wake(f"run:{rid}")
        return claimed

    return await db.write(tx_claim)


async def heartbeat(db: Database, worker: str, lease_seconds: float) -> set[int]:
    """Renew every lease ``worker`` holds; answer the ids of steps asked to cancel."""

    async def tx_beat(tx: Tx) -> set[int]:
        rows = await tx.conn.execute(
            update(steps)
            .where(steps.c.lease_owner == worker, steps.c.status == StepStatus.RUNNING)
            .values(lease_expires_at=time.time() + lease_seconds)
            .returning(steps.c.id, steps.c.cancel_requested)
        )
        return {r.id for r in rows if r.cancel_requested}

    return await db.write(tx_beat)


async def expired_steps(db: Database, grace: float, limit: int = 200) -> list[Any]:
    """Running steps whose lease lapsed, or that outlived their timeout by ``grace``."""
    now = time.time()
    async with db.read() as conn:
        return list(
            await conn.execute(
                select(
                    steps.c.id,
                    steps.c.run_id,
                    steps.c.attempt,
                    steps.c.lease_owner,
                    (steps.c.lease_expires_at < now).label("lapsed"),
                )
                .where(steps.c.status == StepStatus.RUNNING, steps.c.lease_owner.is_not(None))
                .where(
                    (steps.c.lease_expires_at < now)
                    | and_(
                        steps.c.timeout_s.is_not(None),
                        steps.c.started_at + steps.c.timeout_s + grace < now,
                    )
                )
                .limit(limit)
            )
        )


async def overdue_runs(db: Database, limit: int = 100) -> list[int]:
    now = time.time()
    async with db.read() as conn:
        return list(
            (
                await conn.execute(
                    select(runs.c.id)
                    .where(
                        runs.c.deadline_at < now,
                        runs.c.finished_at.is_(None),
                        runs.c.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]),
                    )
                    .limit(limit)
                )
            ).scalars()
        )
