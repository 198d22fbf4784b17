"""Schedules at scale: 10,000 schedules firing every minute, on SQLite and PostgreSQL.

    python bench/schedules.py [--schedules 10000] [--minutes 2] [--stores sqlite,postgresql]
                              [--json results.json]

Each store gets a fresh database. ``--schedules`` schedules (``* * * * *``, overlap ``allow``)
of a one-step workflow are written in one transaction, then this process runs the scheduler
alone while a ``legato worker`` process (32 slots) runs the steps. For ``--minutes`` minute
boundaries it reports:

- CPU per fire: this process's CPU time (user + system) over the fires it made, i.e. the
  scheduler's own cost (pass, fire records, run creation, bookkeeping);
- fire time -> run created: how late the scheduler made each run (p50, p99, max);
- fire time -> run started: until the worker's first claim of the run's step (p50, p99).

Nothing is asserted: the figures are printed (and written with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, update  # noqa: E402

from bench.common import SETTINGS, load_average, say, server_version  # noqa: E402
from legato.engine.firing import timing  # noqa: E402
from legato.engine.scheduler import Scheduler, SchedulerConfig  # noqa: E402
from legato.model.schedules import ScheduleSpec  # noqa: E402
from legato.runtime import Legato  # noqa: E402
from legato.store import tables  # noqa: E402
from legato.store.migrate import upgrade  # noqa: E402

ADMIN_KEY = "lg_bench_admin_key_0123456789abcdef"
PG_BASE = os.environ.get("LEGATO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = "legato_bench_schedules"
WORKFLOW = """
name: tick
steps:
  - id: only
    uses: sleep
    with: {duration: 0s}
"""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(samples: list[float], q: int) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def recreate_pg() -> str:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()
    return f"{PG_BASE}/{PG_DATABASE}"


async def fill(app: Legato, n: int) -> None:
    """``n`` schedules of workflow ``tick``, every minute, in one transaction."""
    p = await app.tenancy.authenticate(ADMIN_KEY)
    await app.workflows.apply(p, WORKFLOW)
    spec = ScheduleSpec(cron="* * * * *", overlap="allow")
    now = time.time()

    async def tx_fn(tx: Any) -> None:
        rows = [
            {
                "namespace_id": p.namespace_id,
                "name": f"s{i:05d}",
                "description": "",
                "workflow": "tick",
                "spec": spec.as_data(),
                "inputs": {},
                "labels": {},
                "paused": False,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        await tx.conn.execute(insert(tables.schedules), rows)
        ids = [r.id for r in await tx.conn.execute(select(tables.schedules.c.id))]
        for schedule_id in ids:  # each its own jitter-free next fire time
            await tx.conn.execute(
                update(tables.schedules)
                .where(tables.schedules.c.id == schedule_id)
                .values(**timing(spec, schedule_id, now))
            )

    await app.db.write(tx_fn)


def spawn_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    # the worker runs steps only: the CPU measured here is the scheduler's
    env = {
        **os.environ,
        "LEGATO_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "LEGATO_SCHEDULER": "false",
    }
    with log.open("wb") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "legato",
                "worker",
                "--database-url",
                url,
                "--concurrency",
                "32",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def measure(store: str, url: str, n: int, minutes: int, workdir: Path) -> dict[str, Any]:
    upgrade(url)
    app = Legato(url, settings=SETTINGS)
    await app.open()
    await app.tenancy.bootstrap(ADMIN_KEY)
    say(f"{store}: writing {n:,} schedules")
    await fill(app, n)
    version = await server_version(app)
    worker = spawn_worker(url, workdir / f"{store}-worker.log")
    scheduler = Scheduler(app.db, app.transitions, SchedulerConfig(batch=500))
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    first_boundary = (int(time.time()) // 60 + 1) * 60
    last_boundary = first_boundary + 60 * (minutes - 1)
    cpu_before = cpu()
    try:
        say(f"{store}: firing {minutes} minute(s), until {time.ctime(last_boundary + 50)}")
        await asyncio.sleep(max(0.0, last_boundary + 50 - time.time()))
    finally:
        stop.set()
        await task
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    cpu_used = cpu() - cpu_before
    async with app.db.read() as conn:
        r = tables.runs
        rows = list(
            await conn.execute(
                select(r.c.fire_time, r.c.created_at, r.c.started_at).where(
                    r.c.fire_time >= first_boundary, r.c.fire_time <= last_boundary
                )
            )
        )
        fires_here = (
            await conn.execute(select(func.count()).select_from(tables.schedule_fires))
        ).scalar_one()
    await app.close()
    created = [row.created_at - row.fire_time for row in rows]
    started = [row.started_at - row.fire_time for row in rows if row.started_at is not None]
    expected = n * minutes
    return {
        "store": store,
        "version": version,
        "schedules": n,
        "minutes": minutes,
        "runs": len(rows),
        "expected": expected,
        "fires_recorded": fires_here,
        "cpu_ms_per_fire": 1000 * cpu_used / max(1, len(rows)),
        "created_p50_ms": 1000 * pct(created, 50),
        "created_p99_ms": 1000 * pct(created, 99),
        "created_max_ms": 1000 * max(created, default=float("nan")),
        "started_p50_ms": 1000 * pct(started, 50),
        "started_p99_ms": 1000 * pct(started, 99),
        "started": len(started),
        "load": load_average(),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for store in args.stores.split(","):
            url = (
                f"sqlite:///{workdir / 'schedules.db'}"
                if store == "sqlite"
                else await recreate_pg()
            )
            results.append(await measure(store, url, args.schedules, args.minutes, workdir))
    header = (
        f"{'store':<11} {'runs':>7} {'expected':>8} {'CPU/fire ms':>11} "
        f"{'created p50':>11} {'p99':>8} {'max':>8} {'started p50':>11} {'p99':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r['store']:<11} {r['runs']:>7,} {r['expected']:>8,} {r['cpu_ms_per_fire']:>11.3f} "
            f"{r['created_p50_ms']:>11.0f} {r['created_p99_ms']:>8.0f} {r['created_max_ms']:>8.0f} "
            f"{r['started_p50_ms']:>11.0f} {r['started_p99_ms']:>8.0f}"
        )
    print(f"(delays in ms from the fire time; load average {results[-1]['load']:.1f})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
