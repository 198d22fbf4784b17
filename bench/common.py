"""What both benches share: figures, machine load, progress messages, the server's version."""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
from collections.abc import Sequence

from legato.runtime import Legato
from legato.settings import Settings

__all__ = ["SETTINGS", "BenchError", "load_average", "percentiles", "say", "server_version"]

#: The installation the bench runs: its workflows call ``bench.steps``.
SETTINGS = Settings(step_modules=("bench.steps",))


class BenchError(RuntimeError):
    pass


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 (inclusive method: interpolated between the samples)."""
    if len(samples) == 1:
        return samples[0], samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[94]


def load_average() -> float:
    """The 1-minute load average: other busy processes make the figures noisy."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def server_version(app: Legato) -> str:
    if app.db.is_sqlite:
        return f"SQLite {sqlite3.sqlite_version}"
    async with app.db.read() as conn:
        version = (await conn.exec_driver_sql("SHOW server_version")).scalar_one()
    return f"PostgreSQL {str(version).split()[0]}"
