"""The claim statements: take ready steps under a lease, mark their runs started.

Each is one statement. The two databases differ only in how the claim locks: PostgreSQL skips
rows another worker is claiming (``FOR UPDATE SKIP LOCKED``); SQLite holds the single write
lock (``BEGIN IMMEDIATE``) for the few microseconds the statement takes. Which steps a worker
may take, and what a claim means for its runs, is the engine's (``engine/claims.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, bindparam, case, func, text, update
from sqlalchemy.sql import Update

from legato.model.records import ClaimedStep, RunState, StepState
from legato.model.states import RunStatus, StepStatus
from legato.store.database import Tx
from legato.store.direct import DirectStatement, fetch, ids_in, in_list_sql, list_type
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
_ONLY_RUNS = {"": "", "one": "AND run_id = :run_id", "many": "AND run_id {in_runs}"}
# A worker bound to namespaces takes only their steps (runs found by ix_runs_ns_status_created).
_BOUND = (
    "AND run_id IN (SELECT runs.id FROM runs JOIN namespaces ON namespaces.id = runs.namespace_id"
    " WHERE namespaces.name {in_names} AND runs.status IN ('QUEUED', 'RUNNING', 'CANCELING'))"
)
_NOT_FULL = (
    "AND run_id NOT IN (SELECT id FROM runs WHERE status = 'QUEUED' AND namespace_id IN ({ids}))"
)


@functools.cache
def _claim_statement(only: str, skip_queued_of: tuple[int, ...], bound: bool) -> DirectStatement:
    """The claim for these options, built once: the few kinds a process sends are compiled
    once per dialect and kept (``only``: "", "one" or "many" runs)."""
    full = _NOT_FULL.format(ids=", ".join(map(str, skip_queued_of))) if skip_queued_of else ""

    def build(dialect: str) -> Any:
        sql = _CLAIM_SQL.format(
            lock=_LOCK[dialect],
            only=_ONLY_RUNS[only].format(in_runs=in_list_sql("run_ids", dialect)),
            full=full,
            bound=_BOUND.format(in_names=in_list_sql("namespaces", dialect)) if bound else "",
        )
        stmt = text(sql)
        if only == "many":
            stmt = stmt.bindparams(bindparam("run_ids", type_=list_type(dialect)))
        if bound:
            stmt = stmt.bindparams(bindparam("namespaces", type_=list_type(dialect, String())))
        return stmt

    return DirectStatement(build, result_types=_CLAIMED_TYPES)


#: the claim's columns, by position: args and item are JSON
_CLAIMED_TYPES = (None,) * 7 + (steps.c.args.type, None, steps.c.item.type, None)


def _touch_runs(dialect: str) -> Update:
    """One statement moves queued runs to RUNNING and bumps every touched run's change
    counter."""
    return (
        update(runs)
        .where(ids_in(runs.c.id, "ids", dialect))
        .values(
            status=case(
                (runs.c.status == RunStatus.QUEUED, RunStatus.RUNNING), else_=runs.c.status
            ),
            started_at=func.coalesce(runs.c.started_at, bindparam("now")),
            status_message=case(
                (runs.c.status == RunStatus.QUEUED, "Running"), else_=runs.c.status_message
            ),
            updated_at=bindparam("now"),
            change_seq=runs.c.change_seq + 1,
        )
        .returning(
            runs.c.id,
            runs.c.started_at,
            runs.c.namespace_id,
            runs.c.parent_run_id,
            runs.c.change_seq,
        )
    )


_TOUCH_RUNS = DirectStatement(_touch_runs)


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
    stmt = _claim_statement(only, tuple(int(n) for n in skip_queued_of), bool(namespaces))
    # the columns of _CLAIM_SQL's RETURNING, then what the claim wrote
    return [
        ClaimedStep(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or {}, r[8], r[9], expires, r[10], now
        )
        for r in await fetch(tx.conn, stmt, params)
    ]


@dataclass(frozen=True)
class StartedRun:
    """What the claim's update of a run answers."""

    id: int
    started_at: float
    namespace_id: int
    parent_run_id: int | None
    change_seq: int


async def mark_runs_started(tx: Tx, run_ids: Sequence[int], now: float) -> list[StartedRun]:
    """QUEUED runs among ``run_ids`` become RUNNING; every one's change counter moves."""
    rows = await fetch(tx.conn, _TOUCH_RUNS, {"ids": list(run_ids), "now": now})
    return [StartedRun(*row) for row in rows]


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
