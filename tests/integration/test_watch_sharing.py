"""Many watchers of one run, on both stores: the commit that wakes them costs one read of the
run's head and one render of its new version, whatever their number."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from helpers import admin, apply, sleep_until, start
from statements import HEAD_READS, counting

from legato.runtime import Legato
from legato.service.status import Snapshot

GATE = """
name: gate
steps:
  - id: gate
    uses: approval
"""
WATCHERS = 200


async def _waiting(legato: Legato) -> dict[str, Any]:
    p = await admin(legato)
    await apply(legato, GATE)
    run = await start(legato, "gate")

    async def waits() -> bool:
        snap = await legato.status.snapshot(p, run["id"], legato.status.step(p, "gate"))
        return bool((await snap.body())["waiting_reason"] == {"reason": "approval"})

    await sleep_until(waits)
    return run


async def test_woken_watchers_share_one_head_read_and_one_render(engine: Legato) -> None:
    legato = engine
    run = await _waiting(legato)
    p = await admin(legato)
    status = legato.status
    resource = status.run(p)
    first = await status.snapshot(p, run["id"], resource)
    renders: list[int] = []

    def encode(body: Any) -> bytes:
        renders.append(1)
        return orjson.dumps(body)

    async def load(since: float | None) -> Snapshot:
        return await status.snapshot(p, run["id"], resource, since=since)

    async def watch() -> bytes:
        snap = await status.poll(load, lambda s: s.change_seq == first.change_seq, 20.0)
        return await status.rendered(snap, "test", encode)

    watchers = [asyncio.create_task(watch()) for _ in range(WATCHERS)]
    await asyncio.sleep(0.3)  # every watcher waits
    with counting(legato.db) as seen:
        await legato.runs.signal(p, run["id"], "gate", {"ok": True})
        bodies = await asyncio.wait_for(asyncio.gather(*watchers), 20)
    heads = [sql for sql in seen.sql if sql.startswith(HEAD_READS) and "c.parent_run_id" in sql]
    assert len(heads) <= 3, seen  # the signal's own, and one for the watchers (or two)
    assert len(set(bodies)) <= 2 and len(renders) == len(set(bodies)), renders
    assert orjson.loads(bodies[0])["id"] == run["id"]
