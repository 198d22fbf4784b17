"""Claiming webhook deliveries from the outbox under a backlog: however the due rows are
ordered by time, the first undelivered row of each run and destination is found, so that
deliveries never stall while some are due."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert, select

from legato.runtime import Legato
from legato.store.database import Tx
from legato.store.outbox import claim_due, record_attempt
from legato.store.tables import outbox

RUNS = 5
EVENTS = 5  # per run


async def _queue(legato: Legato) -> None:
    """Each run's first row became due just now (the row before it was delivered), its later
    rows have been due for a while: they come first in time order."""
    now = time.time()

    def row(run_id: int, seq: int, due: float) -> dict[str, Any]:
        return {
            "namespace_id": 1, "run_id": run_id, "url": "http://127.0.0.1:9/hook",
            "payload": {"type": "run.started", "seq": seq}, "status": "PENDING",
            "next_attempt_at": due, "event_type": "run.started", "secret": "s" * 16,
            "created_at": now - 100,
        }  # fmt: skip

    heads = [row(run, 0, now - 1) for run in range(1, RUNS + 1)]
    later = [row(run, seq, now - 100) for seq in range(1, EVENTS) for run in range(1, RUNS + 1)]

    async def tx_fn(tx: Tx) -> None:
        await tx.conn.execute(insert(outbox), heads)
        await tx.conn.execute(insert(outbox), later)

    await legato.db.write(tx_fn)


async def test_a_backlog_of_waiting_rows_does_not_stall_the_first_ones(legato: Legato) -> None:
    await _queue(legato)
    delivered: list[tuple[int, int]] = []
    for _ in range(RUNS * EVENTS * 2):
        claimed = await claim_due(legato.db, 1, lease_seconds=60)
        for row in claimed:
            delivered.append((row.run_id, row.payload["seq"]))
            await record_attempt(
                legato.db, row, status_code=204, error=None, duration_ms=1,
                outcome="DELIVERED", next_attempt_at=0.0,
            )  # fmt: skip
        if len(delivered) == RUNS * EVENTS:
            break
    assert len(delivered) == RUNS * EVENTS, delivered
    for run in range(1, RUNS + 1):
        assert [seq for r, seq in delivered if r == run] == list(range(EVENTS))
    async with legato.db.read() as conn:
        statuses = set((await conn.execute(select(outbox.c.status))).scalars())
    assert statuses == {"DELIVERED"}
