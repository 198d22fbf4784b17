"""The dashboard's server time at scale: the runs list page and a run page with 1,000 steps,
with 1,000,000 runs in the store, on SQLite and PostgreSQL.

    python bench/dashboard.py [--runs 1000000] [--stores sqlite,postgresql] [--repeat 30]

The store is filled as ``bench/lists.py`` fills it (bulk rows, three namespaces, twenty
workflows, 90 days); then one run of a workflow with 1,000 top-level steps is started through
the service. Each page is asked for through the app in process (the ASGI transport, with a
signed-in session cookie), so the figure is the server's time: the query, the views and the
template. The API's own list call and run read are timed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import percentiles, say  # noqa: E402
from bench.lists import (  # noqa: E402
    ADMIN_KEY,
    PG_BASE,
    analyze_pg,
    fill_postgresql,
    fill_sqlite,
    fresh_postgresql,
    fresh_sqlite,
    make_catalog,
    recreate_pg,
)
from legato.asgi import create_app  # noqa: E402
from legato.model.starts import StartRun  # noqa: E402
from legato.runtime import Legato  # noqa: E402

STEPS = 1000


def wide_workflow(steps: int) -> str:
    """A workflow of ``steps`` top-level steps, each after the one ten before it."""
    lines = ["name: wide", "description: a run page with many steps", "steps:"]
    for i in range(steps):
        lines.append(f"  - id: s{i:04d}")
        if i >= 10:
            lines.append(f"    needs: [s{i - 10:04d}]")
        lines.append("    uses: approval")
    return "\n".join(lines) + "\n"


async def timed(call: Callable[[], Awaitable[httpx.Response]], repeat: int) -> tuple[float, float]:
    for _ in range(3):
        r = await call()
        assert r.status_code == 200, (r.status_code, r.text[:300])
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = await call()
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    return percentiles(samples)


async def measure(url: str, repeat: int) -> list[tuple[str, float, float]]:
    legato = Legato(url)
    await legato.open()
    try:
        admin = await legato.tenancy.authenticate(ADMIN_KEY)
        await legato.workflows.apply(admin, wide_workflow(STEPS))
        run, _ = await legato.runs.start(admin, StartRun(workflow="wide"))
        app = create_app(legato)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post("/ui/login", data={"key": ADMIN_KEY})
            assert r.status_code == 303, r.text
            key = {"Authorization": f"Bearer {ADMIN_KEY}"}
            rows = [
                ("runs list page (/ui)", lambda: client.get("/ui")),
                ("  API list (GET /api/v1/runs)", lambda: client.get("/api/v1/runs", headers=key)),
                (
                    f"run page, {STEPS} steps (/ui/runs/{{id}})",
                    lambda: client.get(f"/ui/runs/{run['id']}"),
                ),
                (
                    "  API run (GET /api/v1/runs/{id})",
                    lambda: client.get(f"/api/v1/runs/{run['id']}", headers=key),
                ),
            ]
            out = []
            for name, call in rows:
                p50, p95 = await timed(call, repeat)
                out.append((name, p50, p95))
            return out
    finally:
        await legato.close()


def run_store(name: str, opts: argparse.Namespace, workdir: Path) -> list[tuple[str, float, float]]:
    url = fresh_sqlite(workdir) if name == "sqlite" else fresh_postgresql(opts.pg_url)
    try:
        catalog = asyncio.run(make_catalog(url))
        say(f"{name}: filling {opts.runs:,} runs")
        if name == "sqlite":
            fill_sqlite(url.removeprefix("sqlite:///"), opts.runs, catalog)
        else:
            asyncio.run(fill_postgresql(url, opts.runs, catalog))
            asyncio.run(analyze_pg(url))
        say(f"{name}: measuring")
        return asyncio.run(measure(url, opts.repeat))
    finally:
        if name == "postgresql":
            asyncio.run(recreate_pg(opts.pg_url, drop_only=True))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/dashboard.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000, help="runs in the store")
    ap.add_argument("--stores", default="sqlite,postgresql", help="comma-separated")
    ap.add_argument("--repeat", type=int, default=30, help="timed calls per page")
    ap.add_argument("--pg-url", default=PG_BASE, help="PostgreSQL server (no database)")
    opts = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="legato-bench-dashboard-"))
    lines = [f"{'store':<11} {'page (server time)':<40} {'p50 (ms)':>9} {'p95 (ms)':>9}"]
    try:
        for name in [s.strip() for s in opts.stores.split(",") if s.strip()]:
            for page, p50, p95 in run_store(name, opts, workdir):
                lines.append(f"{name:<11} {page:<40} {p50:>9.1f} {p95:>9.1f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{opts.runs:,} runs in the store")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
