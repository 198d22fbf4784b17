"""Throughput and idle latency of the engine, in one process, on SQLite and PostgreSQL.

    python bench/run.py [--runs 1000] [--latency-runs 50] [--stores sqlite,postgresql]
                        [--workers 1] [--concurrency 32] [--start-concurrency 16]
                        [--json results.json] [--no-peers]

Each store gets a fresh database (a new SQLite file; a PostgreSQL database dropped and created
again), migrated, with an admin key and the workflow ``bench-noop``: three sequential
``uses: python`` steps calling :func:`bench.steps.noop`. The engine (workers and reaper) runs as
tasks of the same event loop as the service calls that start and read the runs: no HTTP.

1. Idle latency: ``--latency-runs`` runs one after the other; each is timed from the call to
   ``runs.start`` until ``runs.get`` answers SUCCEEDED, woken by ``runs.wait_for_change``.
2. Throughput: ``--runs`` runs started at once (``--start-concurrency`` start calls in flight),
   timed from the first start to the last ``finished_at``; every run must have SUCCEEDED.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.common import (  # noqa: E402
    SETTINGS,
    BenchError,
    load_average,
    percentiles,
    say,
    server_version,
)
from legato.engine.worker import WorkerConfig  # noqa: E402
from legato.model.states import RUN_TERMINAL  # noqa: E402
from legato.runtime import Legato  # noqa: E402
from legato.service.principal import Principal  # noqa: E402
from legato.service.runs import StartRun  # noqa: E402
from legato.store import tables  # noqa: E402
from legato.store.migrate import upgrade  # noqa: E402

ADMIN_KEY = "lg_bench_admin_key_0123456789abcdef"
WORKFLOW_NAME = "bench-noop"
STEPS_PER_RUN = 3
WORKFLOW = f"""
name: {WORKFLOW_NAME}
description: three sequential no-op Python steps
steps:
  - id: a
    uses: python
    with: {{function: "bench.steps:noop"}}
  - id: b
    needs: [a]
    uses: python
    with: {{function: "bench.steps:noop"}}
  - id: c
    needs: [b]
    uses: python
    with: {{function: "bench.steps:noop"}}
"""
PG_BASE = os.environ.get("LEGATO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = "legato_bench"

# Figures measured earlier on this machine (2 cores) with the same workload.
REFERENCE_PEERS = [
    ("Celery+Redis", "~355 steps/s, 11 ms p50"),
    ("DBOS+PostgreSQL", "~300 steps/s, 19 ms"),
    ("Prefect local", "~3 steps/s, 1.1 s"),
]


@dataclass
class Result:
    """One row of the table: a store of the engine, or a peer."""

    name: str
    runs: int = 0
    elapsed_s: float = 0.0
    steps_per_s: float = 0.0
    runs_per_s: float = 0.0
    accept_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    succeeded: int = 0
    steps_succeeded: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    server: str = ""
    load_before: float = 0.0
    skipped: str | None = None

    def summarize(self) -> None:
        if self.elapsed_s > 0:
            self.steps_per_s = self.runs * STEPS_PER_RUN / self.elapsed_s
            self.runs_per_s = self.runs / self.elapsed_s
        if self.latency_ms:
            self.p50_ms, self.p95_ms = percentiles(self.latency_ms)


# -- stores ------------------------------------------------------------------------------


def fresh_sqlite(workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'legato-bench.db'}"
    upgrade(url)
    return url


def fresh_postgresql(base: str) -> str:
    import asyncpg

    async def recreate() -> None:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    url = f"{base}/{PG_DATABASE}"
    upgrade(url)
    return url


# -- measuring ---------------------------------------------------------------------------


async def wait_finished(app: Legato, p: Principal, run_id: int, timeout: float) -> str:
    """The run's final status; woken by ``wait_for_change`` rather than by polling."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"run {run_id} did not finish within {timeout:.0f} s")
        waiter = asyncio.create_task(app.runs.wait_for_change(run_id, left))
        await asyncio.sleep(0)  # the waiter subscribes before the status is read
        run = await app.runs.get(p, run_id)
        if run["status"] in RUN_TERMINAL:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            return str(run["status"])
        await waiter


async def one_run(app: Legato, p: Principal, timeout: float) -> float:
    """Seconds from the start call to the run seen SUCCEEDED."""
    t0 = time.perf_counter()
    view, _ = await app.runs.start(p, StartRun(WORKFLOW_NAME))
    status = await wait_finished(app, p, int(view["id"]), timeout)
    elapsed = time.perf_counter() - t0
    if status != "SUCCEEDED":
        raise BenchError(f"run {view['id']} ended {status}")
    return elapsed


