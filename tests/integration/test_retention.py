"""Namespace limits and retention: the queue limit through the API, and the purge of finished
runs older than the namespace keeps them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from helpers import ADMIN_KEY, admin, apply, start, wait_for
from sqlalchemy import func, select, update

from legato.asgi import create_app
from legato.engine.reaper import Reaper
from legato.engine.retention import purge_expired_runs
from legato.runtime import Legato
from legato.store.tables import events, logs, runs, steps

HELLO = """\
name: hello
steps:
  - id: greet
    uses: python
    with: {function: "demo_steps:echo", who: world}
"""
DAY = 86400.0


@asynccontextmanager
async def _no_lifespan(_app: object) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def client(legato: Legato) -> AsyncIterator[httpx.AsyncClient]:
    """The API without any worker: started runs stay QUEUED."""
    app = create_app(legato)
    app.router.lifespan_context = _no_lifespan
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://legato.test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as http:
        yield http


async def test_the_queue_limit_refuses_the_next_start_with_429(
    legato: Legato, client: httpx.AsyncClient
) -> None:
    r = await client.post("/api/v1/namespaces", json={"name": "small", "max_queued_runs": 2})
    assert r.status_code == 201, r.text
    key = (await client.post("/api/v1/keys", json={"name": "k", "namespace": "small"})).json()
    small = {"Authorization": f"Bearer {key['key']}"}
    r = await client.put(
        "/api/v1/workflows/hello",
        content=HELLO,
        headers={**small, "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    for _ in range(2):
        r = await client.post("/api/v1/runs", json={"workflow": "hello"}, headers=small)
        assert r.status_code == 201 and r.json()["status"] == "QUEUED", r.text
    r = await client.post("/api/v1/runs", json={"workflow": "hello"}, headers=small)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "https://legato.dev/problems/queue_limit",
        "title": "Queue limit reached",
        "status": 429,
        "detail": "namespace 'small' already has 2 queued runs (limit 2)",
        "code": "queue_limit",
    }
    # other namespaces are not held back
    await apply(legato, HELLO)
    assert (await client.post("/api/v1/runs", json={"workflow": "hello"})).status_code == 201
    # lifting the limit lets starts through again
    r = await client.patch("/api/v1/namespaces/small", json={"max_queued_runs": 3})
    assert r.json()["max_queued_runs"] == 3
    r = await client.post("/api/v1/runs", json={"workflow": "hello"}, headers=small)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/runs", json={"workflow": "hello"}, headers=small)
    assert r.status_code == 429, r.text
    r = await client.patch("/api/v1/namespaces/small", json={"max_queued_runs": None})
    r = await client.post("/api/v1/runs", json={"workflow": "hello"}, headers=small)
    assert r.status_code == 201, r.text
    listed = await client.get("/api/v1/runs", headers=small, params={"status": "QUEUED"})
    assert len(listed.json()["runs"]) == 4


async def _age(legato: Legato, run_id: int, days: float) -> None:
    async def tx_fn(tx: object) -> None:
        when = time.time() - days * DAY
        await tx.conn.execute(  # type: ignore[attr-defined]
            update(runs)
            .where(runs.c.id == run_id)
            .values(created_at=when - 1, started_at=when - 1, finished_at=when)
        )

    await legato.db.write(tx_fn)


async def _rows(legato: Legato, table: object, run_ids: list[int]) -> int:
    async with legato.db.read() as conn:
        query = select(func.count()).select_from(table).where(table.c.run_id.in_(run_ids))  # type: ignore[attr-defined]
        return int((await conn.execute(query)).scalar_one())


async def test_retention_purges_old_finished_runs_only(engine: Legato) -> None:
    legato = engine
    await apply(legato, HELLO)
    done = [await wait_for(legato, (await start(legato, "hello"))["id"]) for _ in range(5)]
    old, recent = [r["id"] for r in done[:4]], done[4]["id"]
    for run_id in old:
        await _age(legato, run_id, 10)
    await _age(legato, recent, 2)
    p = await admin(legato)

    # no retention set: nothing goes, however old
    assert await purge_expired_runs(legato.db) == 0

    await legato.tenancy.update_namespace(p, "default", {"retention_days": 7})

    # a run not finished is kept even when it started long ago
    async def unfinished(tx: object) -> None:
        await tx.conn.execute(  # type: ignore[attr-defined]
            update(runs).where(runs.c.id == old[0]).values(status="RUNNING", finished_at=None)
        )

    await legato.db.write(unfinished)
    assert await _rows(legato, steps, old) == 4
    assert await _rows(legato, events, old) > 0 and await _rows(legato, logs, old) > 0

    assert await purge_expired_runs(legato.db, batch=2) == 3  # two batches: 2 + 1
    async with legato.db.read() as conn:
        left = (await conn.execute(select(runs.c.id).order_by(runs.c.id))).scalars().all()
    assert list(left) == [old[0], recent]
    assert await _rows(legato, steps, old[1:]) == 0
    assert await _rows(legato, events, old[1:]) == 0
    assert await _rows(legato, logs, old[1:]) == 0
    assert (await legato.runs.get(p, recent))["status"] == "SUCCEEDED"
    assert await purge_expired_runs(legato.db) == 0

    # the reaper runs the purge (once a minute; at once here)
    await _age(legato, recent, 8)
    reaper = Reaper(legato.db, legato.transitions, retention_interval=60.0)
    await reaper.sweep()
    async with legato.db.read() as conn:
        left = (await conn.execute(select(runs.c.id).order_by(runs.c.id))).scalars().all()
    assert list(left) == [old[0]]


async def test_retention_is_per_namespace(engine: Legato) -> None:
    legato = engine
    await apply(legato, HELLO)
    p = await admin(legato)
    kept = await wait_for(legato, (await start(legato, "hello"))["id"])
    await _age(legato, kept["id"], 400)
    other = await legato.tenancy.create_namespace(p, "short", {"retention_days": 1})
    assert other == {"name": "short", "max_queued_runs": None, "max_concurrent_runs": None,
                     "retention_days": 1, "step_modules": []}  # fmt: skip
    assert await purge_expired_runs(legato.db) == 0
    assert (await legato.runs.get(p, kept["id"]))["status"] == "SUCCEEDED"


PARENT = """\
name: parent
steps:
  - id: call
    uses: workflow
    with: {workflow: hello}
"""


async def test_a_purged_run_takes_its_sub_workflow_runs(engine: Legato) -> None:
    legato = engine
    await apply(legato, HELLO)
    await apply(legato, PARENT)
    p = await admin(legato)
    parent = await wait_for(legato, (await start(legato, "parent"))["id"])
    child_id = parent["steps"][0]["child_run_id"]
    assert (await legato.runs.get(p, child_id))["status"] == "SUCCEEDED"
    await _age(legato, parent["id"], 3)
    await _age(legato, child_id, 3)
    await legato.tenancy.update_namespace(p, "default", {"retention_days": 1})
    assert await purge_expired_runs(legato.db) == 2
    async with legato.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(runs))).scalar_one() == 0
    assert await _rows(legato, steps, [parent["id"], child_id]) == 0
