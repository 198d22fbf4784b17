"""Prefect 3 on the bench's workload: a flow of three no-op tasks, against a local Prefect
server (``prefect server start``, its own SQLite database in a temporary ``PREFECT_HOME``).

Run with the interpreter of the peer's own virtualenv (``bench/.peers/prefect``). Flows run in
this process, reporting to the server through its API, as a flow called from Python does:

1. latency: the flow called one run after another, from the call to its answer;
2. throughput: ``--runs`` flow runs at once (async flow and tasks, ``--in-flight`` at a time
   in one event loop), from the first call to the last answer.

    bench/.peers/prefect/bin/python bench/peers/prefect_peer.py [--runs 100] [--repeat 3]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.peers import shared

IN_FLIGHT = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = (home / "server.log").open("wb")
    prefect = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (home / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the Prefect server did not start: {tail}")
            time.sleep(0.5)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def main() -> int:
    opts = shared.options(__doc__.split("\n\n")[0])
    with tempfile.TemporaryDirectory(prefix="legato-bench-prefect-") as tmp:
        home = Path(tmp)
        with prefect_server(home) as api:
            os.environ.update(
                PREFECT_HOME=str(home),
                PREFECT_API_URL=api,
                PREFECT_LOGGING_LEVEL="WARNING",
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
            )
            from importlib.metadata import version

            from prefect import flow, task

            @task
            def noop() -> None:
                return None

            @flow
            def chain3() -> None:
                noop()
                noop()
                noop()

            @task
            async def anoop() -> None:
                return None

            @flow
            async def achain3() -> None:
                await anoop()
                await anoop()
                await anoop()

            lat = shared.latency(chain3, opts)

            async def burst() -> float:
                gate = asyncio.Semaphore(IN_FLIGHT)

                async def one() -> None:
                    async with gate:
                        await achain3()

                t0 = time.time()
                await asyncio.gather(*(one() for _ in range(opts.runs)))
                return time.time() - t0

            reps = [
                shared.throughput_rep(opts.runs, asyncio.run(burst()), in_flight=IN_FLIGHT)
                for _ in range(opts.repeat)
            ]
            shared.report(
                {
                    "version": f"Prefect {version('prefect')}, local server (SQLite)",
                    "latency": lat,
                    "throughput": shared.throughput(reps),
                }
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