async def run_counts(app: Legato, lo: int, hi: int) -> tuple[dict[str, int], float | None]:
    """Runs with ids in [lo, hi] by status, and the last ``finished_at`` among them."""
    r = tables.runs.c
    stmt = (
        select(r.status, func.count(), func.max(r.finished_at))
        .where(r.id >= lo, r.id <= hi)
        .group_by(r.status)
    )
    async with app.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    last = max((row[2] for row in rows if row[2] is not None), default=None)
    return {str(row[0]): int(row[1]) for row in rows}, last


async def steps_succeeded(app: Legato, lo: int, hi: int) -> int:
    s = tables.steps.c
    stmt = (
        select(func.count())
        .select_from(tables.steps)
        .where(s.run_id >= lo, s.run_id <= hi, s.status == "SUCCEEDED")
    )
    async with app.db.read() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def burst(
    app: Legato, p: Principal, result: Result, n: int, in_flight: int, timeout: float
) -> None:
    """Start ``n`` runs as fast as the service takes them; wait until all have ended."""
    gate = asyncio.Semaphore(in_flight)

    async def start() -> int:
        async with gate:
            view, _ = await app.runs.start(p, StartRun(WORKFLOW_NAME))
            return int(view["id"])

    cpu0, t0 = time.process_time(), time.time()
    ids = await asyncio.gather(*(start() for _ in range(n)))
    result.accept_s = time.time() - t0
    lo, hi = min(ids), max(ids)
    if hi - lo + 1 != n:
        raise BenchError(f"expected {n} consecutive run ids, got {lo}..{hi}")
    deadline = time.monotonic() + timeout
    while True:
        counts, last = await run_counts(app, lo, hi)
        ended = sum(c for status, c in counts.items() if status in RUN_TERMINAL)
        if ended >= n:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"after {timeout:.0f} s only {ended} of {n} runs ended: {counts}")
        await asyncio.sleep(0.05)
    result.wall_s = time.time() - t0
    result.cpu_s = time.process_time() - cpu0
    assert last is not None
    result.runs = n
    result.elapsed_s = last - t0
    result.succeeded = counts.get("SUCCEEDED", 0)
    result.steps_succeeded = await steps_succeeded(app, lo, hi)
    if result.succeeded != n or result.steps_succeeded != n * STEPS_PER_RUN:
        raise BenchError(
            f"{result.succeeded} of {n} runs and {result.steps_succeeded} of "
            f"{n * STEPS_PER_RUN} steps SUCCEEDED: {counts}"
        )


async def measure_store(name: str, url: str, opts: argparse.Namespace) -> Result:
    result = Result(name, load_before=load_average())
    app = Legato(url, settings=SETTINGS)
    await app.open()
    try:
        result.server = await server_version(app)
        await app.tenancy.bootstrap(ADMIN_KEY)
        p = await app.tenancy.authenticate(ADMIN_KEY)
        await app.workflows.apply(p, WORKFLOW)
        app.start_engine(workers=opts.workers, config=WorkerConfig(concurrency=opts.concurrency))
        for _ in range(opts.warmup):  # imports, caches, connection pools
            await one_run(app, p, opts.timeout)
        say(f"  {name}: latency, {opts.latency_runs} sequential runs")
        for _ in range(opts.latency_runs):
            result.latency_ms.append(await one_run(app, p, opts.timeout) * 1000)
        say(f"  {name}: throughput, {opts.runs} runs at once")
        await burst(app, p, result, opts.runs, opts.start_concurrency, opts.timeout)
    finally:
        await app.close()
    result.summarize()
    return result


def run_store(name: str, opts: argparse.Namespace, workdir: Path) -> Result:
    say(f"{name}: preparing a fresh database")
    try:
        if name == "sqlite":
            url = fresh_sqlite(workdir)
        elif name == "postgresql":
            url = fresh_postgresql(opts.pg_url)
        else:
            raise BenchError(f"unknown store {name!r}: use sqlite or postgresql")
    except OSError as exc:
        say(f"{name}: skipped ({exc})")
        return Result(name, skipped=str(exc))
    return asyncio.run(measure_store(name, url, opts))


def run_peers(opts: argparse.Namespace) -> list[Result]:
    from bench.peers import celery_peer

    missing = celery_peer.unavailable(opts.redis_url)
    if missing:
        say(f"celery peer: not measured ({missing})")
        return []
    say("celery+redis: measuring")
    load = load_average()
    figures = celery_peer.measure(
        runs=opts.runs,
        latency_runs=opts.latency_runs,
        concurrency=opts.peer_concurrency,
        redis_url=opts.redis_url,
        timeout=opts.timeout,
    )
    result = Result(
        "celery+redis",
        runs=int(figures["runs"]),
        elapsed_s=float(figures["elapsed_s"]),
        accept_s=float(figures["accept_s"]),
        wall_s=float(figures["wall_s"]),
        latency_ms=[float(x) for x in figures["latency_ms"]],
        succeeded=int(figures["succeeded"]),
        steps_succeeded=int(figures["succeeded"]) * STEPS_PER_RUN,
        server=str(figures["server"]),
        load_before=load,
    )
    result.summarize()
    return [result]


