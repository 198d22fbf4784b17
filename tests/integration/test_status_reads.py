"""Status reads on both stores: the statements each hot path sends (pinned), reads that stay
exact across processes, and a read model that never waits on a second connection."""

from __future__ import annotations

import asyncio

import pytest
from helpers import admin, apply, start, wait_for
from statements import counting

from legato.engine.claims import claim
from legato.engine.transitions import Continuation
from legato.engine.worker import WorkerConfig
from legato.model.filters import RunFilter
from legato.model.reads import RunRead, StepRecord
from legato.model.starts import StartRun
from legato.runtime import Legato

THREE = """
name: three
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
  - id: b
    needs: [a]
    uses: python
    with: {function: "demo_steps:noop"}
  - id: c
    needs: [b]
    uses: python
    with: {function: "demo_steps:noop"}
"""

SLEEPY = """
name: sleepy
steps:
  - id: nap
    uses: sleep
    with: {duration: 30s}
"""


async def test_a_status_read_costs_one_statement_once_read(legato: Legato) -> None:
    p = await admin(legato)
    await apply(legato, THREE)
    run = await start(legato, "three")
    cold = Legato(legato.database_url)  # another process: nothing kept yet
    try:
        with counting(cold.db) as first:
            view = await cold.runs.get(p, run["id"])
        # the head; the run, its top-level steps, the subtree counts, the histories; and as
        # its first step is ready, whether a worker lives and whether its namespace is full
        assert first.count == 7, first
        with counting(cold.db) as again:
            view_again = await cold.runs.get(p, run["id"])
        assert again.count == 1, again  # the head only: the run has not changed
        assert view_again["steps"] == view["steps"]
        with counting(cold.db) as by_uuid:
            await cold.runs.get(p, run["uuid"])
        assert by_uuid.count == 1, by_uuid
    finally:
        await cold.close()


async def test_list_start_claim_and_complete_statements_are_pinned(legato: Legato) -> None:
    p = await admin(legato)
    await apply(legato, THREE)
    await start(legato, "three")  # warms the definition cache, as a running server has it
    sqlite = legato.db.is_sqlite
    with counting(legato.db) as started:
        await legato.runs.start(p, StartRun("three"))
    # the workflow with its namespace's queue limit, the run, its steps (on SQLite, which
    # cannot return the ids of a many-row insert in order, the highest step id first), the
    # event; on PostgreSQL the event's insert also sends the NOTIFY that wakes the workers.
    # The run's webhooks need no look-up: the transaction holds the run, and the
    # subscriptions are kept
    assert started.count == (5 if sqlite else 4), started
    assert sqlite or "pg_notify" in started.sql[-1], started
    with counting(legato.db) as listed:
        page = await legato.runs.list_runs(p, RunFilter(namespace_id=p.namespace_id), 50, None)
    assert len(page["runs"]) == 2
    assert listed.count == 1, listed
    with counting(legato.db) as claimed_sql:
        claimed = await claim(legato.db, "w1", 1, 30.0)
    assert [c.key for c in claimed] == ["a"]
    # the namespaces with limits (kept a few seconds), the claim, the runs, the events (with
    # the NOTIFY, on PostgreSQL)
    assert claimed_sql.count == 4, claimed_sql
    from legato.model.records import StepResult

    result = StepResult(claimed[0].id, claimed[0].attempt, "SUCCEEDED", {}, None, "w1")
    with counting(legato.db) as completed:
        _, following = await legato.transitions.complete_and_claim(
            [result], [claimed[0].run_id], Continuation("w1", 4, 30.0)
        )
    assert [c.key for c in following] == ["b"]  # released and taken in the same transaction
    # the claim above went around this process's graphs (as another worker's would): the
    # run's counter shows the kept graph behind, so the run and its steps are read; then the
    # step updates (the next step taken in them, written RUNNING: no claim statement), the
    # run's update, the events (with the NOTIFY); (the buffered duration statistics, when
    # due, add two)
    core = [sql for sql in completed.sql if "step_stats" not in sql]
    assert len(core) == 6, completed
    assert not any("attempt = attempt + 1" in sql for sql in core), completed
    # the next completion of the same run reads its counter and finds the run and its steps
    # in the graph this process wrote
    [taken] = following
    result = StepResult(taken.id, taken.attempt, "SUCCEEDED", {}, None, "w1")
    with counting(legato.db) as cached:
        await legato.transitions.complete_and_claim(
            [result], [taken.run_id], Continuation("w1", 4, 30.0)
        )
    core = [sql for sql in cached.sql if "step_stats" not in sql]
    assert not any(sql.startswith("SELECT") and "FROM steps" in sql for sql in core), cached
    assert core[0].startswith("SELECT runs.id, runs.change_seq FROM runs"), cached
    # the counter, the step updates (the last step taken in them), the run's, the events
    assert len(core) == 4, cached


