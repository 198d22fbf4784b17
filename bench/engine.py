"""The engine's own figures, taken in-process (service calls, no HTTP) and with real
``legato worker`` processes: latency, throughput, cost by shape, claim latency.

Used by ``bench/run.py``; each ``measure_*`` function answers plain dicts that go into the
JSON report as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.common import SETTINGS, BenchError, load_average, say, server_version
from bench.stats import median_of, spread
from legato.engine.claims import claim
from legato.engine.worker import WorkerConfig
from legato.model.starts import StartRun
from legato.model.states import RUN_TERMINAL
from legato.runtime import Legato, settle_memory
from legato.service.principal import Principal
from legato.store import tables
from legato.store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "lg_bench_admin_key_0123456789abcdef"
LEGATO = str(Path(sys.executable).with_name("legato"))
NOOP = "bench.steps:noop"


def chain(name: str, length: int) -> str:
    """A workflow of ``length`` no-op Python steps, each needing the one before."""
    lines = [f"name: {name}", f"description: {length} sequential no-op Python steps", "steps:"]
    for i in range(length):
        needs = f", needs: [s{i - 1}]" if i else ""
        lines.append(f'  - {{id: s{i}, uses: python, with: {{function: "{NOOP}"}}{needs}}}')
    return "\n".join(lines) + "\n"


FOREACH = f"""
name: bench-foreach
description: one foreach step over the items given, each a no-op Python step
inputs:
  items: {{type: array}}
steps:
  - id: each
    foreach: ${{{{ inputs.items }}}}
    uses: python
    with: {{function: "{NOOP}"}}
"""

WORKFLOW = "bench-noop"  # the 3-step workflow of every headline figure
WORKFLOWS = {
    WORKFLOW: chain(WORKFLOW, 3),
    "bench-chain-30": chain("bench-chain-30", 30),
    "bench-chain-300": chain("bench-chain-300", 300),
    "bench-foreach": FOREACH,
}


# -- stores ------------------------------------------------------------------------------


def fresh_sqlite(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


def fresh_postgresql(base: str, database: str) -> str:
    asyncio.run(recreate_pg(base, database))
    url = f"{base}/{database}"
    upgrade(url)
    return url


async def recreate_pg(base: str, database: str, drop_only: bool = False) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{base}/postgres", timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


def fresh_store(store: str, opts: Any, workdir: Path, purpose: str) -> str:
    """A new, migrated database for one part of the bench."""
    if store == "sqlite":
        return fresh_sqlite(workdir / f"legato-{purpose}.db")
    if store == "postgresql":
        return fresh_postgresql(opts.pg_url, f"legato_bench_{purpose}")
    raise BenchError(f"unknown store {store!r}: use sqlite or postgresql")


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[tuple[Legato, Principal]]:
    """The app on ``url`` with the admin key and the bench's workflows; no engine yet."""
    app = Legato(url, settings=SETTINGS)
    await app.open()
    try:
        await app.tenancy.bootstrap(ADMIN_KEY)
        p = await app.tenancy.authenticate(ADMIN_KEY)
        for definition in WORKFLOWS.values():
            await app.workflows.apply(p, definition)
        yield app, p
    finally:
        await app.close()


# -- waiting and counting ----------------------------------------------------------------