# -- output ------------------------------------------------------------------------------

HEADERS = ("store", "throughput (steps/s)", "runs/s", "latency p50 (ms)", "p95 (ms)")


def table(results: list[Result], peers: list[Result]) -> str:
    width = max(12, *(len(r.name) + 2 for r in [*results, *peers]))
    head = HEADERS[0].ljust(width) + "   ".join(HEADERS[1:])
    cols = [len(h) for h in HEADERS[1:]]
    lines = [head]
    for r in [*results, *peers]:
        if r.skipped:
            lines.append(r.name.ljust(width) + f"skipped: {r.skipped}")
            continue
        cells = [
            f"{r.steps_per_s:.0f}",
            f"{r.runs_per_s:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
        ]
        lines.append(
            r.name.ljust(width) + "   ".join(c.rjust(w) for c, w in zip(cells, cols, strict=True))
        )
    measured = {r.name for r in peers}
    others = [
        f"{n} {f}"
        for n, f in REFERENCE_PEERS
        if not (n == "Celery+Redis" and "celery+redis" in measured)
    ]
    label = "(reference figures)" if peers else "(reference, not measured here)"
    lines.append(f"peers (this machine, same workflow): {'; '.join(others)}   {label}")
    return "\n".join(lines)


def details(results: list[Result], peers: list[Result]) -> str:
    lines = []
    for r in [*results, *peers]:
        if r.skipped:
            continue
        cpu = ""
        if r.cpu_s:
            per_step = 1000 * r.cpu_s / (r.runs * STEPS_PER_RUN)
            cpu = f"bench process CPU {r.cpu_s:.1f} s ({per_step:.1f} ms per step); "
        lines.append(
            f"{r.name}: {r.server}; {r.runs} runs accepted in {r.accept_s:.2f} s "
            f"({r.runs / r.accept_s:.0f}/s), last finished after {r.elapsed_s:.2f} s; "
            f"{r.succeeded} runs / {r.steps_succeeded} steps SUCCEEDED; {cpu}"
            f"load average at its start {r.load_before:.1f}"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="runs in the throughput burst")
    ap.add_argument("--latency-runs", type=int, default=50, help="sequential runs timed")
    ap.add_argument("--stores", default="sqlite,postgresql", help="comma-separated")
    ap.add_argument("--workers", type=int, default=1, help="in-process workers")
    ap.add_argument("--concurrency", type=int, default=32, help="step slots per worker")
    ap.add_argument(
        "--start-concurrency", type=int, default=16, help="start calls in flight during the burst"
    )
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds, per phase")
    ap.add_argument("--pg-url", default=PG_BASE, help="PostgreSQL server (no database)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="for the peer")
    ap.add_argument(
        "--peer-concurrency", type=int, default=os.cpu_count() or 2, help="celery worker processes"
    )
    ap.add_argument("--no-peers", action="store_true", help="skip measuring Celery+Redis")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started, load_at_start = time.perf_counter(), load_average()
    results: list[Result] = []
    workdir = Path(tempfile.mkdtemp(prefix="legato-bench-"))
    try:
        for name in [s.strip() for s in opts.stores.split(",") if s.strip()]:
            results.append(run_store(name, opts, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peers = [] if opts.no_peers else _guard(lambda: run_peers(opts))
    total = time.perf_counter() - started
    print(table(results, peers))
    print()
    print(details(results, peers))
    m = machine()
    print(
        f"machine: {m['cpus']} cores, {m['processor']}, Python {m['python']}; "
        f"workers={opts.workers} concurrency={opts.concurrency}; bench took {total:.0f} s"
    )
    if load_at_start > 0.5:
        print(
            f"note: the machine was busy before the bench started (1-minute load average "
            f"{load_at_start:.1f}): figures are noisy"
        )
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "machine": m,
                    "options": {k: str(v) for k, v in vars(opts).items()},
                    "results": [asdict(r) for r in results],
                    "peers": [asdict(r) for r in peers],
                    "reference_peers": dict(REFERENCE_PEERS),
                    "total_s": total,
                    "load_at_start": load_at_start,
                },
                indent=2,
            )
        )
    return 0


def _guard(fn: Callable[[], list[Result]]) -> list[Result]:
    """A failing peer must not cost the engine's figures."""
    try:
        return fn()
    except Exception as exc:
        say(f"peer measurement failed: {type(exc).__name__}: {exc}")
        return []


if __name__ == "__main__":
    raise SystemExit(main())
