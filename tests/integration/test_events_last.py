"""Events are written as they were given, on both stores; on PostgreSQL they go last, in one
statement with the transaction's NOTIFY, which other processes hear at commit and never
when it rolls back."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from helpers import admin, apply, start
from sqlalchemy import select
from statements import counting

from legato.runtime import Legato
from legato.store import tables
from legato.store.database import CHANNEL, Tx
from legato.store.run_graphs import insert_events

ONE = """
name: one
steps:
  - {id: nap, uses: sleep, with: {duration: 1h}}
"""


def _event(run_id: int, n: int, data: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "step_id": None if n % 2 else n,
        "step_key": None if n % 2 else f"k{n}",
        "type": "test.event",
        "status": "RUNNING" if n % 3 else None,
        "message": f"event {n} ünïcode 'quoted'",
        "time": 1000.5 + n,
        "data": data,
    }


async def _events_of(legato: Legato, run_id: int) -> list[dict[str, Any]]:
    async with legato.db.read() as conn:
        query = (
            select(tables.events)
            .where(tables.events.c.run_id == run_id, tables.events.c.type == "test.event")
            .order_by(tables.events.c.id)
        )
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_events_are_written_in_order_as_given(legato: Legato) -> None:
    await admin(legato)
    await apply(legato, ONE)
    run = await start(legato, "one")
    datas: list[Any] = [None, {"a": [1, 2]}, {}, {"s": "x'y"}, None, [1], "text", 3]
    given = [_event(run["id"], n, d) for n, d in enumerate(datas)]

    async def write(tx: Tx) -> None:
        await insert_events(tx, given[:3])
        await insert_events(tx, given[3:])  # a second call in the same transaction
        tx.wake(f"run:{run['id']}")

    with counting(legato.db) as seen:
        await legato.db.write(write)
    written = await _events_of(legato, run["id"])
    assert [{k: e[k] for k in given[0]} for e in written] == given
    if not legato.db.is_sqlite:  # one statement: both calls' events and the NOTIFY
        assert len(seen.sql) == 1 and "pg_notify" in seen.sql[0], seen
        async with legato.db.read() as conn:
            nulls = await conn.exec_driver_sql(
                "SELECT count(*) FROM events WHERE type = 'test.event' AND data = 'null'::jsonb"
            )
            assert nulls.scalar_one() == 2  # None is stored as JSON null, as before


async def test_another_process_hears_the_notify_at_commit_only(legato: Legato) -> None:
    if legato.db.is_sqlite:
        pytest.skip("SQLite wakes the processes of one file by polling, not NOTIFY")
    await admin(legato)
    await apply(legato, ONE)
    run = await start(legato, "one")
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(legato.db.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await listener.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[-1]))
        long_topics = {f"run:{10_000_000 + i}" for i in range(1200)}  # past one payload

        async def write(tx: Tx) -> None:
            await insert_events(tx, [_event(run["id"], 1, None)])
            tx.wakeups.update(long_topics)

        await legato.db.write(write)
        payloads = [await asyncio.wait_for(heard.get(), 5)]
        while not heard.empty() or len(",".join(payloads).split(",")) < len(long_topics):
            payloads.append(await asyncio.wait_for(heard.get(), 5))
        assert len(payloads) > 1  # the first went with the events, the rest on their own
        assert set(",".join(payloads).split(",")) == long_topics

        class Refused(Exception):
            pass

        async def refused(tx: Tx) -> None:
            await insert_events(tx, [_event(run["id"], 2, None)])
            tx.wake("run:424242")
            raise Refused

        with pytest.raises(Refused):
            await legato.db.write(refused)
        await asyncio.sleep(0.3)
        assert heard.empty()  # a rolled-back transaction notifies no one
        assert len(await _events_of(legato, run["id"])) == 1
    finally:
        await listener.close()
