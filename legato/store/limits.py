"""Namespace concurrency limits: the queries the engine's limit rule needs (``engine/limits.py``).

Namespaces without a limit cost nothing: limits are cached per database for a few seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select, update

from legato.model.states import RunStatus, StepStatus
from legato.store.database import Tx
from legato.store.tables import namespaces, runs, steps

__all__ = [
    "active_runs",
    "any_limits",
    "forget_limits",
    "full_namespaces",
    "lock_namespaces",
    "namespace_limits",
    "requeue_runs",
]

CACHE_SECONDS = 3.0
ACTIVE = (RunStatus.RUNNING, RunStatus.CANCELING)


async def namespace_limits(tx: Tx) -> dict[int, int]:
    cached = tx.shared.get("namespace_limits")
    if cached is not None and cached[0] > time.monotonic():
        return dict(cached[1])
    rows = await tx.conn.execute(
        select(namespaces.c.id, namespaces.c.max_concurrent_runs).where(
            namespaces.c.max_concurrent_runs.is_not(None)
        )
    )
    limits = {r.id: r.max_concurrent_runs for r in rows}
    tx.shared["namespace_limits"] = (time.monotonic() + CACHE_SECONDS, limits)
    return limits


def any_limits(shared: dict[str, Any]) -> bool:
    cached = shared.get("namespace_limits")
    return bool(cached and cached[1])


def forget_limits(shared: dict[str, Any]) -> None:
    """After a change of limits in this process."""
    shared.pop("namespace_limits", None)


async def active_runs(tx: Tx, namespace_ids: Sequence[int]) -> dict[int, int]:
    rows = await tx.conn.execute(
        select(runs.c.namespace_id, func.count())
        .where(runs.c.namespace_id.in_(list(namespace_ids)), runs.c.status.in_(ACTIVE))
        .group_by(runs.c.namespace_id)
    )
    return {ns: n for ns, n in rows}


async def full_namespaces(tx: Tx, limits: dict[int, int]) -> list[int]:
    if not limits:
        return []
    active = await active_runs(tx, sorted(limits))
    return sorted(ns for ns, limit in limits.items() if active.get(ns, 0) >= limit)


def _lock_key(namespace_id: int) -> int:
    digest = hashlib.blake2b(f"ns-limit/{namespace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_namespaces(tx: Tx, namespace_ids: Sequence[int]) -> None:
    """On PostgreSQL, claimers of one limited namespace take turns (until commit)."""
    if tx.conn.dialect.name == "postgresql":
        for ns in sorted(namespace_ids):
            await tx.conn.execute(select(func.pg_advisory_xact_lock(_lock_key(ns))))


async def requeue_runs(tx: Tx, run_ids: Sequence[int]) -> None:
    """Put runs a claim just started back in the queue, their claimed steps back to READY."""
    ids = sorted(run_ids)
    await tx.conn.execute(
        update(steps)
        .where(
            and_(
                steps.c.run_id.in_(ids),
                steps.c.status == StepStatus.RUNNING,
                steps.c.lease_owner.is_not(None),
            )
        )
        .values(
            status=StepStatus.READY,
            attempt=steps.c.attempt - 1,
            lease_owner=None,
            lease_expires_at=None,
            started_at=None,
            status_message="Waiting for a free run slot in the namespace",
        )
    )
    await tx.conn.execute(
        update(runs)
        .where(runs.c.id.in_(ids))
        .values(
            status=RunStatus.QUEUED,
            started_at=None,
            status_message="Queued",
            change_seq=runs.c.change_seq + 1,
        )
    )
