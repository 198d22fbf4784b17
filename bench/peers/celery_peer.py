"""Celery + Redis on the same workload: a chain of three no-op tasks.

Needs ``celery`` and ``redis`` (``pip install celery redis``) and a Redis server
(``redis://127.0.0.1:6379/15`` unless told otherwise). Starts one ``celery worker`` subprocess
(prefork, one process per core), then measures like ``bench/run.py`` does for the engine:

1. latency: ``latency_runs`` chains one after the other, ``apply_async`` to the last result;
2. throughput: ``runs`` chains sent at once, timed from the first send to the last task's
   ``date_done``; every chain must have succeeded.

    python -m bench.peers.celery_peer [--runs 1000] [--latency-runs 50] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
STEPS_PER_RUN = 3


def unavailable(redis_url: str = DEFAULT_REDIS) -> str | None:
    """Why the peer cannot be measured here, or None when it can."""
    for module in ("celery", "redis"):
        if importlib.util.find_spec(module) is None:
            return f"'{module}' is not installed: pip install celery redis"
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {redis_url}: {exc}"
    return None


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
        cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log
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


def measure(
    runs: int = 1000,
    latency_runs: int = 50,
    concurrency: int = 2,
    redis_url: str = DEFAULT_REDIS,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """The figures, as a dict (``elapsed_s``, ``latency_ms``, ``succeeded``, ...)."""
    queue = f"legato-bench-{os.getpid()}"
    os.environ["LEGATO_BENCH_REDIS"] = redis_url
    os.environ["LEGATO_BENCH_QUEUE"] = queue
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    import redis
    from celery import chain

    celery_app = importlib.import_module("bench.peers.celery_app")
    noop = celery_app.noop

    def send() -> Any:
        return chain(noop.si(), noop.si(), noop.si()).apply_async()

    info = redis.Redis.from_url(redis_url).info("server")
    import celery

    figures: dict[str, Any] = {
        "server": f"Celery {celery.__version__} prefork x{concurrency}, "
        f"Redis {info.get('redis_version', '?')}",
    }
    with celery_worker(concurrency, env):
        for _ in range(3):  # also waits for the worker to come up
            send().get(timeout=60)
        latency = []
        for _ in range(latency_runs):
            t0 = time.perf_counter()
            send().get(timeout=timeout)
            latency.append((time.perf_counter() - t0) * 1000)
        t0 = time.time()
        results = [send() for _ in range(runs)]
        accept = time.time() - t0
        for r in results:
            r.get(timeout=timeout, propagate=False)
        wall = time.time() - t0
        done = [_timestamp(r.date_done) for r in results]
        succeeded = sum(1 for r in results if r.state == "SUCCESS")
        for r in results:
            r.forget()
    last = max((d for d in done if d is not None), default=t0 + wall)
    figures.update(
        runs=runs,
        elapsed_s=last - t0,
        accept_s=accept,
        wall_s=wall,
        latency_ms=latency,
        succeeded=succeeded,
    )
    if succeeded != runs:
        raise RuntimeError(f"only {succeeded} of {runs} chains succeeded")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="celery_peer", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--latency-runs", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS)
    opts = ap.parse_args(argv)
    missing = unavailable(opts.redis_url)
    if missing:
        print(f"not measured: {missing}", file=sys.stderr)
        return 1
    figures = measure(opts.runs, opts.latency_runs, opts.concurrency, opts.redis_url)
    from bench.common import percentiles

    p50, p95 = percentiles(figures["latency_ms"])
    elapsed = figures["elapsed_s"]
    print(
        json.dumps(
            {
                "steps_per_s": round(opts.runs * STEPS_PER_RUN / elapsed, 1),
                "runs_per_s": round(opts.runs / elapsed, 1),
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "elapsed_s": round(elapsed, 3),
                "server": figures["server"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
