"""The registry of live workers (for ``no_worker`` waiting reasons and the dashboard)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update

from legato.store.database import Database, Tx
from legato.store.tables import workers

__all__ = ["live_workers", "register_worker", "unregister_worker"]


async def register_worker(
    db: Database, name: str, concurrency: int, namespaces: Sequence[str] = ()
) -> None:
    async def tx_fn(tx: Tx) -> None:
        now = time.time()
        await tx.conn.execute(delete(workers).where(workers.c.id == name))
        await tx.conn.execute(
            insert(workers),
            {
                "id": name,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "concurrency": concurrency,
                "started_at": now,
                "heartbeat_at": now,
                "namespaces": list(namespaces),
            },
        )

    await db.write(tx_fn)


async def unregister_worker(db: Database, name: str) -> None:
    async def tx_fn(tx: Tx) -> None:
        await tx.conn.execute(delete(workers).where(workers.c.id == name))

    await db.write(tx_fn)


async def live_workers(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(workers).order_by(workers.c.started_at))
        return [dict(r._mapping) for r in rows]


async def beat(db: Database, name: str) -> None:
    async def tx_fn(tx: Tx) -> None:
        await tx.conn.execute(
            update(workers).where(workers.c.id == name).values(heartbeat_at=time.time())
        )

    await db.write(tx_fn)
