"""A run started in a process whose worker has free slots: its first steps are claimed by the
starting transaction and handed to that worker, with no wake-up and no claim of its own."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import admin, apply, start, wait_for
from sqlalchemy import select

from legato.runtime import Legato
from legato.store import tables

SLOW = """
name: slow-pair
steps:
  - {id: a, uses: python, with: {function: "demo_steps:slow", seconds: 0.3}}
  - {id: b, uses: python, needs: [a], with: {function: "demo_steps:slow", seconds: 0.3}}
"""

LONG = """
name: long-one
steps:
  - {id: a, uses: python, with: {function: "demo_steps:slow", seconds: 3}}
"""

CHILD = """
name: child-of-one
steps:
  - {id: inner, uses: python, with: {function: "demo_steps:slow", seconds: 0.2}}
"""

PARENT = """
name: parent-of-one
steps:
  - {id: first, uses: python, with: {function: "demo_steps:add", a: 1, b: 2}}
  - {id: sub, uses: workflow, needs: [first], with: {workflow: child-of-one}}
"""


async def _rows(legato: Legato, run_id: int) -> tuple[Any, list[Any], list[str]]:
    async with legato.db.read() as conn:
        run = (await conn.execute(select(tables.runs).where(tables.runs.c.id == run_id))).one()
        steps = list(
            await conn.execute(
                select(tables.steps)
                .where(tables.steps.c.run_id == run_id)
                .order_by(tables.steps.c.id)
            )
        )
        events = list(
            (
                await conn.execute(
                    select(tables.events.c.type)
                    .where(tables.events.c.run_id == run_id)
                    .order_by(tables.events.c.id)
                )
            ).scalars()
        )
    return run, steps, events


async def test_the_start_hands_the_first_steps_to_the_local_worker(engine: Legato) -> None:
    await apply(engine, SLOW)
    [worker] = engine.transitions._local  # the engine fixture's worker
    view = await start(engine, "slow-pair")
    # no await since the start committed (before which no claim could see the run): the
    # worker already holds its first step
    held = [c.run_id for c, _task in worker._inflight.values()]
    assert held == [view["id"]]
    run, steps, events = await _rows(engine, view["id"])
    assert run.status == "RUNNING" and run.started_at is not None
    assert [(s.key, s.status, s.attempt, s.lease_owner) for s in steps] == [
        ("a", "RUNNING", 1, worker.name),
        ("b", "PENDING", 0, None),
    ]
    assert events == ["run.queued", "run.started", "step.started"]
    done = await wait_for(engine, view["id"])
    assert done["status"] == "SUCCEEDED"


async def test_a_full_worker_leaves_the_steps_to_the_queue(engine: Legato) -> None:
    await apply(engine, LONG)
    [worker] = engine.transitions._local
    free = worker.config.concurrency
    views = [await start(engine, "long-one") for _ in range(free + 2)]
    held = {c.run_id for c, _task in worker._inflight.values()}
    assert held == {v["id"] for v in views[:free]}
    for view in views[free:]:
        run, steps, _events = await _rows(engine, view["id"])
        assert (run.status, steps[0].status) == ("QUEUED", "READY")
    finished = await asyncio.gather(*(wait_for(engine, v["id"], 30) for v in views))
    assert {r["status"] for r in finished} == {"SUCCEEDED"}


async def test_no_worker_in_the_process_leaves_the_run_queued(legato: Legato) -> None:
    await apply(legato, SLOW)
    view = await start(legato, "slow-pair")
    run, steps, events = await _rows(legato, view["id"])
    assert (run.status, [s.status for s in steps]) == ("QUEUED", ["READY", "PENDING"])
    assert events == ["run.queued"]


async def test_a_sub_workflow_run_starts_when_its_first_step_is_taken(engine: Legato) -> None:
    await apply(engine, CHILD)
    await apply(engine, PARENT)
    parent = await start(engine, "parent-of-one")
    p = await admin(engine)
    child_id = None
    for _ in range(200):
        sub = next(
            s for s in (await engine.runs.get(p, parent["id"]))["steps"] if s["key"] == "sub"
        )
        child_id = sub.get("child_run_id")
        if child_id:
            break
        await engine.runs.wait_for_change(parent["id"], 0.1)
    assert child_id is not None
    # the transaction that made the child run also handed its first step to the worker
    run, child_steps, events = await _rows(engine, child_id)
    assert [s.status for s in child_steps] == ["RUNNING"]
    assert run.status == "RUNNING" and run.started_at is not None
    assert events == ["run.queued", "run.started", "step.started"]
    done = await wait_for(engine, parent["id"])
    assert done["status"] == "SUCCEEDED"
    run, _steps, events = await _rows(engine, child_id)
    assert run.status == "SUCCEEDED" and run.started_at is not None
    assert events.count("run.started") == 1
