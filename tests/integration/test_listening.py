"""A process hears other processes' commits on PostgreSQL through one listening connection;
when that connection is lost it is opened again, and every subscriber looks again (what was
committed meanwhile woke no one)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from legato.runtime import Legato
from legato.store.database import CHANNEL


async def test_a_lost_listening_connection_is_opened_again(legato: Legato) -> None:
    db = legato.db
    if db.is_sqlite:
        pytest.skip("SQLite processes of one file look by polling, not NOTIFY")
    await db.start_listening()
    woken = db.subscribe("run:4242")
    dsn = db.url.replace("postgresql+asyncpg", "postgresql")
    admin = await asyncpg.connect(dsn)
    try:
        first = db._pg_listener
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first.get_server_pid())
        # listening again wakes every subscriber, for one more look
        await asyncio.wait_for(woken.wait(), 10)
        assert db._pg_listener is not None and db._pg_listener is not first
        woken.clear()
        # and another process's NOTIFY reaches it again
        await admin.execute("SELECT pg_notify($1, $2)", CHANNEL, "run:4242")
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await admin.close()
        db.unsubscribe("run:4242", woken)