async def test_a_read_after_a_commit_in_another_process_shows_it(legato: Legato) -> None:
    """Process A keeps the run it read; process B changes it; A's next read shows the
    change at once, with a new validator."""
    p = await admin(legato)
    await apply(legato, SLEEPY)
    run = await start(legato, "sleepy")
    other = Legato(legato.database_url)
    await other.open()
    try:
        first = await legato.status.head(p, run["id"])
        view = await legato.runs.get(p, run["id"])
        assert view["status"] == "QUEUED"
        await other.runs.cancel(p, run["id"])
        head = await legato.status.head(p, run["id"])
        assert head.version > first.version
        assert (await legato.runs.get(p, run["id"]))["status"] == "CANCELED"
    finally:
        await other.close()


async def test_the_typed_read_is_what_every_face_renders(legato: Legato) -> None:
    p = await admin(legato)
    await apply(legato, THREE)
    run = await start(legato, "three")
    read = await legato.status.read(p, run["id"])
    assert isinstance(read, RunRead)
    assert [s.key for s in read.steps] == ["a", "b", "c"]
    assert all(isinstance(s, StepRecord) for s in read.steps)
    assert read.steps[1].needs == ("a",)
    view = await legato.runs.get(p, run["id"])
    assert [s["key"] for s in view["steps"]] == [s.key for s in read.steps]
    assert view["id"] == read.run.id and view["uuid"] == read.run.uuid


async def test_concurrent_reads_never_wait_on_a_second_connection(legato: Legato) -> None:
    """More concurrent reads than the pool has connections, of a run with a READY step (its
    waiting reason asks whether a worker lives): all answer, none times out."""
    p = await admin(legato)
    await apply(legato, THREE)
    runs = [await start(legato, "three") for _ in range(5)]
    legato.reads.forget(runs[0]["id"])

    async def read(i: int) -> str:
        view = await legato.runs.get(p, runs[i % len(runs)]["id"])
        return str(view["steps"][0]["waiting_reason"]["reason"])

    reasons = await asyncio.wait_for(asyncio.gather(*(read(i) for i in range(300))), 30)
    assert set(reasons) == {"no_worker"}


@pytest.fixture
async def slow_worker(legato: Legato) -> Legato:
    legato.start_engine(
        workers=1, config=WorkerConfig(concurrency=4, lease_seconds=5.0, poll_interval=0.05)
    )
    return legato


async def test_a_finished_run_is_read_from_what_the_process_keeps(slow_worker: Legato) -> None:
    legato = slow_worker
    p = await admin(legato)
    await apply(legato, THREE)
    run = await start(legato, "three")
    done = await wait_for(legato, run["id"])
    assert done["status"] == "SUCCEEDED"
    await legato.stop_engine()  # its claim polls, every 50 ms, would be counted too
    await legato.runs.get(p, run["id"])
    with counting(legato.db) as seen:
        view = await legato.runs.get(p, run["id"])
    assert seen.count == 1, seen
    assert view["status"] == "SUCCEEDED"
    assert view["counts_by_status"] == {"SUCCEEDED": 3}


async def test_a_ready_step_waits_for_a_worker_that_serves_its_namespace(legato: Legato) -> None:
    """Only workers bound to other namespaces are alive: the step says no worker serves it;
    once one that serves every namespace beats, it waits for a free slot instead."""
    from legato.store.workers import register_worker

    p = await admin(legato)
    await apply(legato, THREE)
    run = await start(legato, "three")
    await register_worker(legato.db, "bound-elsewhere", 4, ["team-b"])
    first = Legato(legato.database_url)
    try:
        view = await first.runs.get(p, run["id"])
        assert view["steps"][0]["waiting_reason"] == {"reason": "no_worker"}
    finally:
        await first.close()
    await register_worker(legato.db, "serves-all", 4)
    second = Legato(legato.database_url)
    try:
        view = await second.runs.get(p, run["id"])
        assert view["steps"][0]["waiting_reason"] == {
            "reason": "concurrency_limit",
            "on": "workers",
        }
    finally:
        await second.close()
