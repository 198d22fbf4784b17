"""What every peer script shares: its options and its report (stdlib only, since each peer
runs in a virtualenv of its own without the project's dependencies).

A peer script measures, like ``bench/run.py`` does for Legato, a chain of three no-op steps:

- latency: ``--latency-runs`` chains one after the other on an idle system, from the call that
  starts one to its result seen by the caller, ``--repeat`` times;
- throughput: ``--runs`` chains started at once, from the first start to the last step done;
  steps/s = 3 x runs / elapsed.

It prints one JSON object on its last line of standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stats import median_of, spread  # noqa: E402

__all__ = ["PG_BASE", "ROOT", "latency", "median_of", "options", "report", "spread", "throughput"]

STEPS_PER_RUN = 3
PG_BASE = os.environ.get("LEGATO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def options(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--runs", type=int, default=1000, help="chains in the throughput phase")
    ap.add_argument("--latency-runs", type=int, default=100, help="chains timed one by one")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of each phase")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--pg-url", default=PG_BASE, help="PostgreSQL server (no database)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    ap.add_argument("--timeout", type=float, default=600.0)
    return ap.parse_args(argv)


def latency(one: Callable[[], None], opts: argparse.Namespace) -> dict[str, Any]:
    """Times ``one()`` (start a chain and wait for its end) ``repeat`` x ``latency_runs``."""
    for _ in range(opts.warmup):
        one()
    reps = []
    for _ in range(opts.repeat):
        samples = []
        for _ in range(opts.latency_runs):
            t0 = time.perf_counter()
            one()
            samples.append((time.perf_counter() - t0) * 1000)
        reps.append({"done_ms": spread(samples), "samples": samples})
    return {
        "reps": reps,
        "done_ms": {q: median_of(r["done_ms"][q] for r in reps) for q in ("p50", "p95", "p99")},
    }


def throughput_rep(runs: int, elapsed: float, **extra: Any) -> dict[str, Any]:
    return {
        "runs": runs,
        "steps": runs * STEPS_PER_RUN,
        "elapsed_s": round(elapsed, 3),
        "steps_per_s": round(runs * STEPS_PER_RUN / elapsed, 1),
        "runs_per_s": round(runs / elapsed, 1),
        **extra,
    }


def throughput(reps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reps": reps,
        "steps_per_s": median_of(r["steps_per_s"] for r in reps),
        "runs_per_s": median_of(r["runs_per_s"] for r in reps),
    }


def report(figures: dict[str, Any]) -> None:
    sys.stdout.flush()
    print(json.dumps(figures), flush=True)
