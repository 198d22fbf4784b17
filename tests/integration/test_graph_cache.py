"""The run graphs a process wrote are kept while their run's change counter holds: what
another process or a heartbeat changed meanwhile is never overwritten or missed."""

from __future__ import annotations

from helpers import admin, apply, start
from sqlalchemy import select
from statements import counting

from legato.engine.claims import claim
from legato.engine.transitions import Continuation
from legato.model.records import ClaimedStep, StepResult
from legato.runtime import Legato
from legato.store import tables
from legato.store.leases import heartbeat
from tests.conftest import SETTINGS

CHAIN = """
name: chain-of-three
steps:
  - {id: a, uses: python, with: {function: "demo_steps:noop"}}
  - {id: b, uses: python, needs: [a], with: {function: "demo_steps:noop"}}
  - {id: c, uses: python, needs: [b], with: {function: "demo_steps:noop"}}
"""

PAIR = """
name: side-by-side
steps:
  - {id: a, uses: python, with: {function: "demo_steps:noop"}}
  - {id: b, uses: python, with: {function: "demo_steps:noop"}}
"""


def _done(step_id: int, attempt: int, worker: str = "w1") -> StepResult:
    return StepResult(step_id, attempt, "SUCCEEDED", {}, None, worker)


async def _steps(legato: Legato, run_id: int) -> dict[str, tuple[str, float | None]]:
    s = tables.steps.c
    async with legato.db.read() as conn:
        rows = await conn.execute(
            select(s.key, s.status, s.lease_expires_at).where(s.run_id == run_id)
        )
        return {r.key: (r.status, r.lease_expires_at) for r in rows}


async def test_a_change_made_by_another_process_is_seen(legato: Legato) -> None:
    await apply(legato, CHAIN)
    run = await start(legato, "chain-of-three")
    [a] = await claim(legato.db, "w1", 1, 30.0)
    _, [b] = await legato.transitions.complete_and_claim(
        [_done(a.id, a.attempt)], [a.run_id], Continuation("w1", 4, 30.0)
    )
    other = Legato(legato.database_url, settings=SETTINGS)
    await other.open()
    try:  # another process cancels the run while this one holds its graph
        await other.transitions.cancel(run["id"])
    finally:
        await other.close()
    await legato.transitions.complete([_done(b.id, b.attempt)], [b.run_id])
    p = await admin(legato)
    view = await legato.runs.get(p, run["id"])
    assert view["status"] == "CANCELED"
    assert {s["key"]: s["status"] for s in view["steps"]} == {
        "a": "SUCCEEDED",
        "b": "SUCCEEDED",
        "c": "CANCELED",
    }


async def test_a_renewed_lease_is_not_written_back(legato: Legato) -> None:
    await apply(legato, PAIR)
    run = await start(legato, "side-by-side")
    a, b = await claim(legato.db, "w1", 2, 30.0)
    await legato.transitions.complete([_done(a.id, a.attempt)], [a.run_id])
    await heartbeat(legato.db, "w1", 3600.0)  # b's lease renewed: no change of the run
    renewed = (await _steps(legato, run["id"]))["b"][1]
    assert renewed is not None and renewed > b.lease_expires_at + 3000
    await legato.transitions.cancel(run["id"])  # writes b back (cancel requested)
    status, lease = (await _steps(legato, run["id"]))["b"]
    assert (status, lease) == ("RUNNING", renewed)


async def test_a_rolled_back_transaction_leaves_no_graph_behind(legato: Legato) -> None:
    await apply(legato, CHAIN)
    run = await start(legato, "chain-of-three")
    [a] = await claim(legato.db, "w1", 1, 30.0)

    class Refused(Exception):
        pass

    async def fail(_tx: object) -> None:
        raise Refused

    # the planner applies the result to the graph, then the transaction fails
    original = legato.db.write

    async def write_then_fail(fn, **kwargs):  # type: ignore[no-untyped-def]
        async def both(tx):  # type: ignore[no-untyped-def]
            await fn(tx)
            await fail(tx)

        return await original(both, **kwargs)

    legato.db.write = write_then_fail  # type: ignore[method-assign]
    try:
        try:
            await legato.transitions.complete([_done(a.id, a.attempt)], [a.run_id])
        except Refused:
            pass
    finally:
        del legato.db.write
    assert (await _steps(legato, run["id"]))["a"][0] == "RUNNING"
    # the result again: applied to what the database holds, not to a half-applied graph
    assert await legato.transitions.complete([_done(a.id, a.attempt)], [a.run_id]) == 1
    steps = await _steps(legato, run["id"])
    assert {k: v[0] for k, v in steps.items()} == {"a": "SUCCEEDED", "b": "READY", "c": "PENDING"}


