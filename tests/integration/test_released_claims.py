"""A worker reporting results takes the steps its transaction released in running runs
without a claim statement: what it writes must be exactly what a claim writes."""

from __future__ import annotations

from helpers import admin, apply, start
from sqlalchemy import select

from legato.engine.claims import claim
from legato.engine.transitions import Continuation
from legato.model.records import StepResult
from legato.runtime import Legato
from legato.store import tables

FAN = """
name: fan
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
  - {id: b, needs: [a], uses: python, with: {function: "demo_steps:noop"}}
  - {id: c, needs: [a], uses: python, with: {function: "demo_steps:noop"}}
  - {id: d, needs: [a], uses: python, with: {function: "demo_steps:noop"}}
"""


async def _steps(legato: Legato, run_id: int) -> dict[str, dict[str, object]]:
    async with legato.db.read() as conn:
        rows = (
            await conn.execute(select(tables.steps).where(tables.steps.c.run_id == run_id))
        ).mappings()
        return {r["key"]: dict(r) for r in rows}


async def test_released_steps_are_taken_as_a_claim_takes_them(legato: Legato) -> None:
    p = await admin(legato)
    await apply(legato, FAN)
    run = await start(legato, "fan")
    [first] = await claim(legato.db, "w1", 1, 30.0)
    assert first.key == "a"
    done = StepResult(first.id, first.attempt, "SUCCEEDED", {"x": 1}, None, "w1")
    # two free slots for three released steps: the first two, in the order a claim takes
    _, taken = await legato.transitions.complete_and_claim(
        [done], [first.run_id], Continuation("w1", 2, 30.0)
    )
    assert sorted(c.key for c in taken) == ["b", "c"]
    rows = await _steps(legato, run["id"])
    for c in taken:
        row = rows[c.key]
        assert row["status"] == "RUNNING"
        assert (row["attempt"], row["lease_owner"]) == (1, "w1")
        assert row["lease_expires_at"] == c.lease_expires_at
        assert row["started_at"] == c.started_at
        assert row["status_message"] == "Running"
        assert c.lease_expires_at - c.started_at == 30.0
        assert (c.namespace_id, c.attempt, c.max_attempts) == (p.namespace_id, 1, 1)
        assert c.args == {"function": "demo_steps:noop"}
    assert rows["d"]["status"] == "READY" and rows["d"]["lease_owner"] is None
    # the one left is another worker's; the two taken are nobody else's
    other = await claim(legato.db, "w2", 5, 30.0)
    assert [c.key for c in other] == ["d"]
    events = await legato.runs.events(p, run["id"])
    started = [e for e in events if e["type"] == "step.started"]
    assert [(e["step"], e["data"]["worker"]) for e in started] == [
        ("a", "w1"),
        ("b", "w1"),
        ("c", "w1"),
        ("d", "w2"),
    ]
    # fenced by the lease like any claimed step: w2 cannot report b; w1 can
    b = next(c for c in taken if c.key == "b")
    stale = StepResult(b.id, b.attempt, "SUCCEEDED", {}, None, "w2")
    assert await legato.transitions.complete([stale], [b.run_id]) == 0
    good = StepResult(b.id, b.attempt, "SUCCEEDED", {}, None, "w1")
    assert await legato.transitions.complete([good], [b.run_id]) == 1
    assert (await _steps(legato, run["id"]))["b"]["status"] == "SUCCEEDED"


async def test_a_worker_bound_to_namespaces_takes_released_steps_by_the_claim(
    legato: Legato,
) -> None:
    await admin(legato)
    await apply(legato, FAN)
    run = await start(legato, "fan")
    [first] = await claim(legato.db, "w1", 1, 30.0)
    done = StepResult(first.id, first.attempt, "SUCCEEDED", {}, None, "w1")
    _, taken = await legato.transitions.complete_and_claim(
        [done], [first.run_id], Continuation("w1", 4, 30.0, ("elsewhere",))
    )
    assert taken == []  # not its namespace
    rows = await _steps(legato, run["id"])
    assert {rows[k]["status"] for k in "bcd"} == {"READY"}
