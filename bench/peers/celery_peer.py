"""Celery + Redis on the bench's workload: a chain of three no-op tasks.

Run with the interpreter of the peer's own virtualenv (``bench/.peers/celery``, made by
``bench/run.py``): it starts one ``celery worker`` subprocess (prefork, ``--concurrency``
processes) with Redis as broker and result backend, then

1. latency: chains one after the other, ``apply_async`` to the last task's result;
2. throughput: ``--runs`` chains sent at once, timed from the first send to the last task's
   ``date_done``; every chain must have succeeded.

    bench/.peers/celery/bin/python bench/peers/celery_peer.py [--runs 1000] [--repeat 3]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.peers import shared


@contextlib.contextmanager
def celery_worker(concurrency: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A ``celery worker`` subprocess for the duration of the block."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "--quiet",
        "-A",
        "bench.peers.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        f"legato-bench-{os.getpid()}@%h",
    ]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        cmd, cwd=shared.ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        yield proc
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        raise
    finally:
        proc.send_signal(signal.SIGTERM)  # warm shutdown: the pool's children exit with it
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this function started
            proc.wait(5)
        log.close()


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def main() -> int:
    opts = shared.options(__doc__.split("\n\n")[0])
    os.environ["LEGATO_BENCH_REDIS"] = opts.redis_url
    os.environ["LEGATO_BENCH_QUEUE"] = f"legato-bench-{os.getpid()}"
    env = {**os.environ, "PYTHONPATH": str(shared.ROOT)}
    import celery
    import redis
    from celery import chain

    from bench.peers import celery_app

    noop = celery_app.noop
    info = redis.Redis.from_url(opts.redis_url).info("server")

    def send() -> Any:
        return chain(noop.si(), noop.si(), noop.si()).apply_async()

    with celery_worker(opts.concurrency, env):
        send().get(timeout=60)  # waits for the worker to come up
        lat = shared.latency(lambda: send().get(timeout=opts.timeout), opts)
        reps = []
        for _ in range(opts.repeat):
            t0 = time.time()
            results = [send() for _ in range(opts.runs)]
            accept = time.time() - t0
            for r in results:
                r.get(timeout=opts.timeout, propagate=False)
            done = [_timestamp(r.date_done) for r in results]
            succeeded = sum(1 for r in results if r.state == "SUCCESS")
            for r in results:
                r.forget()
            if succeeded != opts.runs:
                raise RuntimeError(f"only {succeeded} of {opts.runs} chains succeeded")
            last = max(d for d in done if d is not None)
            reps.append(shared.throughput_rep(opts.runs, last - t0, accept_s=round(accept, 3)))
    shared.report(
        {
            "version": f"Celery {celery.__version__} prefork x{opts.concurrency}, "
            f"Redis {info.get('redis_version', '?')}",
            "latency": lat,
            "throughput": shared.throughput(reps),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
