"""The physical limit beside each store: how many single-row commits the store itself takes.

- SQLite: one connection in WAL mode updating one row and committing, in a loop, for
  ``seconds``, with ``synchronous=NORMAL`` and with ``synchronous=FULL`` (Legato's default is
  NORMAL; ``LEGATO_SQLITE_SYNCHRONOUS`` chooses), on the same disk as the bench's database.
- PostgreSQL: ``pgbench`` with its built-in "simple update" script (``-N``: one UPDATE, one
  SELECT and one INSERT per transaction) on a database of its own on the same server, with one
  client and with ``clients`` clients.
"""

from __future__ import annotations

import glob
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import BenchError

PGBENCH_DB = "legato_bench_pgbench"


def sqlite_commits(path: Path, synchronous: str, seconds: float) -> float:
    """Single-row commits per second."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        conn.execute("INSERT INTO t VALUES (1, 0)")
        n, t0 = 0, time.perf_counter()
        deadline = t0 + seconds
        while True:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            conn.execute("COMMIT")
            n += 1
            if n % 64 == 0 and time.perf_counter() >= deadline:
                break
        return n / (time.perf_counter() - t0)
    finally:
        conn.close()


def sqlite_limit(workdir: Path, seconds: float) -> dict[str, Any]:
    return {
        "version": sqlite3.sqlite_version,
        "commits_per_s": {
            mode: round(sqlite_commits(workdir / "limit.db", mode, seconds))
            for mode in ("NORMAL", "FULL")
        },
    }


def pgbench_binary() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def pg_limit(base: str, clients: int, seconds: int) -> dict[str, Any]:
    exe = pgbench_binary()
    if exe is None:
        raise BenchError("pgbench is not installed (Debian: postgresql-contrib)")
    parts = urlsplit(base)
    conn = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]
    env = None
    if parts.password:
        import os

        env = {**os.environ, "PGPASSWORD": parts.password}

    def run(args: list[str], timeout: float) -> str:
        done = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"pgbench {' '.join(args[:2])}: {done.stderr.strip()[-300:]}")
        return done.stdout

    import asyncio

    from bench.engine import recreate_pg

    asyncio.run(recreate_pg(base, PGBENCH_DB))
    try:
        run([*conn, "-i", "-q", "-s", "1", PGBENCH_DB], 300)
        out: dict[str, Any] = {"tps": {}}
        for c in sorted({1, clients}):
            text = run(
                [*conn, "-N", "-c", str(c), "-j", str(min(c, 2)), "-T", str(seconds), PGBENCH_DB],
                seconds + 120,
            )
            m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
            if not m:
                raise BenchError(f"pgbench printed no tps: {text[-300:]}")
            out["tps"][str(c)] = round(float(m.group(1)))
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        out["pgbench"] = version.stdout.strip()
        return out
    finally:
        asyncio.run(recreate_pg(base, PGBENCH_DB, drop_only=True))
