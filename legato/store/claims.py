"""The claim statements: take ready steps under a lease, mark their runs started.

Each is one statement. The two databases differ only in how the claim locks: PostgreSQL skips
rows another worker is claiming (``FOR UPDATE SKIP LOCKED``); SQLite holds the single write
lock (``BEGIN IMMEDIATE``) for the few microseconds the statement takes. Which steps a worker
may take, and what a claim means for its runs, is the engine's (``engine/claims.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, text, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.selectable import TextualSelect

from legato.model.records import ClaimedStep, RunState, StepState
from legato.model.states import RunStatus, StepStatus
from legato.store.database import Tx
from legato.store.tables import runs, steps

__all__ = ["claim_ready_steps", "mark_runs_started", "mirror_claim", "mirror_run_start"]


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
_ONLY_RUNS = {"": "", "one": "AND run_id = :run_id", "many": "AND run_id IN :run_ids"}
# A worker bound to namespaces takes only their steps (runs found by ix_runs_ns_status_created).
_BOUND = (
    "AND run_id IN (SELECT runs.id FROM runs JOIN namespaces ON namespaces.id = runs.namespace_id"
    " WHERE namespaces.name IN :namespaces AND runs.status IN ('QUEUED', 'RUNNING', 'CANCELING'))"
)
_NOT_FULL = (
    "AND run_id NOT IN (SELECT id FROM runs WHERE status = 'QUEUED' AND namespace_id IN ({ids}))"
)


@functools.cache
def _claim_statement(
    dialect: str, only: str, skip_queued_of: tuple[int, ...], bound: bool
) -> TextualSelect:
    """The claim for these options, built once: the few kinds a process sends are compiled
    once and kept (``only``: "", "one" or "many" runs)."""
    full = _NOT_FULL.format(ids=", ".join(map(str, skip_queued_of))) if skip_queued_of else ""
    sql = _CLAIM_SQL.format(
        lock=_LOCK[dialect], only=_ONLY_RUNS[only], full=full, bound=_BOUND if bound else ""
    )
    stmt = text(sql).columns(args=steps.c.args.type, item=steps.c.item.type)
    if only == "many":
        stmt = stmt.bindparams(bindparam("run_ids", expanding=True))
    if bound:
        stmt = stmt.bindparams(bindparam("namespaces", expanding=True))
    return stmt


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
    .returning(
        runs.c.id, runs.c.started_at, runs.c.namespace_id, runs.c.parent_run_id, runs.c.change_seq
    )
)


async def claim_ready_steps(
    tx: Tx,
    worker: str,
    limit: int,
    now: float,
    expires: float,
    *,
    run_ids: Sequence[int] | None = None,
    skip_queued_of: Sequence[int] = (),
    namespaces: Sequence[str] = (),
) -> list[ClaimedStep]:
    """Up to ``limit`` READY steps that are due, highest priority first, moved to RUNNING
    under ``worker``'s lease: of ``run_ids`` only (when given), of ``namespaces`` only (when
    given), never of a QUEUED run of a namespace in ``skip_queued_of``."""
    params: dict[str, Any] = {"worker": worker, "expires": expires, "now": now, "limit": limit}
    only = ""
    if run_ids and len(run_ids) == 1:
        only, params["run_id"] = "one", int(run_ids[0])
    elif run_ids:
        only, params["run_ids"] = "many", [int(r) for r in run_ids]
    if namespaces:
        params["namespaces"] = list(namespaces)
    stmt = _claim_statement(
        tx.conn.dialect.name, only, tuple(int(n) for n in skip_queued_of), bool(namespaces)
    )
    rows = (await tx.conn.execute(stmt, params)).all()
    return [
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
            now,
        )
        for r in rows
    ]


async def mark_runs_started(tx: Tx, run_ids: Sequence[int], now: float) -> list[Row[Any]]:
    """QUEUED runs among ``run_ids`` become RUNNING; every one's change counter moves.
    Answers (id, started_at, namespace_id, parent_run_id, change_seq) of each."""
    return list(await tx.conn.execute(_touch_runs, {"ids": list(run_ids), "now": now}))


def mirror_claim(step: StepState, claimed: ClaimedStep, worker: str) -> None:
    """What the claim statement wrote to ``step``, in its in-memory record."""
    step.status, step.attempt, step.lease_owner = StepStatus.RUNNING, claimed.attempt, worker
    step.lease_expires_at, step.started_at = claimed.lease_expires_at, claimed.started_at
    step.status_message, step.progress = "Running", None


def mirror_run_start(run: RunState, now: float, change_seq: int) -> None:
    """What ``mark_runs_started`` wrote to ``run``, in its in-memory record."""
    if run.status == RunStatus.QUEUED:
        run.status, run.status_message = RunStatus.RUNNING, "Running"
    if run.started_at is None:
        run.started_at = now
    run.updated_at, run.change_seq = now, change_seq