async def wait_finished(app: Legato, p: Principal, run_id: int, timeout: float) -> str:
    """The run's final status; woken by ``wait_for_change`` rather than by polling, each
    look reading the run's head (what a conditional poll reads before it answers 304)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"run {run_id} did not finish within {timeout:.0f} s")
        waiter = asyncio.create_task(app.runs.wait_for_change(run_id, left))
        await asyncio.sleep(0)  # the waiter subscribes before the status is read
        head = await app.runs.reads.head(p.namespace_id, run_id)
        if head.status in RUN_TERMINAL:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            return str(head.status)
        await waiter


async def run_started_at(app: Legato, run_id: int) -> float | None:
    async with app.db.read() as conn:
        stmt = select(tables.runs.c.started_at).where(tables.runs.c.id == run_id)
        value = (await conn.execute(stmt)).scalar_one()
    return None if value is None else float(value)


async def run_counts(app: Legato, lo: int, hi: int) -> dict[str, int]:
    r = tables.runs.c
    stmt = select(r.status, func.count()).where(r.id >= lo, r.id <= hi).group_by(r.status)
    async with app.db.read() as conn:
        return {str(s): int(c) for s, c in (await conn.execute(stmt)).all()}


async def span(app: Legato, lo: int, hi: int) -> tuple[int, int, float, float, float]:
    """Steps SUCCEEDED, steps in all, first step started, last step finished, last run
    finished: of the runs with ids in [lo, hi]."""
    s = tables.steps.c
    stmt = select(
        func.count().filter(s.status == "SUCCEEDED"),
        func.count(),
        func.min(s.started_at),
        func.max(s.finished_at),
    ).where(s.run_id >= lo, s.run_id <= hi)
    r = tables.runs.c
    last_run = select(func.max(r.finished_at)).where(r.id >= lo, r.id <= hi)
    async with app.db.read() as conn:
        ok, total, first, last = (await conn.execute(stmt)).one()
        finished = (await conn.execute(last_run)).scalar_one()
    return int(ok), int(total), float(first or 0), float(last or 0), float(finished or 0)


async def any_unfinished(app: Legato, lo: int, hi: int) -> bool:
    """Whether a run with an id in [lo, hi] has not finished: runs finish about in the order
    they started, so the look stops at the first one still going (the count of them all,
    twice a second, took a few per cent of the engine's CPU)."""
    r = tables.runs.c
    stmt = select(r.id).where(r.id >= lo, r.id <= hi, r.finished_at.is_(None)).limit(1)
    async with app.db.read() as conn:
        return (await conn.execute(stmt)).first() is not None


async def wait_all(app: Legato, lo: int, hi: int, timeout: float) -> dict[str, int]:
    n = hi - lo + 1
    deadline = time.monotonic() + timeout
    while True:
        if not await any_unfinished(app, lo, hi):
            counts = await run_counts(app, lo, hi)
            if sum(c for st, c in counts.items() if st in RUN_TERMINAL) >= n:
                return counts
        if time.monotonic() > deadline:
            counts = await run_counts(app, lo, hi)
            raise BenchError(f"after {timeout:.0f} s not all of {n} runs ended: {counts}")
        # the figure is timed from the runs' own finished_at, not from this look: looking
        # less often changes nothing in it but the CPU the count takes from the engine
        await asyncio.sleep(0.5)


async def start_many(
    app: Legato, p: Principal, start: StartRun, n: int, in_flight: int
) -> tuple[int, int]:
    """Start ``n`` runs with ``in_flight`` start calls at once; their (consecutive) ids."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> int:
        async with gate:
            view, _ = await app.runs.start(p, start)
            return int(view["id"])

    ids = await asyncio.gather(*(one() for _ in range(n)))
    lo, hi = min(ids), max(ids)
    if hi - lo + 1 != n:
        raise BenchError(f"expected {n} consecutive run ids, got {lo}..{hi}")
    return lo, hi


# -- latency -----------------------------------------------------------------------------


async def one_run(app: Legato, p: Principal, timeout: float) -> tuple[float, float]:
    """Milliseconds from the start call to the run seen SUCCEEDED, and to its first step
    running (the run's ``started_at``, written by the claim)."""
    wall0, t0 = time.time(), time.perf_counter()
    view, _ = await app.runs.start(p, StartRun(WORKFLOW))
    run_id = int(view["id"])
    status = await wait_finished(app, p, run_id, timeout)
    done = (time.perf_counter() - t0) * 1000
    if status != "SUCCEEDED":
        raise BenchError(f"run {run_id} ended {status}")
    started = await run_started_at(app, run_id)
    return done, ((started or wall0) - wall0) * 1000


async def latency(app: Legato, p: Principal, opts: Any) -> dict[str, Any]:
    """``opts.repeat`` repetitions of ``opts.latency_runs`` runs one after the other."""
    reps = []
    for _ in range(opts.repeat):
        done, first = [], []
        for _ in range(opts.latency_runs):
            d, f = await one_run(app, p, opts.timeout)
            done.append(d)
            first.append(f)
        reps.append({"done_ms": spread(done), "first_step_ms": spread(first), "samples": done})
    return {"reps": reps, **summary_of_latency(reps)}


def summary_of_latency(reps: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("done_ms", "first_step_ms"):
        out[key] = {q: median_of(r[key].get(q) for r in reps) for q in ("p50", "p95", "p99")}
    return out


# -- throughput --------------------------------------------------------------------------


async def burst(
    app: Legato,
    p: Principal,
    start: StartRun,
    n: int,
    steps_per_run: int | None,
    opts: Any,
) -> dict[str, Any]:
    """Start ``n`` runs at once while the engine runs; time the first start to the last
    run's ``finished_at``. Every run and every step must have SUCCEEDED."""
    cpu0, t0 = time.process_time(), time.time()
    lo, hi = await start_many(app, p, start, n, opts.start_concurrency)
    accepted = time.time() - t0
    counts = await wait_all(app, lo, hi, opts.timeout)
    cpu = time.process_time() - cpu0
    ok, total, _first, _last, finished = await span(app, lo, hi)
    if (
        counts.get("SUCCEEDED", 0) != n
        or ok != total
        or (steps_per_run and total != n * steps_per_run)
    ):
        raise BenchError(f"{n} runs: {counts}; {ok} of {total} steps SUCCEEDED")
    elapsed = finished - t0
    return {
        "runs": n,
        "steps": total,
        "elapsed_s": round(elapsed, 3),
        "steps_per_s": round(total / elapsed, 1),
        "runs_per_s": round(n / elapsed, 1),
        "accept_s": round(accepted, 3),
        "cpu_ms_per_step": round(1000 * cpu / total, 3),
        "load_before": load_average(),
    }


async def throughput(app: Legato, p: Principal, opts: Any) -> dict[str, Any]:
    reps = []
    for i in range(opts.repeat):
        say(f"    throughput {i + 1}/{opts.repeat}: {opts.runs} runs")
        reps.append(await burst(app, p, StartRun(WORKFLOW), opts.runs, 3, opts))
    return summarize_reps(reps)


def summarize_reps(reps: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("steps_per_s", "runs_per_s", "elapsed_s", "accept_s", "cpu_ms_per_step")
    return {
        "reps": reps,
        **{k: median_of(r.get(k) for r in reps) for k in keys if any(k in r for r in reps)},
    }


async def shapes(app: Legato, p: Principal, opts: Any) -> dict[str, Any]:
    """Steps/s for chains of 3, 30 and 300 steps (the same number of steps in each) and one
    foreach of ``opts.foreach_items`` items."""
    out: dict[str, Any] = {}
    for length in (3, 30, 300):
        runs = max(1, opts.shape_steps // length)
        name = WORKFLOW if length == 3 else f"bench-chain-{length}"
        say(f"    shape: {runs} runs of {length} steps")
        out[f"chain-{length}"] = await burst(app, p, StartRun(name), runs, length, opts)
    items = list(range(opts.foreach_items))
    say(f"    shape: one foreach of {len(items)} items")
    one = await burst(app, p, StartRun("bench-foreach", inputs={"items": items}), 1, None, opts)
    one["items_per_s"] = round(len(items) / one["elapsed_s"], 1)
    out[f"foreach-{len(items)}"] = one
    return out


async def in_process(store: str, url: str, opts: Any) -> dict[str, Any]:
    """Latency, throughput and shapes with the engine in the bench's own process."""
    async with opened(url) as (app, p):
        out: dict[str, Any] = {"server": await server_version(app), "load_before": load_average()}
        app.start_engine(workers=1, config=WorkerConfig(concurrency=opts.concurrency))
        for _ in range(opts.warmup):
            await one_run(app, p, opts.timeout)
        settle_memory()  # as `legato serve` and `legato worker` do once started
        say(f"  {store}: latency, {opts.repeat} x {opts.latency_runs} runs one after the other")
        out["latency"] = await latency(app, p, opts)
        out["throughput"] = await throughput(app, p, opts)
        if not opts.skip_shapes:
            out["shapes"] = await shapes(app, p, opts)
    return out


# -- worker processes --------------------------------------------------------------------


@contextlib.contextmanager
def worker_processes(url: str, count: int, concurrency: int, logdir: Path) -> Iterator[list[Any]]:
    env = {
        **os.environ,
        "LEGATO_STEP_MODULES": "bench.steps",
        "PYTHONPATH": str(ROOT),
        "LEGATO_LOG_LEVEL": "WARNING",
    }
    procs = []
    logs = []
    try:
        for i in range(count):
            log = (logdir / f"worker-{i}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [LEGATO, "worker", "--database-url", url, "--concurrency", str(concurrency)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            )
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in logs:
            log.close()


async def drain(
    app: Legato, p: Principal, url: str, workers: int, opts: Any, logdir: Path
) -> dict[str, Any]:
    """``opts.runs`` runs queued first (no worker running), then ``workers`` ``legato
    worker`` processes drain them: steps / (first step started → last run finished)."""
    lo, hi = await start_many(app, p, StartRun(WORKFLOW), opts.runs, opts.start_concurrency)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with worker_processes(url, workers, opts.concurrency, logdir) as procs:
        counts = await wait_all(app, lo, hi, opts.timeout)
        dead = [pr.returncode for pr in procs if pr.poll() is not None]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ok, total, first, _last, finished = await span(app, lo, hi)
    if counts.get("SUCCEEDED", 0) != opts.runs or ok != total or total != 3 * opts.runs:
        raise BenchError(f"{opts.runs} runs: {counts}; {ok} of {total} steps SUCCEEDED")
    if dead:
        raise BenchError(f"a worker process exited early ({dead}); see {logdir}")
    elapsed = finished - first
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "runs": opts.runs,
        "steps": total,
        "elapsed_s": round(elapsed, 3),
        "steps_per_s": round(total / elapsed, 1),
        "runs_per_s": round(opts.runs / elapsed, 1),
        "cpu_ms_per_step": round(1000 * cpu / total, 3),  # the worker processes, start-up too
        "load_before": load_average(),
    }


async def with_workers(url: str, opts: Any, logdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with opened(url) as (app, p):
        for count in opts.worker_processes:
            reps = []
            for i in range(opts.repeat):
                say(f"    {count} worker process(es), {i + 1}/{opts.repeat}: {opts.runs} runs")
                reps.append(await drain(app, p, url, count, opts, logdir))
            out[str(count)] = summarize_reps(reps)
    return out


# -- claim latency with a backlog --------------------------------------------------------


@dataclass
class Template:
    run: dict[str, Any]
    steps: list[dict[str, Any]]


async def template_run(app: Legato, p: Principal) -> Template:
    view, _ = await app.runs.start(p, StartRun(WORKFLOW))
    rid = int(view["id"])
    async with app.db.read() as conn:
        run = dict(
            (await conn.execute(select(tables.runs).where(tables.runs.c.id == rid))).one()._mapping
        )
        steps = [
            dict(r._mapping)
            for r in await conn.execute(
                select(tables.steps).where(tables.steps.c.run_id == rid).order_by(tables.steps.c.id)
            )
        ]
    return Template(run, steps)


async def add_backlog(app: Legato, tpl: Template, count: int, chunk: int = 5000) -> None:
    """``count`` more queued runs, copies of the template (first step READY, the others
    PENDING), written straight into the tables."""
    async with app.db.read() as conn:
        next_run = int((await conn.execute(select(func.max(tables.runs.c.id)))).scalar_one()) + 1
        next_step = int((await conn.execute(select(func.max(tables.steps.c.id)))).scalar_one()) + 1
    now = time.time()
    done = 0
    while done < count:
        n = min(chunk, count - done)
        runs, steps = [], []
        for _ in range(n):
            rid = next_run
            next_run += 1
            runs.append(
                {
                    **tpl.run,
                    "id": rid,
                    "uuid": str(uuid.uuid4()),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for s in tpl.steps:
                steps.append({**s, "id": next_step, "run_id": rid, "created_at": now})
                next_step += 1

        async def write(
            tx: Any, runs: list[dict[str, Any]] = runs, steps: list[dict[str, Any]] = steps
        ) -> None:
            await tx.conn.execute(insert(tables.runs), runs)
            await tx.conn.execute(insert(tables.steps), steps)

        await app.db.write(write)
        done += n
    if not app.db.is_sqlite:

        async def bump(tx: Any) -> None:
            for table in ("runs", "steps"):
                await tx.conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT max(id) FROM {table}))"
                    )
                )

        await app.db.write(bump)
        async with app.db.read() as conn:
            await conn.execute(text("ANALYZE runs"))
            await conn.execute(text("ANALYZE steps"))


async def claim_latency(url: str, opts: Any) -> dict[str, Any]:
    """The claim statement (``legato.engine.claims.claim``, one step) timed with 0, 10,000 and
    100,000 queued runs in the store; no engine runs, so the bench's claims are the only ones.
    Before each timed claim one run is started, so the backlog stays the same size."""
    out: dict[str, Any] = {}
    async with opened(url) as (app, p):
        tpl = await template_run(app, p)
        await claim(app.db, "bench-claimer", 1, 600.0)  # takes the template's first step
        queued = 0
        for level in opts.backlogs:
            if level > queued:
                say(f"    claim: filling the store to {level:,} queued runs")
                t0 = time.perf_counter()
                await add_backlog(app, tpl, level - queued)
                say(f"      ({time.perf_counter() - t0:.1f} s)")
                queued = level
            samples = []
            for i in range(opts.claim_samples + 5):  # the first five untimed
                await app.runs.start(p, StartRun(WORKFLOW))
                t0 = time.perf_counter()
                got = await claim(app.db, "bench-claimer", 1, 600.0)
                if i >= 5:
                    samples.append((time.perf_counter() - t0) * 1000)
                if len(got) != 1:
                    raise BenchError(f"a claim with {level} queued runs took {len(got)} steps")
            out[str(level)] = {"queued_runs": level, "claim_ms": spread(samples)}
    return out
