"""Retention: finished runs older than their namespace's ``retention_days`` are purged.

Any node may run it (the reaper does, once a minute); each batch is its own short
transaction, so a large backlog never holds a long lock.
"""

from __future__ import annotations

import logging
import time

from legato.store.database import Database, Tx
from legato.store.retention import delete_runs, expired_runs, retention_policies

__all__ = ["BATCH", "purge_expired_runs"]

log = logging.getLogger("legato.retention")
BATCH = 500
DAY = 86400.0


async def purge_expired_runs(
    db: Database, *, now: float | None = None, batch: int = BATCH, max_batches: int = 100
) -> int:
    """Purges what retention allows; answers how many runs (children included) went."""
    batch = max(1, min(batch, BATCH))
    now = time.time() if now is None else now
    async with db.read() as conn:
        policies = await retention_policies(conn)
    purged = 0
    for namespace_id, days in policies:
        cutoff = now - days * DAY
        for _ in range(max_batches):

            async def tx_fn(
                tx: Tx, namespace_id: int = namespace_id, cutoff: float = cutoff
            ) -> tuple[int, int]:
                ids = await expired_runs(tx.conn, namespace_id, cutoff, batch)
                for run_id in ids:
                    tx.wake(f"run:{run_id}")
                return len(ids), await delete_runs(tx.conn, ids)

            found, deleted = await db.write(tx_fn)
            purged += deleted
            if found < batch:
                break
    if purged:
        log.info("retention purged %d finished runs", purged)
    return purged
