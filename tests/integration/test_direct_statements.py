"""Statements sent through the driver inside a write transaction (``store/direct.py``): the
same values as SQLAlchemy writes and reads, the same errors, the same transaction, and heard
by statement listeners, on both stores."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from statements import counting

from legato.model.errors import Unavailable
from legato.runtime import Legato
from legato.store import tables
from legato.store.database import Tx
from legato.store.direct import DirectStatement, fetch, ids_in, run, run_many
from legato.store.errors import DuplicateKey

_KEYS = ("name", "created_at", "settings", "step_modules")
_INSERT = DirectStatement(
    insert(tables.namespaces)
    .values({k: bindparam(k) for k in _KEYS})
    .returning(tables.namespaces.c.id)
)
_INSERT_MANY = DirectStatement(
    insert(tables.namespaces).values({k: bindparam(k) for k in _KEYS}), many=True
)
_BY_IDS = DirectStatement(
    lambda dialect: (
        select(tables.namespaces.c.id, tables.namespaces.c.name, tables.namespaces.c.settings)
        .where(ids_in(tables.namespaces.c.id, "ids", dialect))
        .order_by(tables.namespaces.c.id)
    )
)


def _row(name: str, settings: Any) -> dict[str, Any]:
    return {"name": name, "created_at": 1.5, "settings": settings, "step_modules": []}


async def test_what_a_direct_statement_writes_reads_back_the_same_both_ways(
    legato: Legato,
) -> None:
    settings = {"nested": {"list": [1, 2.5, "three", None, True]}, "unicode": "é✓"}

    async def write(tx: Tx) -> int:
        [(first,)] = await fetch(tx.conn, _INSERT, _row("direct-a", settings))
        await run_many(
            tx.conn, _INSERT_MANY, [_row("direct-b", {"n": 1}), _row("direct-c", {"n": 2})]
        )
        return int(first)

    first = await legato.db.write(write)
    async with legato.db.read() as conn:  # SQLAlchemy reads what the driver wrote
        rows = (
            await conn.execute(
                select(tables.namespaces.c.name, tables.namespaces.c.settings)
                .where(tables.namespaces.c.id >= first)
                .order_by(tables.namespaces.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("direct-a", settings),
        ("direct-b", {"n": 1}),
        ("direct-c", {"n": 2}),
    ]

    async def read(tx: Tx) -> dict[str, list[tuple[Any, ...]]]:
        return {
            n: await fetch(tx.conn, _BY_IDS, {"ids": ids})
            for n, ids in (("none", []), ("one", [first]), ("many", [first + 2, first]))
        }

    found = await legato.db.write(read)
    assert found["none"] == []
    assert found["one"] == [(first, "direct-a", settings)]  # JSON decoded, as SQLAlchemy does
    assert [r[1] for r in found["many"]] == ["direct-a", "direct-c"]


async def test_a_refused_row_raises_as_sqlalchemy_would_and_rolls_back_the_transaction(
    legato: Legato,
) -> None:
    async def twice(tx: Tx) -> None:
        await run(tx.conn, _INSERT_MANY, _row("direct-twice", {}))
        await run(tx.conn, _INSERT_MANY, _row("direct-twice", {}))

    with pytest.raises(DuplicateKey):  # Database.write maps the unique violation as before
        await legato.db.write(twice)

    async def raw_twice(tx: Tx) -> None:
        await run(tx.conn, _INSERT_MANY, _row("direct-raw", {}))
        try:
            await run(tx.conn, _INSERT_MANY, _row("direct-raw", {}))
        except IntegrityError as exc:
            assert exc.orig is not None  # the driver's error, as SQLAlchemy wraps it
            raise

    with pytest.raises(DuplicateKey):
        await legato.db.write(raw_twice)
    async with legato.db.read() as conn:
        names = (
            await conn.scalars(
                select(tables.namespaces.c.name).where(
                    tables.namespaces.c.name.in_(["direct-twice", "direct-raw"])
                )
            )
        ).all()
    assert names == []  # the first insert of each went with its transaction


async def test_direct_and_sqlalchemy_statements_share_one_transaction(legato: Legato) -> None:
    async def mixed(tx: Tx) -> tuple[int, int]:
        # the direct statement first: on PostgreSQL it opens the transaction itself
        [(direct_id,)] = await fetch(tx.conn, _INSERT, _row("direct-first", {}))
        seen = (
            await tx.conn.execute(
                select(tables.namespaces.c.id).where(tables.namespaces.c.name == "direct-first")
            )
        ).scalar_one()
        return int(direct_id), int(seen)

    direct_id, seen = await legato.db.write(mixed)
    assert direct_id == seen

    class Boom(Exception):
        pass

    async def then_fail(tx: Tx) -> None:
        await fetch(tx.conn, _INSERT, _row("direct-undone", {}))
        raise Boom

    with pytest.raises(Boom):
        await legato.db.write(then_fail)
    async with legato.db.read() as conn:
        undone = (
            await conn.execute(
                select(tables.namespaces.c.id).where(tables.namespaces.c.name == "direct-undone")
            )
        ).first()
    assert undone is None


async def test_statement_listeners_hear_direct_statements(legato: Legato) -> None:
    async def write(tx: Tx) -> None:
        await fetch(tx.conn, _INSERT, _row("direct-heard", {}))
        await run_many(tx.conn, _INSERT_MANY, [_row("direct-h1", {}), _row("direct-h2", {})])

    with counting(legato.db) as seen:
        await legato.db.write(write)
    assert len(seen.sql) == 2, seen
    assert all(sql.startswith("INSERT INTO namespaces") for sql in seen.sql)


async def test_a_connection_lost_under_a_direct_statement_is_unavailable_then_replaced(
    legato: Legato,
) -> None:
    if legato.db.is_sqlite:
        pytest.skip("a SQLite file has no connection to lose")

    async def backend(tx: Tx) -> int:
        return int((await tx.conn.execute(select(func.pg_backend_pid()))).scalar_one())

    pid = await legato.db.write(backend)
    admin = await asyncpg.connect(legato.db.url.replace("postgresql+asyncpg", "postgresql"))
    try:  # a connection of its own ends the writer's
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()

    async def first_direct(tx: Tx) -> None:
        # the direct statement is the transaction's first: it meets the lost connection
        await fetch(tx.conn, _BY_IDS, {"ids": [1]})

    for _ in range(10):  # the pool hands out its connections in turn: reach the lost one
        try:
            await legato.db.write(first_direct)
        except Unavailable:
            break
    else:
        pytest.fail("no write met the lost connection")
    await legato.db.write(first_direct)  # the pool replaced it: the next write goes through
