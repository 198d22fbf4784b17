"""Namespace limits: queued runs at start, concurrent runs on the claim path.

A namespace with ``max_queued_runs`` refuses a start (429) once that many of its runs wait.

A namespace with ``max_concurrent_runs`` starts a queued run only while fewer of its runs are
active (RUNNING or CANCELING). The claim skips queued runs of full namespaces, and afterwards
puts back in the queue any run a batch started beyond the limit (the state table's RUNNING →
QUEUED), so the limit holds exactly even when one claim takes several queued runs; on
PostgreSQL, claimers of one limited namespace take turns on an advisory lock.
"""

from __future__ import annotations

from typing import Literal

from legato.model.errors import QueueLimit
from legato.model.states import RunStatus, check_run_transition
from legato.store.database import Tx
from legato.store.limits import active_runs, lock_namespaces, requeue_runs
from legato.store.runs import count_queued
from legato.store.tenancy import queue_limit

__all__ = ["enforce_limits", "runs_beyond_limits", "take_queue_room"]


def runs_beyond_limits(
    started: dict[int, int], active: dict[int, int], limits: dict[int, int]
) -> set[int]:
    """``started``: run id → namespace id of runs just moved to RUNNING; ``active``: the
    namespaces' active runs counting those. The newest started runs beyond each limit."""
    back: set[int] = set()
    for ns, limit in limits.items():
        excess = active.get(ns, 0) - limit
        if excess > 0:
            mine = sorted((r for r, n in started.items() if n == ns), reverse=True)
            back.update(mine[:excess])
    return back


async def enforce_limits(tx: Tx, started: dict[int, int], limits: dict[int, int]) -> set[int]:
    """Put back the runs this claim started beyond their namespace's limit; answer their ids."""
    limited = sorted({ns for ns in started.values() if ns in limits})
    if not limited:
        return set()
    await lock_namespaces(tx, limited)
    active = await active_runs(tx, limited)
    back = runs_beyond_limits(started, active, {ns: limits[ns] for ns in limited})
    if back:
        check_run_transition(RunStatus.RUNNING, RunStatus.QUEUED)
        await requeue_runs(tx, sorted(back))
    return back


async def take_queue_room(
    tx: Tx,
    namespace_id: int,
    namespace: str,
    queues: dict[int, list[int] | None],
    limit: int | Literal["ask"] | None = "ask",
) -> None:
    """Take a place in the namespace's queue (``max_queued_runs``) or refuse the start.
    ``queues``: per namespace, [limit, runs queued] counted once per transaction, with the
    runs this transaction added (None: no limit). ``limit``: the namespace's, when the
    caller read it in this transaction already."""
    if namespace_id not in queues:
        if limit == "ask":
            limit = await queue_limit(tx.conn, namespace_id)
        queues[namespace_id] = (
            None if limit is None else [limit, await count_queued(tx.conn, namespace_id)]
        )
    queue = queues[namespace_id]
    if queue is None:
        return
    limit, queued = queue
    if queued >= limit:
        raise QueueLimit(
            f"namespace '{namespace}' already has {queued} queued runs (limit {limit})"
        )
    queue[1] += 1
