"""Where a run stands: waiting reasons, subtree counts, progress, time left, baselines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from helpers import admin, apply, run_workflow, sleep_until, start, steps_by_key, wait_for
from sqlalchemy import select

from legato.engine.worker import WorkerConfig
from legato.runtime import Legato
from legato.store import tables
from tests.conftest import FAST

CHAIN = """
name: chain
steps:
  - id: first
    uses: python
    with: {function: "demo_steps:noop"}
  - id: second
    needs: [first]
    uses: python
    with: {function: "demo_steps:noop"}
"""


async def test_without_workers_steps_wait_for_a_worker_and_upstream(legato: Legato) -> None:
    await apply(legato, CHAIN)
    run = await start(legato, "chain")
    view = await legato.runs.get(await admin(legato), run["id"])
    steps = steps_by_key(view)
    assert steps["first"]["waiting_reason"] == {"reason": "no_worker"}
    assert steps["second"]["waiting_reason"] == {"reason": "upstream", "on": ["first"]}
    assert view["counts_by_status"] == {"READY": 1, "PENDING": 1}
    # no history yet: a sensible estimate, said to be a guess
    assert view["time_left"]["confidence"] == "low"
    assert view["time_left"]["seconds"] == 2.0  # two unknown steps, one second each
    assert view["time_left"]["low_seconds"] < 2.0 < view["time_left"]["high_seconds"]
    assert view["progress"]["percent"] == 0.0
    assert steps["first"]["baseline"] is None


async def test_backoff_sleep_approval_and_child_run_reasons(engine: Legato, tmp_path: Path) -> None:
    await apply(
        engine,
        """
name: inner
steps:
  - id: gate
    uses: approval
""",
    )
    await apply(
        engine,
        f"""
name: waits
steps:
  - id: flaky
    uses: python
    with: {{function: "demo_steps:flaky", counter_file: "{tmp_path / "n"}", succeed_on: 2}}
    retry: {{attempts: 2, backoff: fixed, initial: 30s}}
  - id: nap
    uses: sleep
    with: {{duration: 30s}}
  - id: gate
    uses: approval
  - id: child
    uses: workflow
    with: {{workflow: inner}}
""",
    )
    run = await start(engine, "waits")
    p = await admin(engine)

    async def settled() -> bool:
        steps = steps_by_key(await engine.runs.get(p, run["id"]))
        return (
            steps["flaky"]["attempt"] == 1
            and steps["flaky"]["status"] == "READY"
            and bool(steps["child"]["child_run_id"])
        )

    await sleep_until(settled)
    view = await engine.runs.get(p, run["id"])
    steps = steps_by_key(view)
    assert steps["flaky"]["waiting_reason"] == {
        "reason": "backoff_until",
        "until": steps["flaky"]["not_before"],
    }
    assert steps["nap"]["waiting_reason"] == {
        "reason": "sleep_until",
        "until": steps["nap"]["not_before"],
    }
    assert steps["gate"]["waiting_reason"] == {"reason": "approval"}
    assert steps["child"]["waiting_reason"] == {
        "reason": "child_run",
        "run_id": steps["child"]["child_run_id"],
    }
    assert steps["child"]["counts_by_status"] == {"RUNNING": 1}  # the child's approval step
    await engine.runs.cancel(p, run["id"])
    await wait_for(engine, run["id"])


async def test_foreach_counts_by_status_without_listing(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: many
inputs:
  items: {type: array, default: [1, 2, 3, 4, 5]}
steps:
  - id: each
    foreach: ${{ inputs.items }}
    uses: python
    with: {function: "demo_steps:add", a: "${{ item }}", b: 1}
""",
    )
    step = run["steps"][0]
    assert step["counts_by_status"] == {"SUCCEEDED": 5}
    p = await admin(engine)
    detail = await engine.runs.step(p, run["id"], "each")
    assert detail["counts_by_status"] == {"SUCCEEDED": 5}


async def test_history_gives_baselines_and_confident_estimates(engine: Legato) -> None:
    for _ in range(6):
        run = await run_workflow(engine, CHAIN)
        assert run["status"] == "SUCCEEDED"
    await asyncio.sleep(2.2)  # duration history is written every two seconds
    await run_workflow(engine, CHAIN)
    view = await run_workflow(engine, CHAIN)
    first = steps_by_key(view)["first"]
    assert first["baseline"]["samples"] >= 6
    assert 0 <= first["baseline"]["p50_ms"] <= first["baseline"]["p95_ms"]
    assert first["slower_than_usual"] in (True, False)
    assert view["time_left"] == {
        "seconds": 0.0,
        "low_seconds": 0.0,
        "high_seconds": 0.0,
        "confidence": "high",
    }
    assert view["estimated_completion_time"] == view["finished_at"]
    assert view["progress"]["percent"] == 100.0


async def test_a_slow_step_is_flagged_slower_than_usual(legato: Legato) -> None:
    legato.start_engine(config=WorkerConfig(**{**FAST.__dict__}), reaper_interval=0.2)
    await apply(
        legato,
        """
name: timing
inputs:
  seconds: {type: number, default: 0}
steps:
  - id: work
    uses: python
    with: {function: "demo_steps:slow", seconds: "${{ inputs.seconds }}"}
""",
    )
    for _ in range(6):
        await wait_for(legato, (await start(legato, "timing"))["id"])
    await asyncio.sleep(2.2)
    await wait_for(legato, (await start(legato, "timing"))["id"])  # flushes the history
    slow = await wait_for(legato, (await start(legato, "timing", seconds=0.5))["id"])
    assert steps_by_key(slow)["work"]["slower_than_usual"] is True


async def test_every_progress_point_is_kept_with_its_rate(engine: Legato) -> None:
    script = (
        "import time\n"
        "for f in (0.25, 0.5, 0.75):\n"
        "    print(f'::progress {f} at {f}', flush=True)\n"
        "    time.sleep(0.3)\n"
    )
    await apply(
        engine,
        "name: reporter\nsteps:\n  - id: work\n    uses: shell\n"
        "    with: {argv: [python3, -c, " + json.dumps(script) + "]}\n",
    )
    run = await wait_for(engine, (await start(engine, "reporter"))["id"])
    assert run["status"] == "SUCCEEDED", run
    history = await engine.runs.progress_history(await admin(engine), run["id"], "work")
    assert [(p["fraction"], p["message"]) for p in history["points"]] == [
        (0.25, "at 0.25"),
        (0.5, "at 0.5"),
        (0.75, "at 0.75"),
    ]
    # the rate is the progress made between the first and the last point, over the time
    # between them as the step reported them (how fast the machine was is not asserted)
    points = tables.progress_points.c
    async with engine.db.read() as conn:
        times = (await conn.execute(select(points.time).order_by(points.id))).scalars().all()
    assert len(times) == 3
    if times[-1] > times[0]:
        assert history["rate_per_second"] == pytest.approx(0.5 / (times[-1] - times[0]))
    else:
        assert history["rate_per_second"] is None
