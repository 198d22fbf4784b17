"""While the database cannot be reached, every request that needs it answers 503
``database_unavailable`` with ``Retry-After``, never a 500 (PostgreSQL)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from apikit import ADMIN_KEY, assert_problem, bearer

from legato.asgi import create_app
from legato.runtime import Legato
from legato.store.migrate import upgrade

PG_BASE = os.environ.get("LEGATO_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
START = {"workflow": "anything"}


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _client(legato: Legato) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(legato))
    return httpx.AsyncClient(
        transport=transport, base_url="http://legato.test", headers=bearer(ADMIN_KEY)
    )


@pytest.fixture(autouse=True)
def settle() -> None:
    """These tests make their own apps; there are no runs to settle."""


def _assert_unavailable(r: httpx.Response) -> None:
    body = assert_problem(r, 503, "database_unavailable", "Service unavailable")
    assert body["detail"] == "the database cannot be reached right now; try again shortly"
    assert r.headers["retry-after"] == "5", r.headers


async def test_a_database_that_was_never_there_is_503() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    legato = Legato(f"postgresql://postgres@127.0.0.1:{port}/legato")
    try:
        async with _client(legato) as client:
            _assert_unavailable(await client.get("/api/v1/runs"))
            _assert_unavailable(await client.post("/api/v1/runs", json=START))
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await legato.close()


@pytest.fixture
async def doomed() -> AsyncIterator[str]:
    """A database of its own, that the test drops under a running app."""
    name = f"legato_doomed_{uuid.uuid4().hex[:12]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    try:
        yield f"{PG_BASE}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_database_gone_under_a_running_app_is_503(doomed: str) -> None:
    upgrade(doomed)
    legato = Legato(doomed)
    await legato.open()
    await legato.tenancy.bootstrap(ADMIN_KEY)
    try:
        async with _client(legato) as client:
            assert (await client.get("/api/v1/runs")).status_code == 200
            # its backends are terminated and the database is gone
            await _admin(f'DROP DATABASE "{doomed.rsplit("/", 1)[1]}" WITH (FORCE)')
            for _ in range(3):
                _assert_unavailable(await client.get("/api/v1/runs"))
                _assert_unavailable(await client.post("/api/v1/runs", json=START))
    finally:
        await legato.close()
