"""Starts through HTTP: ``POST /api/v1/runs`` against one real ``legato serve``.

``wrk`` (64 connections by default, a Lua script posting the 3-step workflow) gives the
answers per second and their p50/p99; the server's own worker runs the runs meanwhile, as in
production. Then, on the quiet server, a Python client posts runs one at a time and the time
from each 201 to the run's first step running (its ``started_at`` in the database) is taken.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench import reads
from bench.common import BenchError, load_average, say
from bench.engine import WORKFLOW, WORKFLOWS, run_started_at
from bench.stats import median_of, spread
from legato.model.states import RUN_TERMINAL
from legato.runtime import Legato
from legato.store import tables

ADMIN_KEY = reads.ADMIN_KEY


def post_request() -> tuple[str, str, dict[str, str], str]:
    headers = {**reads.auth(), "Content-Type": "application/json"}
    return ("POST", "/api/v1/runs", headers, json.dumps({"workflow": WORKFLOW}))


def first_step_after_201(base: str, url: str, samples: int) -> dict[str, float]:
    """Milliseconds from each 201 (as the client has it) to the run's first step running."""
    delays = []
    with httpx.Client(base_url=base, headers=reads.auth(), timeout=30) as client:
        ids = []
        for _ in range(samples):
            r = client.post("/api/v1/runs", json={"workflow": WORKFLOW})
            answered = time.time()
            if r.status_code != 201:
                raise BenchError(f"POST /api/v1/runs answered {r.status_code}: {r.text[:200]}")
            ids.append((int(r.json()["id"]), answered))
            time.sleep(0.05)  # idle between runs: each starts on a quiet worker

    async def read() -> None:
        app = Legato(url)
        try:
            for run_id, answered in ids:
                deadline = time.monotonic() + 30
                while (started := await run_started_at(app, run_id)) is None:
                    if time.monotonic() > deadline:
                        raise BenchError(f"run {run_id} did not start within 30 s")
                    await asyncio.sleep(0.05)
                delays.append((started - answered) * 1000)
        finally:
            await app.db.close()

    asyncio.run(read())
    return spread(delays)


def measure(store: str, url: str, opts: Any, workdir: Path) -> dict[str, Any]:
    """One ``legato serve`` on ``url`` (a fresh database); wrk's POSTs, then the 201 → first
    step delay."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    port = reads.free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"connections": opts.http_connections, "seconds": opts.http_seconds}
    args = ["serve", "--no-examples", "--database-url", url, "--host", "127.0.0.1"]
    with reads.server(args, url, port, workdir):
        with httpx.Client(base_url=base, headers=reads.auth(), timeout=30) as client:
            r = client.put(
                f"/api/v1/workflows/{WORKFLOW}",
                content=WORKFLOWS[WORKFLOW],
                headers={"Content-Type": "application/yaml"},
            )
            if r.status_code not in (200, 201):
                raise BenchError(f"applying the workflow answered {r.status_code}: {r.text[:200]}")
            for _ in range(3):  # warm-up
                client.post("/api/v1/runs", json={"workflow": WORKFLOW}).raise_for_status()
        reps = []
        wrk_opts = type(
            "W", (), {"connections": opts.http_connections, "seconds": opts.http_seconds}
        )
        for i in range(opts.repeat):
            say(
                f"    wrk {i + 1}/{opts.repeat}: POST /api/v1/runs, "
                f"{opts.http_connections} connections"
            )
            fig = reads.wrk(base, [post_request()], wrk_opts)
            reps.append(
                {
                    "answers_per_s": fig.rate,
                    "p50_ms": fig.p50_ms,
                    "p99_ms": fig.p99_ms,
                    "errors": fig.errors,
                    "load_before": load_average(),
                }
            )
            time.sleep(2)
        out["reps"] = reps
        for k in ("answers_per_s", "p50_ms", "p99_ms"):
            out[k] = median_of(r[k] for r in reps)
        out["errors"] = sum(r["errors"] for r in reps)
        settle(url)
        say(f"    {opts.http_first_samples} runs posted one at a time: 201 → first step running")
        out["first_step_after_201_ms"] = first_step_after_201(base, url, opts.http_first_samples)
    return out


def settle(url: str, timeout: float = 300) -> None:
    """Wait until the server's worker has run every run wrk started (none left unfinished)."""

    async def unfinished() -> int:
        app = Legato(url)
        try:
            r = tables.runs.c
            async with app.db.read() as conn:
                stmt = select(func.count()).where(r.status.not_in(list(RUN_TERMINAL)))
                return int((await conn.execute(stmt)).scalar_one())
        finally:
            await app.db.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not asyncio.run(unfinished()):
            return
        time.sleep(1)
    raise BenchError("the runs started through HTTP did not all end")
