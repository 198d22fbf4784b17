"""DBOS Transact on the bench's workload: a workflow of three no-op steps, its system
database on the same PostgreSQL server as Legato's (database ``legato_bench_dbos``, dropped
and created again).

Run with the interpreter of the peer's own virtualenv (``bench/.peers/dbos``):

1. latency: the workflow called one run after another (DBOS runs it in the calling process,
   checkpointing each step in PostgreSQL), from the call to its answer;
2. throughput: ``--runs`` workflows started at once with ``DBOS.start_workflow`` (DBOS runs
   them on its threads), from the first start to the last result.

    bench/.peers/dbos/bin/python bench/peers/dbos_peer.py [--runs 1000] [--repeat 3]
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.peers import shared

DATABASE = "legato_bench_dbos"


def recreate(base: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def main() -> int:
    opts = shared.options(__doc__.split("\n\n")[0])
    recreate(opts.pg_url)
    from importlib.metadata import version

    from dbos import DBOS

    DBOS(
        config={
            "name": "legato-bench-peer",
            "system_database_url": f"{opts.pg_url}/{DATABASE}",
            "log_level": "WARNING",
        }
    )
    logging.getLogger("dbos").setLevel(logging.WARNING)

    @DBOS.step()
    def noop() -> None:
        return None

    @DBOS.workflow()
    def chain3() -> None:
        noop()
        noop()
        noop()

    DBOS.launch()
    try:
        lat = shared.latency(chain3, opts)
        reps = []
        for _ in range(opts.repeat):
            t0 = time.time()
            handles = [DBOS.start_workflow(chain3) for _ in range(opts.runs)]
            accept = time.time() - t0
            for h in handles:
                h.get_result()
            reps.append(
                shared.throughput_rep(opts.runs, time.time() - t0, accept_s=round(accept, 3))
            )
    finally:
        DBOS.destroy()
    shared.report(
        {
            "version": f"DBOS Transact {version('dbos')}, PostgreSQL system database",
            "latency": lat,
            "throughput": shared.throughput(reps),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
