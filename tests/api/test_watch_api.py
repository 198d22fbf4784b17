"""Watching runs through HTTP: long-polls that answer right after a change, Server-Sent
Events of a run and of its logs, across processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import ADMIN_KEY, ApiKit, assert_problem, bearer

from legato.http.watch import SSE, SSEvent
from legato.runtime import Legato

GATED = """\
name: gated
steps:
  - id: prep
    uses: python
    with: {function: "demo_steps:noop"}
  - id: gate
    needs: [prep]
    uses: approval
"""

GATES = """\
name: gates
steps:
  - id: g1
    uses: approval
  - id: g2
    needs: [g1]
    uses: approval
  - id: g3
    needs: [g2]
    uses: approval
"""

# Worker steps, each ending as soon as its file exists.
FILE_GATES = """\
name: file-gates
inputs:
  dir: {type: string}
steps:
  - id: w1
    uses: shell
    with: {argv: [sh, -c, 'while [ ! -e "$0" ]; do sleep 0.005; done', "${{ inputs.dir }}/1"]}
  - id: w2
    needs: [w1]
    uses: shell
    with: {argv: [sh, -c, 'while [ ! -e "$0" ]; do sleep 0.005; done', "${{ inputs.dir }}/2"]}
  - id: w3
    needs: [w2]
    uses: shell
    with: {argv: [sh, -c, 'while [ ! -e "$0" ]; do sleep 0.005; done', "${{ inputs.dir }}/3"]}
"""

# QUEUED for a second (its first step sleeps before any worker takes it), then RUNNING until
# the gate is signalled.
PACED = """\
name: paced
steps:
  - id: nap
    uses: sleep
    with: {duration: 1s}
  - id: gate
    needs: [nap]
    uses: approval
"""

TICKER = """\
name: ticker
steps:
  - id: tick
    uses: shell
    with: {argv: [sh, -c, "for i in 1 2 3 4 5; do echo tick $i; sleep 0.1; done"]}
