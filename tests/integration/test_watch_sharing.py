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


async def test_watchers_in_a_room_hear_of_a_change_together_with_its_answer_ready(
    engine: Legato,
) -> None:
    """Long-polls and event streams of one run wait in its room: after the commit, one head
    read and one render (made before any of them hears of it), and every one has the news."""
    legato = engine
    run = await _waiting(legato)
    p = await admin(legato)
    status = legato.status
    resource = status.run(p)
    first = resource(await status.head(p, run["id"]))
    renders: list[int] = []

    def encode(body: Any) -> bytes:
        renders.append(1)
        return orjson.dumps(body)

    async def prepare(head: Any) -> bytes:
        return await status.rendered(resource(head), "test", encode)

    async def long_poll() -> bytes:
        snap = await status.poll_run(
            p,
            run["id"],
            resource,
            lambda s: s.change_seq == first.change_seq,
            20.0,
            prepare=(("run", "test"), prepare),
        )
        return await status.rendered(snap, "test", encode)

    async def stream() -> list[int]:
        seen = []
        async for snap in status.watch(
            p, run["id"], resource, after_seq=first.change_seq, prepare=(("run", "test"), prepare)
        ):
            seen.append(snap.change_seq)
        return seen

    polls = [asyncio.create_task(long_poll()) for _ in range(WATCHERS)]
    streams = [asyncio.create_task(stream()) for _ in range(WATCHERS)]
    await asyncio.sleep(0.3)  # every watcher waits
    assert not any(t.done() for t in polls + streams)
    with counting(legato.db) as seen:
        await legato.runs.signal(p, run["id"], "gate", {"ok": True})
        bodies = await asyncio.wait_for(asyncio.gather(*polls), 20)
        versions = await asyncio.wait_for(asyncio.gather(*streams), 20)
    heads = [sql for sql in seen.sql if sql.startswith(HEAD_READS) and "c.parent_run_id" in sql]
    # the signal's own, then the room's: one per wake-up of the run (each commit that changed
    # it; on PostgreSQL also its NOTIFY coming back), however many watch: 400 here
    assert len(heads) <= 8, seen
    final = orjson.loads(bodies[0])
    assert final["status"] == "SUCCEEDED" and len(set(bodies)) == 1
    # made by the room before anyone heard of the change: one per version it read, at most
    assert 1 <= len(renders) <= len(heads), renders
    last = (await status.head(p, run["id"])).version
    assert len({tuple(v) for v in versions}) == 1, versions  # the same news for everyone
    assert versions[0][-1] == last and versions[0][0] > first.change_seq, versions[0]