async def test_a_claim_of_the_claim_loop_is_taken_into_the_kept_graph(legato: Legato) -> None:
    await apply(legato, CHAIN)
    run = await start(legato, "chain-of-three")  # its graph is kept from the start
    [a] = await legato.transitions.claim("w1", 1, 30.0)
    with counting(legato.db) as completed:
        assert await legato.transitions.complete([_done(a.id, a.attempt)], [a.run_id]) == 1
    assert not any(q.startswith("SELECT") and "FROM steps" in q for q in completed.sql), completed
    steps = await _steps(legato, run["id"])
    assert {k: v[0] for k, v in steps.items()} == {"a": "SUCCEEDED", "b": "READY", "c": "PENDING"}
    # a claim by another process moves the run's counter past the kept graph: read afresh
    other = Legato(legato.database_url, settings=SETTINGS)
    await other.open()
    try:
        [b] = await other.transitions.claim("w2", 1, 30.0)
    finally:
        await other.close()
    assert b.key == "b"
    with counting(legato.db) as afresh:
        await legato.transitions.complete([_done(b.id, b.attempt, "w2")], [b.run_id])
    assert any(q.startswith("SELECT") and "FROM steps" in q for q in afresh.sql), afresh
    steps = await _steps(legato, run["id"])
    assert {k: v[0] for k, v in steps.items()} == {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "READY"}


async def _run_start(legato: Legato, run_id: int) -> tuple[str, float | None, list[str]]:
    r, e = tables.runs.c, tables.events.c
    async with legato.db.read() as conn:
        status, started = (
            await conn.execute(select(r.status, r.started_at).where(r.id == run_id))
        ).one()
        types = (
            await conn.execute(select(e.type).where(e.run_id == run_id).order_by(e.id))
        ).scalars()
        return status, started, [t for t in types if t == "run.started"]


async def test_a_run_the_claim_started_is_kept_started(legato: Legato) -> None:
    """The kept graph of a queued run takes in that the claim started it: the next
    completion neither starts it again nor moves its start time."""
    await apply(legato, CHAIN)
    run = await start(legato, "chain-of-three")  # kept QUEUED, as admitted
    [a] = await legato.transitions.claim("w1", 1, 30.0)
    await legato.transitions.complete([_done(a.id, a.attempt)], [a.run_id])
    assert await _run_start(legato, run["id"]) == ("RUNNING", a.started_at, ["run.started"])


async def test_a_run_taken_by_a_local_worker_is_kept_started(legato: Legato) -> None:
    """The same for a run whose first step a worker of this process took in the starting
    transaction: its graph is kept as the claim left it, and the next completion reads no
    steps."""
    await apply(legato, CHAIN)
    taken: list[ClaimedStep] = []

    class Local:
        def continuation(self) -> Continuation | None:
            return Continuation("w1", 4, 30.0)

        def take(self, steps: list[ClaimedStep]) -> None:
            taken.extend(steps)

    local = Local()
    legato.transitions.attach(local)
    try:
        run = await start(legato, "chain-of-three")
    finally:
        legato.transitions.detach(local)
    assert run["status"] == "QUEUED"  # the answer shows the run as admitted
    [a] = taken
    with counting(legato.db) as completed:
        await legato.transitions.complete([_done(a.id, a.attempt)], [a.run_id])
    assert not any(q.startswith("SELECT") and "FROM steps" in q for q in completed.sql), completed
    assert await _run_start(legato, run["id"]) == ("RUNNING", a.started_at, ["run.started"])
    steps = await _steps(legato, run["id"])
    assert {k: v[0] for k, v in steps.items()} == {"a": "SUCCEEDED", "b": "READY", "c": "PENDING"}
