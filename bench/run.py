"""How fast the engine moves work, on SQLite and PostgreSQL, next to its peers and to the
stores' own limits, all in one invocation. ``bench/README.md`` says exactly what is measured.

    python bench/run.py [--quick] [--stores sqlite,postgresql] [--peers celery,dbos,...]
                        [--json bench/results/engine.json]

Parts, each a fresh database:

1. in-process (service calls, engine in the same event loop): idle latency of a 3-step no-op
   run (p50/p95/p99, and start → first step running), throughput of ``--runs`` runs, steps/s
   for chains of 3, 30 and 300 steps and one foreach;
2. PostgreSQL with real ``legato worker`` processes (1 and 2) draining ``--runs`` runs;
3. claim latency with 0, 10,000 and 100,000 queued runs in the store;
4. ``POST /api/v1/runs`` through HTTP against one ``legato serve`` (wrk, 64 connections), and
   201 → first step running;
5. the store's physical limit: SQLite single-row commits (NORMAL, FULL), ``pgbench -N``;
6. peers (Celery + Redis, DBOS, procrastinate, Prefect 3), each in its own virtualenv under
   ``bench/.peers``, made here, run as subprocesses printing JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import engine, http_starts, limits  # noqa: E402
from bench.common import load_average, say  # noqa: E402
from bench.peers import venvs  # noqa: E402
from legato.runtime import run_event_loop  # noqa: E402

PG_BASE = os.environ.get("LEGATO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PEERS_DIR = ROOT / "bench" / "peers"
#: name → (label, script, what it needs)
PEERS = {
    "celery": ("celery+redis", "celery_peer.py", "redis"),
    "dbos": ("dbos+postgresql", "dbos_peer.py", "postgresql"),
    "procrastinate": ("procrastinate+postgresql", "procrastinate_peer.py", "postgresql"),
    "prefect": ("prefect (local server)", "prefect_peer.py", ""),
}
QUICK = {
    "runs": 300,
    "latency_runs": 20,
    "repeat": 1,
    "shape_steps": 600,
    "foreach_items": 100,
    "backlogs": "0,1000,5000",
    "claim_samples": 20,
    "http_seconds": 3,
    "http_first_samples": 10,
    "peer_runs": 100,
    "prefect_runs": 10,
    "prefect_latency_runs": 5,
    "limit_seconds": 1.0,
    "pgbench_seconds": 2,
}


# -- the parts ---------------------------------------------------------------------------


class Report:
    """Every figure, as the JSON file holds it; a part that fails is recorded, not raised."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.failed: list[str] = []

    def part(self, path: str, fn: Callable[[], Any]) -> Any:
        keys = path.split("/")
        node = self.data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        t0 = time.perf_counter()
        load = load_average()
        try:
            value = fn()
        except Exception as exc:
            say(f"{path}: FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
            self.failed.append(path)
            value = {"error": f"{type(exc).__name__}: {exc}"}
        if isinstance(value, dict):
            value.setdefault("seconds", round(time.perf_counter() - t0, 1))
            value.setdefault("load_before", load)
        node[keys[-1]] = value
        return value


def pg_reachable(base: str) -> str | None:
    import asyncpg

    async def ping() -> None:
        conn = await asyncpg.connect(f"{base}/postgres", timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except Exception as exc:
        return f"PostgreSQL is not reachable at {base}: {exc}"
    return None


def redis_reachable(url: str) -> str | None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 3) as s:
            s.sendall(b"PING\r\n")
            if not s.recv(16).startswith(b"+PONG"):
                return f"Redis at {url} did not answer PING"
    except OSError as exc:
        return f"Redis is not reachable at {url}: {exc}"
    return None


def run_store(report: Report, store: str, opts: argparse.Namespace, workdir: Path) -> None:
    say(f"{store}: in-process latency, throughput and shapes")
    report.part(
        f"legato/{store}/in_process",
        # on the loop `legato serve` runs its engine on (uvloop, where installed)
        lambda: run_event_loop(
            engine.in_process(store, engine.fresh_store(store, opts, workdir, "engine"), opts)
        ),
    )
    if store == "postgresql" and opts.worker_processes:
        say(f"{store}: legato worker processes")
        report.part(
            f"legato/{store}/worker_processes",
            lambda: asyncio.run(
                engine.with_workers(
                    engine.fresh_store(store, opts, workdir, "workers"), opts, workdir
                )
            ),
        )
    if opts.backlogs:
        say(f"{store}: claim latency with queued runs")
        report.part(
            f"legato/{store}/claim",
            lambda: asyncio.run(
                engine.claim_latency(engine.fresh_store(store, opts, workdir, "claim"), opts)
            ),
        )
    if not opts.skip_http:
        say(f"{store}: starts through HTTP")
        report.part(
            f"legato/{store}/http",
            lambda: http_starts.measure(
                store, engine.fresh_store(store, opts, workdir, "http"), opts, workdir
            ),
        )
    say(f"{store}: the store's own limit")
    if store == "sqlite":
        report.part("limits/sqlite", lambda: limits.sqlite_limit(workdir, opts.limit_seconds))
    else:
        report.part(
            "limits/postgresql",
            lambda: limits.pg_limit(opts.pg_url, opts.pgbench_clients, opts.pgbench_seconds),
        )


def run_peer(name: str, opts: argparse.Namespace) -> dict[str, Any]:
    label, script, needs = PEERS[name]
    out: dict[str, Any] = {"label": label}
    missing = {"redis": redis_reachable(opts.redis_url), "postgresql": pg_reachable(opts.pg_url)}
    if needs and missing[needs]:
        return {**out, "status": "not run", "reason": missing[needs]}
    say(f"peer {name}: virtualenv bench/.peers/{name}")
    try:
        python = venvs.ensure(name)
    except Exception as exc:
        return {**out, "status": "not installed", "reason": str(exc)}
    runs = opts.prefect_runs if name == "prefect" else opts.peer_runs
    concurrency = opts.concurrency if name == "procrastinate" else (os.cpu_count() or 2)
    cmd = [
        str(python),
        str(PEERS_DIR / script),
        f"--runs={runs}",
        f"--latency-runs={opts.prefect_latency_runs if name == 'prefect' else opts.latency_runs}",
        f"--repeat={opts.repeat}",
        f"--concurrency={concurrency}",
        f"--pg-url={opts.pg_url}",
        f"--redis-url={opts.redis_url}",
    ]
    say(f"peer {name}: measuring ({runs} runs for throughput)")
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=opts.peer_timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {**out, "status": "failed", "reason": f"took more than {opts.peer_timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])
        return {**out, "status": "failed", "reason": f"exited {done.returncode}: {tail}"}
    try:
        figures = json.loads(lines[-1])
    except ValueError:
        return {**out, "status": "failed", "reason": f"no JSON on its last line: {lines[-1][:200]}"}
    return {**out, "status": "measured", **figures}


# -- the table ---------------------------------------------------------------------------


def get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for k in path.split("/"):
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def num(value: Any, digits: int = 0, width: int = 8) -> str:
    if value is None:
        return "—".rjust(width)
    return f"{value:,.{digits}f}".rjust(width)


def ratio(a: Any, b: Any) -> str:
    if not a or not b:
        return "—".rjust(8)
    return f"{a / b:,.2f}".rjust(8)


def table(report: Report, opts: argparse.Namespace) -> str:
    d = report.data
    stores = [s for s in ("sqlite", "postgresql") if get(d, f"legato/{s}")]
    out: list[str] = []
    w = 34
    out.append(
        f"Legato in-process (medians of {opts.repeat} repetitions; latency: "
        f"{opts.latency_runs} runs one after the other; throughput: {opts.runs:,} runs)"
    )
    out.append(
        "".ljust(w) + "   p50 ms   p95 ms   p99 ms  1st step p50  p99    steps/s  cpu ms/step"
    )
    for s in stores:
        b = f"legato/{s}/in_process"
        if get(d, f"{b}/error"):
            out.append(f"{s}".ljust(w) + f"FAILED: {get(d, f'{b}/error')}")
            continue
        out.append(
            f"{s}".ljust(w)
            + num(get(d, f"{b}/latency/done_ms/p50"), 1, 9)
            + num(get(d, f"{b}/latency/done_ms/p95"), 1, 9)
            + num(get(d, f"{b}/latency/done_ms/p99"), 1, 9)
            + num(get(d, f"{b}/latency/first_step_ms/p50"), 1, 14)
            + num(get(d, f"{b}/latency/first_step_ms/p99"), 1, 5)
            + num(get(d, f"{b}/throughput/steps_per_s"), 0, 11)
            + num(get(d, f"{b}/throughput/cpu_ms_per_step"), 2, 13)
        )
    workers = get(d, "legato/postgresql/worker_processes") or {}
    if "error" in workers:
        out.append("postgresql, worker processes".ljust(w) + f"FAILED: {workers['error']}")
    for count, fig in workers.items():
        if isinstance(fig, dict) and "steps_per_s" in fig:
            label = f"postgresql, {count} `legato worker`" + ("s" if count != "1" else "")
            out.append(
                label.ljust(w)
                + " " * 50
                + num(fig["steps_per_s"], 0, 11)
                + num(fig.get("cpu_ms_per_step"), 2, 13)
            )
    out.append("")
    out.append(
        f"Cost by shape, in-process (steps/s; {opts.shape_steps:,} steps per chain shape)"
        "          and claim latency (ms, p50/p99) by queued runs"
    )
    backlogs = [str(b) for b in opts.backlogs]
    out.append(
        "".ljust(12)
        + "  chain-3  chain-30 chain-300 "
        + f"foreach-{opts.foreach_items}"
        + "".join(f"  {int(b):>9,} q." for b in backlogs)
    )
    for s in stores:
        sh = f"legato/{s}/in_process/shapes"
        cl = f"legato/{s}/claim"
        cells = [
            num(get(d, f"{sh}/chain-3/steps_per_s"), 0, 9),
            num(get(d, f"{sh}/chain-30/steps_per_s"), 0, 9),
            num(get(d, f"{sh}/chain-300/steps_per_s"), 0, 9),
            num(get(d, f"{sh}/foreach-{opts.foreach_items}/items_per_s"), 0, 13),
        ]
        claims = [
            (
                num(get(d, f"{cl}/{b}/claim_ms/p50"), 1, 6)
                + "/"
                + num(get(d, f"{cl}/{b}/claim_ms/p99"), 1, 0)
            ).rjust(13)
            for b in backlogs
        ]
        out.append(s.ljust(12) + " ".join(cells) + "".join(claims))
        if get(d, f"{cl}/error"):
            out.append(f"  claim: FAILED: {get(d, f'{cl}/error')}")
    out.append("")
    out.append(
        f"Starts through HTTP: POST /api/v1/runs, one `legato serve`, wrk "
        f"{opts.http_connections} connections x {opts.http_seconds} s"
    )
    out.append("".ljust(12) + " answers/s   p50 ms   p99 ms   201 → 1st step p50 ms  p99 ms")
    for s in stores:
        h = f"legato/{s}/http"
        if get(d, f"{h}/error"):
            out.append(s.ljust(12) + f"FAILED: {get(d, f'{h}/error')}")
            continue
        if get(d, h) is None:
            continue
        out.append(
            s.ljust(12)
            + num(get(d, f"{h}/answers_per_s"), 0, 10)
            + num(get(d, f"{h}/p50_ms"), 1, 9)
            + num(get(d, f"{h}/p99_ms"), 1, 9)
            + num(get(d, f"{h}/first_step_after_201_ms/p50"), 1, 23)
            + num(get(d, f"{h}/first_step_after_201_ms/p99"), 1, 8)
        )
    out.append("")
    out.append("The stores' own limit, and Legato's steps/s as a fraction of it")
    lim = get(d, "limits/sqlite")
    if lim and "error" not in lim:
        normal, full = lim["commits_per_s"]["NORMAL"], lim["commits_per_s"]["FULL"]
        sps = get(d, "legato/sqlite/in_process/throughput/steps_per_s")
        frac = f"{sps / normal:.1%} of NORMAL" if sps else "—"
        out.append(
            f"sqlite      single-row commits/s, WAL: NORMAL {normal:,}, FULL {full:,}; "
            f"Legato {num(sps, 0, 0)} steps/s = {frac}"
        )
    elif lim:
        out.append(f"sqlite      FAILED: {lim['error']}")
    lim = get(d, "limits/postgresql")
    if lim and "error" not in lim:
        tps = lim["tps"]
        best = max(tps.values())
        fracs = []
        for label, path in (
            ("in-process", "legato/postgresql/in_process/throughput/steps_per_s"),
            ("1 worker", "legato/postgresql/worker_processes/1/steps_per_s"),
            ("2 workers", "legato/postgresql/worker_processes/2/steps_per_s"),
        ):
            v = get(d, path)
            if v:
                fracs.append(f"{label} {v:,.0f} steps/s = {v / best:.1%}")
        clients = ", ".join(f"{c} client{'s' if c != '1' else ''} {v:,}" for c, v in tps.items())
        out.append(f"postgresql  pgbench -N tps: {clients}; Legato " + "; ".join(fracs))
    elif lim:
        out.append(f"postgresql  FAILED: {lim['error']}")
    out.append("")
    out.append(
        "Peers, same invocation (3-step chain; latency medians of the repetitions; ratios are "
        "Legato ÷ peer: latency below 1 and steps/s above 1 favour Legato)"
    )
    out.append(
        "".ljust(26)
        + "  p50 ms  p95 ms  p99 ms   steps/s    runs │ p50 ratio sqlite    pg"
        + " │ steps/s ratio sqlite    pg"
    )
    lp = {s: get(d, f"legato/{s}/in_process/latency/done_ms/p50") for s in stores}
    lt = {s: get(d, f"legato/{s}/in_process/throughput/steps_per_s") for s in stores}
    for name, peer in (d.get("peers") or {}).items():
        label = peer.get("label", name)
        if peer.get("status") != "measured":
            out.append(label.ljust(26) + f"  {peer.get('status', '?')}: {peer.get('reason')}")
            continue
        p50 = get(peer, "latency/done_ms/p50")
        sps = get(peer, "throughput/steps_per_s")
        runs = (get(peer, "throughput/reps") or [{}])[0].get("runs")
        out.append(
            label.ljust(26)
            + num(p50, 1)
            + num(get(peer, "latency/done_ms/p95"), 1)
            + num(get(peer, "latency/done_ms/p99"), 1)
            + num(sps, 0, 10)
            + num(runs, 0, 8)
            + " │ "
            + " " * 7
            + ratio(lp.get("sqlite"), p50)
            + ratio(lp.get("postgresql"), p50)
            + " │ "
            + " " * 11
            + ratio(lt.get("sqlite"), sps)
            + ratio(lt.get("postgresql"), sps)
        )
        out.append("".ljust(28) + str(peer.get("version", "")))
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "processor": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--quick", action="store_true", help="small sizes, one repetition: checks the harness")
    add("--stores", default="sqlite,postgresql", help="comma-separated")
    add("--runs", type=int, default=10_000, help="runs per throughput repetition")
    add("--latency-runs", type=int, default=100, help="runs one after the other, per repetition")
    add("--repeat", type=int, default=3, help="repetitions; the table gives their medians")
    add("--warmup", type=int, default=3, help="untimed runs first")
    add("--concurrency", type=int, default=32, help="step slots of each Legato worker")
    add("--start-concurrency", type=int, default=16, help="start calls in flight")
    add("--worker-processes", default="1,2", help="`legato worker` processes (PostgreSQL)")
    add("--shape-steps", type=int, default=9_600, help="steps per chain shape (3, 30, 300)")
    add("--foreach-items", type=int, default=1_000)
    add("--skip-shapes", action="store_true")
    add("--backlogs", default="0,10000,100000", help="queued runs for the claim latency")
    add("--claim-samples", type=int, default=100)
    add("--skip-http", action="store_true")
    add("--http-connections", type=int, default=64)
    add("--http-seconds", type=int, default=10)
    add("--http-first-samples", type=int, default=50)
    add("--limit-seconds", type=float, default=3.0, help="the SQLite commit loop, per mode")
    add("--pgbench-clients", type=int, default=4)
    add("--pgbench-seconds", type=int, default=10)
    add("--peers", default=",".join(PEERS), help="comma-separated; empty: none")
    add("--no-peers", action="store_true")
    add("--peer-runs", type=int, default=2_000, help="runs per peer throughput repetition")
    add("--prefect-runs", type=int, default=30, help="Prefect's (it is far slower)")
    add("--prefect-latency-runs", type=int, default=20, help="Prefect's, per repetition")
    add("--peer-timeout", type=float, default=900.0, help="seconds per peer")
    add("--timeout", type=float, default=900.0, help="seconds, per phase")
    add("--pg-url", default=PG_BASE, help="PostgreSQL server (no database)")
    add("--redis-url", default="redis://127.0.0.1:6379/15")
    add("--json", type=Path, default=ROOT / "bench" / "results" / "engine.json")
    opts = ap.parse_args(argv)
    if opts.quick:
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv or sys.argv[1:])}
        for k, v in QUICK.items():
            if k not in given:
                setattr(opts, k, v)
    opts.backlogs = [int(x) for x in str(opts.backlogs).split(",") if x.strip()]
    opts.worker_processes = [int(x) for x in str(opts.worker_processes).split(",") if x.strip()]
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = Report()
    started = time.perf_counter()
    report.data.update(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        command="python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        machine=machine(),
        load_at_start=os.getloadavg(),
        options={
            k: v if isinstance(v, int | float | list) else str(v) for k, v in vars(opts).items()
        },
    )
    workdir = Path(tempfile.mkdtemp(prefix="legato-bench-"))
    try:
        for store in [s.strip() for s in opts.stores.split(",") if s.strip()]:
            if store == "postgresql" and (why := pg_reachable(opts.pg_url)):
                say(f"postgresql: skipped ({why})")
                report.data.setdefault("legato", {})[store] = {"skipped": why}
                continue
            run_store(report, store, opts, workdir)
        peers = [] if opts.no_peers else [p.strip() for p in opts.peers.split(",") if p.strip()]
        for name in peers:
            report.part(f"peers/{name}", lambda name=name: run_peer(name, opts))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for db in ("engine", "workers", "claim", "http"):
            if not pg_reachable(opts.pg_url):
                asyncio.run(engine.recreate_pg(opts.pg_url, f"legato_bench_{db}", drop_only=True))
    report.data["total_s"] = round(time.perf_counter() - started, 1)
    report.data["load_at_end"] = os.getloadavg()
    text = table(report, opts)
    print(text)
    m = report.data["machine"]
    print(
        f"\nmachine: {m['cpus']} cores, {m['processor']}, Python {m['python']}; "
        f"bench took {report.data['total_s']:.0f} s; 1-minute load average "
        f"{report.data['load_at_start'][0]:.1f} at the start, "
        f"{report.data['load_at_end'][0]:.1f} at the end"
    )
    if report.data["load_at_start"][0] > 0.5:
        print("note: the machine was busy before the bench started: the figures are noisy")
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report.data, indent=1, default=str))
        opts.json.with_suffix(".txt").write_text(text + "\n")
        say(f"figures written to {opts.json}")
    if report.failed:
        say(f"failed parts: {', '.join(report.failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
