"""The worker hot path: claim ready steps, renew leases, find expired ones.

Each is one statement (plus the batched bookkeeping that rides along in the same
transaction). The two databases differ only in how the claim locks: PostgreSQL skips rows
another worker is claiming (``FOR UPDATE SKIP LOCKED``); SQLite holds the single write lock
(``BEGIN IMMEDIATE``) for the few microseconds the statement takes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, select, text, update

from legato.model.states import RunStatus, StepStatus
from legato.store.database import Database, Tx
from legato.store.limits import enforce_limits, full_namespaces, namespace_limits
from legato.store.outbox import enqueue as enqueue_webhooks
from legato.store.tables import events, runs, steps

__all__ = ["ClaimedStep", "claim", "claim_in", "expired_steps", "heartbeat", "overdue_runs"]


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
    namespace_id: int


# PostgreSQL skips rows another worker is claiming; SQLite already holds the write lock.
_CLAIM_SQL = """
    UPDATE steps SET status = 'RUNNING', attempt = attempt + 1, lease_owner = :worker,
           lease_expires_at = :expires, started_at = :now, status_message = 'Running',
           progress = NULL
     WHERE id IN (SELECT id FROM steps
                   WHERE status = 'READY' AND not_before <= :now {only} {full} {bound}
                   ORDER BY priority DESC, id LIMIT :limit {lock})
 RETURNING id, run_id, key, name, kind, attempt, max_attempts, args, timeout_s, item,
           (SELECT namespace_id FROM runs WHERE runs.id = steps.run_id) AS namespace_id"""
# PostgreSQL skips rows another worker is claiming; SQLite already holds the write lock.
_LOCK = {"sqlite": "", "postgresql": "FOR UPDATE SKIP LOCKED"}
_ONLY_RUNS = "AND run_id IN ({ids})"
# A worker bound to namespaces takes only their steps (runs found by ix_runs_ns_status_created).
_BOUND = (
    "AND run_id IN (SELECT runs.id FROM runs JOIN namespaces ON namespaces.id = runs.namespace_id"
    " WHERE namespaces.name IN :namespaces AND runs.status IN ('QUEUED', 'RUNNING', 'CANCELING'))"
)
_NOT_FULL = (
    "AND run_id NOT IN (SELECT id FROM runs WHERE status = 'QUEUED' AND namespace_id IN ({ids}))"
)

# One statement moves queued runs to RUNNING and bumps every touched run's change counter.
_touch_runs = (
    update(runs)
    .where(runs.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=case((runs.c.status == RunStatus.QUEUED, RunStatus.RUNNING), else_=runs.c.status),
        started_at=func.coalesce(runs.c.started_at, bindparam("now")),
        status_message=case(
            (runs.c.status == RunStatus.QUEUED, "Running"), else_=runs.c.status_message
        ),
        updated_at=bindparam("now"),
        change_seq=runs.c.change_seq + 1,
    )
    .returning(runs.c.id, runs.c.started_at, runs.c.namespace_id, runs.c.parent_run_id)
)


async def claim_in(
    tx: Tx,
    worker: str,
    limit: int,
    lease_seconds: float,
    *,
    run_ids: Sequence[int] | None = None,
    events_into: list[dict[str, Any]] | None = None,
    namespaces: Sequence[str] = (),
) -> list[ClaimedStep]:
    """Claim inside an open transaction.

    ``run_ids`` limits it to those runs, already RUNNING and already marked changed in this
    transaction (the worker taking the next steps of runs it just advanced); the started
    events then go to ``events_into`` for the caller's single insert. ``namespaces`` (when
    given) limits it to the runs of those namespaces.
    """
    now = time.time()
    expires = now + lease_seconds
    only = _ONLY_RUNS.format(ids=", ".join(str(int(r)) for r in run_ids)) if run_ids else ""
    limits = await namespace_limits(tx) if run_ids is None else {}
    full = await full_namespaces(tx, limits)
    skip_full = _NOT_FULL.format(ids=", ".join(str(int(n)) for n in full)) if full else ""
    bound = _BOUND if namespaces else ""
    sql = _CLAIM_SQL.format(
        lock=_LOCK[tx.conn.dialect.name], only=only, full=skip_full, bound=bound
    )
    stmt = text(sql).columns(args=steps.c.args.type, item=steps.c.item.type)
    params: dict[str, Any] = {"worker": worker, "expires": expires, "now": now, "limit": limit}
    if namespaces:
        stmt = stmt.bindparams(bindparam("namespaces", expanding=True))
        params["namespaces"] = list(namespaces)
    rows = (await tx.conn.execute(stmt, params)).all()
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
            r.namespace_id,
        )
        for r in rows
    ]
    touched = sorted({c.run_id for c in claimed})
    started: list[int] = []
    if run_ids is None:
        touched_rows = list(await tx.conn.execute(_touch_runs, {"ids": touched, "now": now}))
        began = {r.id: r.namespace_id for r in touched_rows if r.started_at == now}
        # a sub-workflow's steps show in its parent run's counts
        touched.extend(r.parent_run_id for r in touched_rows if r.parent_run_id is not None)
        back = await enforce_limits(tx, began, limits) if limits else set()
        if back:
            claimed = [c for c in claimed if c.run_id not in back]
        started = [r for r in began if r not in back]
    rows_out: list[dict[str, Any]] = [
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
    ]
    if events_into is not None:
        events_into.extend(rows_out)
    elif rows_out:  # (events_into: the caller's write_effects queues their webhooks)
        await enqueue_webhooks(tx.conn, rows_out)
        await tx.conn.execute(insert(events), rows_out)
    for rid in touched:
        tx.wake(f"run:{rid}")
    return claimed


async def claim(
    db: Database, worker: str, limit: int, lease_seconds: float, namespaces: Sequence[str] = ()
) -> list[ClaimedStep]:
    """Claim up to ``limit`` ready steps for ``worker`` (of ``namespaces`` only, if given);
    mark their runs RUNNING."""
    return await db.write(
        lambda tx: claim_in(tx, worker, limit, lease_seconds, namespaces=namespaces)
    )


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