"""

# What the detail view computes from the clock at each read.
CLOCK_KEYS = ("time_left", "estimated_completion_time", "estimated_completion_range")
#: A woken waiter answers at once; one that missed its wake-up would answer only at the
#: service's recheck (5 s) or its timeout. The bound tells the two apart on a loaded machine;
#: how fast wake-ups are is measured in bench/reads.py, not asserted here.
WOKEN = 2.5


def without_clock(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in CLOCK_KEYS}


@pytest.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app behind a real HTTP server."""
    async with httpx.AsyncClient(base_url=live_url, headers=bearer(ADMIN_KEY)) as client:
        yield client


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The events of a ``text/event-stream`` response (comments as ``{"comment": …}``)."""
    assert response.status_code == 200, await response.aread()
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
    assert not event, event


def timed(request: Awaitable[httpx.Response]) -> asyncio.Task[tuple[httpx.Response, float]]:
    """Sends ``request`` in a task that also answers when the response came."""

    async def send() -> tuple[httpx.Response, float]:
        response = await request
        return response, time.monotonic()

    return asyncio.create_task(send())


@contextlib.asynccontextmanager
async def commits(legato: Legato, run_id: int) -> AsyncIterator[list[float]]:
    """When changes of the run commit through ``legato``'s connections: its local wake-ups
    come right after each commit (stamped as they are set, not when a waiter runs)."""
    stamps: list[float] = []
    topic = f"run:{run_id}"
    changed = legato.db.subscribe(topic)
    set_event = changed.set

    def stamp() -> None:
        stamps.append(time.monotonic())
        set_event()

    changed.set = stamp  # type: ignore[method-assign]
    try:
        yield stamps
    finally:
        legato.db.unsubscribe(topic, changed)


def since_commit(commit_times: list[float], answered: float) -> float:
    """How long after the last commit before it an answer came."""
    before = [t for t in commit_times if t <= answered]
    assert before, (commit_times, answered)
    return answered - max(before)


# -- long-poll ------------------------------------------------------------------------------


async def long_poll_latency(
    client: httpx.AsyncClient,
    path: str,
    finish: Callable[[], Awaitable[Any]],
    committer: Legato,
    run_id: int,
) -> tuple[float, httpx.Response]:
    """Long-polls ``path`` with its current ETag, lets ``finish`` end a step, and answers how
    long after the commit of that change the long-poll came back, and its answer."""
    tag = (await client.get(path)).headers["etag"]
    poll = timed(client.get(path, params={"wait": "30s"}, headers={"If-None-Match": tag}))
    await asyncio.sleep(0.2)
    assert not poll.done()
    async with commits(committer, run_id) as committed:
        started = time.monotonic()
        await finish()
        answer, answered = await poll
    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] != tag
    assert answered - started < 1.0
    return since_commit(committed, answered), answer


def assert_prompt(latencies: list[float]) -> None:
    """Woken by the change, not by a recheck or the timeout."""
    assert max(latencies) < WOKEN, latencies


async def test_a_long_poll_returns_right_after_an_approval_step_finishes(
    live: httpx.AsyncClient, kit: ApiKit, engine: Legato
) -> None:
    await kit.apply(GATES)
    run = await kit.launch("gates")
    path = f"/api/v1/runs/{run['id']}"
    latencies = []
    for index, gate in enumerate(("g1", "g2", "g3")):
        await kit.wait_step(run["id"], gate, "RUNNING")

        async def finish(gate: str = gate) -> None:
            r = await live.post(f"{path}/steps/{gate}/signal", json={"ok": True})
            assert r.status_code == 200, r.text

        latency, answer = await long_poll_latency(live, path, finish, engine, run["id"])
        latencies.append(latency)
        assert [s["status"] for s in answer.json()["steps"]][index] == "SUCCEEDED"
    assert answer.json()["status"] == "SUCCEEDED"
    assert without_clock(answer.json()) == without_clock(await kit.get_run(run["id"]))
    assert_prompt(latencies)


async def test_a_long_poll_returns_right_after_a_worker_step_finishes(
    live: httpx.AsyncClient, kit: ApiKit, engine: Legato, tmp_path: Path
) -> None:
    await kit.apply(FILE_GATES)
    run = await kit.launch("file-gates", dir=str(tmp_path))
    latencies = []
    for index in (1, 2, 3):
        await kit.wait_step(run["id"], f"w{index}", "RUNNING")
        path = f"/api/v1/runs/{run['id']}/steps/w{index}"

        async def finish(index: int = index) -> None:
            (tmp_path / str(index)).touch()

        latency, answer = await long_poll_latency(live, path, finish, engine, run["id"])
        latencies.append(latency)
        assert answer.json()["status"] == "SUCCEEDED"
    assert_prompt(latencies)


async def test_a_long_poll_without_a_validator_waits_from_the_state_it_found(
    api: httpx.AsyncClient, kit: ApiKit, engine: Legato
) -> None:
    await kit.apply(GATED)
    run = await kit.launch("gated")
    await kit.wait_step(run["id"], "gate", "RUNNING")
    path = f"/api/v1/runs/{run['id']}/events"
    before = await api.get(path)
    poll = timed(api.get(path, params={"wait": "30s"}))
    await asyncio.sleep(0.3)
    assert not poll.done()
    async with commits(engine, run["id"]) as committed:
        await api.post(f"/api/v1/runs/{run['id']}/steps/gate/signal", json={})
        answer, answered = await poll
    assert since_commit(committed, answered) < WOKEN
    assert answer.status_code == 200
    assert answer.headers["etag"] != before.headers["etag"]
    types = [e["type"] for e in answer.json()["events"]]
    assert types[: len(before.json()["events"])] == [e["type"] for e in before.json()["events"]]
    assert types[-1] == "run.succeeded"


async def test_a_long_poll_of_another_format_or_an_old_tag_answers_at_once(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(GATED)
    run = await kit.launch("gated")
    await kit.wait_step(run["id"], "gate", "RUNNING")
    path = f"/api/v1/runs/{run['id']}"
    tag = (await api.get(path)).headers["etag"]
    started = time.monotonic()
    r = await api.get(f"{path}.xml", params={"wait": "30s"}, headers={"If-None-Match": tag})
    assert r.status_code == 200 and r.headers["etag"] == tag.replace(".json", ".xml")
    assert time.monotonic() - started < 1.0
    await api.post(f"{path}/steps/gate/signal", json={})
    await kit.wait(run["id"])
    started = time.monotonic()
    r = await api.get(path, params={"wait": "30s"}, headers={"If-None-Match": tag})
    assert r.status_code == 200 and r.json()["status"] == "SUCCEEDED"
    assert time.monotonic() - started < 1.0


async def test_a_long_poll_wakes_across_processes_on_postgresql(
    api: httpx.AsyncClient, kit: ApiKit, database_url: str
) -> None:
    """The signals commit through another process's connections (another Legato on the same
    database): the wake-ups reach this one by NOTIFY."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite wakes waiters inside one process")
    await kit.apply(GATES)
    run = await kit.launch("gates")
    path = f"/api/v1/runs/{run['id']}"
    other = Legato(database_url)
    await other.open()
    try:
        caller = await other.tenancy.authenticate(ADMIN_KEY)
        latencies = []
        for gate in ("g1", "g2", "g3"):
            await kit.wait_step(run["id"], gate, "RUNNING")

            async def finish(gate: str = gate) -> None:
                await other.runs.signal(caller, run["id"], gate, {})

            latency, answer = await long_poll_latency(api, path, finish, other, run["id"])
            latencies.append(latency)
        assert answer.json()["status"] == "SUCCEEDED"
        assert_prompt(latencies)
    finally:
        await other.close()


