"""Claiming: which ready steps a worker takes, and what taking them means for their runs.

A claim moves due READY steps to RUNNING under the worker's lease (``store/claims.py``), marks
their QUEUED runs RUNNING, holds namespace limits (``engine/limits.py``) and records the
``run.started`` and ``step.started`` events, all in the caller's transaction.

A worker reporting results takes the steps its transaction released in running runs without a
claim statement (``claim_released``): the transaction holds those runs (locked on PostgreSQL,
the write lock on SQLite) and the steps turned READY in it, so no other worker can see them
READY; they are written RUNNING with the rest of the transaction's step updates.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from legato.engine.limits import enforce_limits
from legato.model.advance import RunGraph
from legato.model.records import ClaimedStep, StepState
from legato.model.states import RunStatus, StepStatus
from legato.store.claims import claim_ready_steps, mark_runs_started
from legato.store.database import Database, Tx
from legato.store.limits import full_namespaces, namespace_limits
from legato.store.run_graphs import insert_events

__all__ = ["claim", "claim_in", "claim_released", "started_events"]


async def claim(
    db: Database, worker: str, limit: int, lease_seconds: float, namespaces: Sequence[str] = ()
) -> list[ClaimedStep]:
    """Claim up to ``limit`` ready steps for ``worker`` (of ``namespaces`` only, if given);
    mark their runs RUNNING."""
    return await db.write(
        lambda tx: claim_in(tx, worker, limit, lease_seconds, namespaces=namespaces)
    )


async def claim_in(
    tx: Tx,
    worker: str,
    limit: int,
    lease_seconds: float,
    *,
    run_ids: Sequence[int] | None = None,
    queued_runs: Collection[int] = (),
    events_into: list[dict[str, Any]] | None = None,
    namespaces: Sequence[str] = (),
    counters_into: dict[int, int | None] | None = None,
) -> list[ClaimedStep]:
    """Claim inside an open transaction.

    ``run_ids`` limits it to those runs, already marked changed in this transaction (a worker
    taking the steps that the transaction released); among them ``queued_runs`` have not
    started yet (new runs), and start as any claimed run does, within their namespace's
    limit. The started events then go to ``events_into`` for the caller's single insert.
    ``namespaces`` (when given) limits it to the runs of those namespaces.
    ``counters_into`` gets the new change counter of each run the claim started or touched
    (None for a run it put back in the queue).
    """
    now = time.time()
    limits = await namespace_limits(tx) if run_ids is None or queued_runs else {}
    claimed = await claim_ready_steps(
        tx,
        worker,
        limit,
        now,
        now + lease_seconds,
        run_ids=run_ids,
        skip_queued_of=await full_namespaces(tx, limits),
        namespaces=namespaces,
    )
    if not claimed:
        return []
    touched = sorted({c.run_id for c in claimed})
    to_start = touched if run_ids is None else [r for r in touched if r in queued_runs]
    started: list[int] = []
    if to_start:
        marked = await mark_runs_started(tx, to_start, now)
        began = {r.id: r.namespace_id for r in marked if r.started_at == now}
        # a sub-workflow's steps show in its parent run's counts
        touched.extend(r.parent_run_id for r in marked if r.parent_run_id is not None)
        back = await enforce_limits(tx, began, limits) if limits else set()
        if back:
            claimed = [c for c in claimed if c.run_id not in back]
        if counters_into is not None:
            counters_into.update({r.id: None if r.id in back else r.change_seq for r in marked})
        started = [r for r in began if r not in back]
    rows = started_events(started, claimed, worker, now)
    if events_into is not None:
        events_into.extend(rows)
    elif rows:
        await insert_events(tx, rows)
    for rid in touched:
        tx.wake(f"run:{rid}")
    return claimed


def claim_released(
    graphs: Mapping[int, RunGraph],
    released: Sequence[StepState],
    worker: str,
    slots: int,
    lease_seconds: float,
    now: float,
) -> tuple[list[ClaimedStep], list[StepState]]:
    """Of the due steps a transaction released (highest priority first, up to ``slots``),
    take for ``worker`` in their graphs those of runs already RUNNING that are in the store
    already; answers them and the rest, for the claim statement (steps of runs that start
    now, which count against namespace limits, and steps the transaction inserts)."""
    chosen = sorted(released, key=lambda s: (-s.priority, s.id))[: max(0, slots)]
    taken: list[ClaimedStep] = []
    rest: list[StepState] = []
    expires = now + lease_seconds
    for step in chosen:
        run = graphs[step.run_id].run
        if step.is_new or run.status != RunStatus.RUNNING:
            rest.append(step)
            continue
        step.attempt += 1
        step.lease_owner, step.lease_expires_at = worker, expires
        step.started_at, step.progress = now, None
        step.move(StepStatus.RUNNING, "Running")
        taken.append(
            ClaimedStep(
                step.id,
                step.run_id,
                step.key,
                step.name,
                step.kind,
                step.attempt,
                step.max_attempts,
                step.args or {},
                step.timeout_s,
                step.item,
                expires,
                run.namespace_id,
                now,
            )
        )
    return taken, rest


def started_events(
    runs: list[int], steps: list[ClaimedStep], worker: str, now: float
) -> list[dict[str, Any]]:
    return [
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
            for rid in runs
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
            for c in steps
        ),
    ]
