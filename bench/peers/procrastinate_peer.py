"""procrastinate on the bench's workload: three no-op tasks, each deferring the next, in a
database of its own on the same PostgreSQL server as Legato's (``legato_bench_procrastinate``,
dropped and created again, procrastinate's schema applied).

Run with the interpreter of the peer's own virtualenv (``bench/.peers/procrastinate``). The
worker (``--concurrency`` jobs at once, woken by LISTEN/NOTIFY) runs as a task of the same event
loop as the client, as Legato's engine does in ``bench/run.py``; the last task of a chain tells
the client it is done.

1. latency: chains one after the other, from deferring the first task to the third done;
2. throughput: ``--runs`` chains deferred at once, from the first defer to the last task done.

    bench/.peers/procrastinate/bin/python bench/peers/procrastinate_peer.py [--runs 1000]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.peers import shared

DATABASE = "legato_bench_procrastinate"


def recreate(base: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


async def measure(opts: Any) -> dict[str, Any]:
    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=f"{opts.pg_url}/{DATABASE}")
    )
    waiting: dict[int, asyncio.Future[float]] = {}

    @app.task(name="bench_a")
    async def a(chain: int) -> None:
        await b.defer_async(chain=chain)

    @app.task(name="bench_b")
    async def b(chain: int) -> None:
        await c.defer_async(chain=chain)

    @app.task(name="bench_c")
    async def c(chain: int) -> None:
        fut = waiting.pop(chain, None)
        if fut is not None and not fut.done():
            fut.set_result(time.time())

    loop = asyncio.get_running_loop()
    counter = iter(range(1 << 62))

    async def one() -> None:
        chain = next(counter)
        fut = waiting[chain] = loop.create_future()
        await a.defer_async(chain=chain)
        await asyncio.wait_for(fut, opts.timeout)

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        worker = asyncio.create_task(
            app.run_worker_async(concurrency=opts.concurrency, install_signal_handlers=False)
        )
        try:
            for _ in range(opts.warmup):
                await one()
            lat_reps = []
            for _ in range(opts.repeat):
                samples = []
                for _ in range(opts.latency_runs):
                    t0 = time.perf_counter()
                    await one()
                    samples.append((time.perf_counter() - t0) * 1000)
                lat_reps.append({"done_ms": shared.spread(samples), "samples": samples})
            reps = []
            for _ in range(opts.repeat):
                chains = [next(counter) for _ in range(opts.runs)]
                futs = [waiting.setdefault(ch, loop.create_future()) for ch in chains]
                t0 = time.time()
                await a.batch_defer_async(*({"chain": ch} for ch in chains))
                accept = time.time() - t0
                ends = await asyncio.wait_for(asyncio.gather(*futs), opts.timeout)
                reps.append(
                    shared.throughput_rep(opts.runs, max(ends) - t0, accept_s=round(accept, 3))
                )
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
    return {
        "latency": {
            "reps": lat_reps,
            "done_ms": {
                q: shared.median_of(r["done_ms"][q] for r in lat_reps)
                for q in ("p50", "p95", "p99")
            },
        },
        "throughput": shared.throughput(reps),
    }


def main() -> int:
    opts = shared.options(__doc__.split("\n\n")[0])
    recreate(opts.pg_url)
    from importlib.metadata import version

    figures = asyncio.run(measure(opts))
    figures["version"] = (
        f"procrastinate {version('procrastinate')}, worker concurrency {opts.concurrency}"
    )
    shared.report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