# -- server-sent events ---------------------------------------------------------------------


async def test_an_sse_client_sees_every_state_of_a_run(
    live: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(PACED)
    run = await kit.launch("paced")
    events: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def listen() -> None:
        async with live.stream("GET", f"/api/v1/runs/{run['id']}/watch") as r:
            assert r.headers["cache-control"] == "no-store"
            async for event in sse(r):
                events.append(event)
                arrived.set()

    listener = asyncio.create_task(listen())

    async def until(predicate: Any) -> None:
        async with asyncio.timeout(10):
            while not any(predicate(json.loads(e["data"])) for e in events if "data" in e):
                arrived.clear()
                await arrived.wait()

    await until(lambda r: r["status"] == "QUEUED")
    await until(lambda r: r["steps"][1]["status"] == "RUNNING")
    await live.post(f"/api/v1/runs/{run['id']}/steps/gate/signal", json={})
    async with asyncio.timeout(10):
        await listener  # the stream ends after the run has finished

    assert {e["event"] for e in events} == {"run"}
    runs = [json.loads(e["data"]) for e in events]
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(set(ids)), ids  # every change once, in order
    statuses = [r["status"] for r in runs]
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == [
        "QUEUED", "RUNNING", "SUCCEEDED"
    ]  # fmt: skip
    assert all(r["id"] == run["id"] for r in runs)
    final = await live.get(f"/api/v1/runs/{run['id']}")
    assert without_clock(runs[-1]) == without_clock(final.json())
    assert final.headers["etag"] == f'W/"{run["id"]}.{ids[-1]}.json"'


async def test_sse_honours_last_event_id(live: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(GATED)
    run = await kit.launch("gated")
    await kit.wait_step(run["id"], "gate", "RUNNING")
    await live.post(f"/api/v1/runs/{run['id']}/steps/gate/signal", json={})
    await kit.wait(run["id"])
    final = await live.get(f"/api/v1/runs/{run['id']}")
    seq = int(final.headers["etag"].split(".")[1])
    url = f"/api/v1/runs/{run['uuid']}/watch"
    for headers in ({}, {"Last-Event-ID": str(seq - 1)}, {"Last-Event-ID": "junk"}):
        async with live.stream("GET", url, headers=headers) as r:
            got = [e async for e in sse(r)]
        assert [(e["event"], e["id"]) for e in got] == [("run", str(seq))]
        assert without_clock(json.loads(got[0]["data"])) == without_clock(final.json())
    for last in (seq, seq + 5):  # seen already: 204 tells EventSource not to reconnect
        r = await live.get(url, headers={"Last-Event-ID": str(last)})
        assert (r.status_code, r.content) == (204, b"")


async def test_watching_unknown_runs_is_404(api: httpx.AsyncClient, kit: ApiKit) -> None:
    for ref in ("999", "nope", "0"):
        assert_problem(await api.get(f"/api/v1/runs/{ref}/watch"), 404, "run_not_found")
    await kit.apply(GATED)
    run = await kit.launch("gated")
    tenant_b = bearer((await kit.new_key("viewer", "tenant-b"))["key"])
    r = await api.get(f"/api/v1/runs/{run['id']}/watch", headers=tenant_b)
    assert_problem(r, 404, "run_not_found")


async def test_sse_streams_send_heartbeats_while_nothing_happens() -> None:
    async def slow() -> AsyncIterator[SSEvent]:
        await asyncio.sleep(0.25)
        yield SSEvent("run", {"a": [1, None]}, 7)
        yield SSEvent("end", {})

    response = SSE(slow(), heartbeat=0.1)
    assert response.media_type == "text/event-stream"
    chunks = [c async for c in response.body_iterator]
    # a keep-alive (or two: a loaded machine may take longer between them) while it waits
    waiting = chunks[:-2]
    assert waiting and set(waiting) == {b": keep-alive\n\n"}, chunks
    assert chunks[-2:] == [
        b'event: run\nid: 7\ndata: {"a":[1,null]}\n\n',
        b"event: end\ndata: {}\n\n",
    ]


async def test_sse_stops_its_source_when_the_client_leaves() -> None:
    closed = asyncio.Event()

    async def forever() -> AsyncIterator[SSEvent]:
        try:
            yield SSEvent("run", {}, 1)
            await asyncio.sleep(3600)
            yield SSEvent("run", {}, 2)
        finally:
            closed.set()

    body = SSE(forever(), heartbeat=10).body_iterator
    assert await anext(body) == b"event: run\nid: 1\ndata: {}\n\n"
    pending = asyncio.ensure_future(anext(body))
    await asyncio.sleep(0.05)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await body.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()


async def test_logs_follow_as_server_sent_events(live: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(TICKER)
    run = await kit.launch("ticker")
    url = f"/api/v1/runs/{run['id']}/logs"
    headers = {"Accept": "text/event-stream"}
    async with live.stream("GET", url, params={"follow": "true"}, headers=headers) as r:
        got = [e async for e in sse(r)]
    logs = [e for e in got if e["event"] == "log"]
    assert [json.loads(e["data"])["message"] for e in logs] == [f"tick {i}" for i in range(1, 6)]
    assert [e["id"] for e in logs] == [str(json.loads(e["data"])["seq"]) for e in logs]
    assert got[-1] == {"event": "end", "data": "{}"}
    # resumed after the third line
    resume = {**headers, "Last-Event-ID": logs[2]["id"]}
    async with live.stream("GET", url, params={"follow": "true"}, headers=resume) as r:
        again = [e async for e in sse(r)]
    assert again == [*logs[3:], {"event": "end", "data": "{}"}]
    # without the header: NDJSON as before
    r = await live.get(url, params={"follow": "true"})
    assert r.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line)["message"] for line in r.text.splitlines()] == [
        f"tick {i}" for i in range(1, 6)
    ]


async def test_watchers_of_a_run_that_is_deleted_hear_it_is_gone(
    live: httpx.AsyncClient, kit: ApiKit
) -> None:
    """A long-poll of a finished run answers 404 once the run is deleted, and the watchers
    that wait in the same room with it (another long-poll, of its steps) too; a new long-poll
    of the run afterwards is a plain 404."""
    await kit.apply(GATED)
    run = await kit.launch("gated")
    await kit.wait_step(run["id"], "gate", "RUNNING")
    path = f"/api/v1/runs/{run['id']}"
    r = await live.post(f"{path}/steps/gate/signal", json={})
    assert r.status_code == 200, r.text
    await kit.wait(run["id"])
    tags = {p: (await live.get(p)).headers["etag"] for p in (path, f"{path}/steps")}
    polls = [
        timed(live.get(p, params={"wait": "30s"}, headers={"If-None-Match": tag}))
        for p, tag in tags.items()
    ]
    await asyncio.sleep(0.3)
    assert not any(p.done() for p in polls)
    started = time.monotonic()
    r = await live.delete(path)
    assert r.status_code in (200, 204), r.text
    for poll in polls:
        answer, answered = await poll
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "run_not_found"
        assert answered - started < 10  # woken, or the room's recheck: not the 30 s wait
    again = await live.get(path, params={"wait": "30s"}, headers={"If-None-Match": tags[path]})
    assert again.status_code == 404
