"""Status reads through HTTP at scale: what pollers, watchers and dialect clients cost.

    python bench/reads.py [--runs 1000000] [--stores sqlite,postgresql] [--seconds 10]
                          [--connections 64] [--watchers 1000] [--json FILE]
                          [--only run,conditional,list,dialects,watchers,api] [--reuse DIR]

Each store gets a fresh database filled with ``--runs`` runs (the bulk fill of
``bench/lists.py``), then a real ``legato serve`` (API and a worker with 32 slots) on a free
port, while a client keeps starting three-step runs (20 a second) so the worker is busy, as a
production server is. ``wrk`` (Debian's package) drives each request kind with
``--connections`` connections for ``--seconds`` seconds, next to ``GET /healthz`` of the same
server (the framework's own ceiling here), and the table gives each rate as a fraction of it:

- ``GET /api/v1/runs/{id}`` of 200 recent finished runs, and the same with ``If-None-Match``;
- the status read of each dialect (Aspera ``work_step_status``, Encoding.com ``GetStatus``,
  OAC ``workRequests/{id}``, Oracle ``executions/status``, datasourcesvc ``orchrun/{id}``);
- ``GET /api/v1/runs?status=FAILED`` (a page of 50);
- ``--watchers`` long-polls (``?wait=60s`` with ``If-None-Match``) and as many Server-Sent Event
  streams on one run waiting for approval: the delay from sending the approval to each
  watcher's news (p50/p99), and from the change's commit (the run's ``finished_at``, read
  back; milliseconds, the same machine's clock), and the server's memory per watcher. The
  watchers are light clients (raw HTTP/1.1 on asyncio streams, ``bench/watch_clients.py``)
  spread over
  ``--watcher-processes`` processes (default: one per core): a full Python HTTP client
  reading a thousand answers at once on the server's own cores measured itself more than
  the server (before this, with httpx in one process: p99 554 ms SQLite, 754 ms PostgreSQL
  for long-polls). The delay still includes the approval's own request (sent with httpx)
  and the clients' reading, on the same cores as the server;
- ``legato api`` with one server process and with one per core, on the same database.

``--only`` measures a part of these (``GET /healthz`` is always measured, as the yardstick):
``run`` (the run read), ``conditional`` (the same with ``If-None-Match``), ``list``,
``dialects``, ``watchers``, ``api`` (``legato api`` processes). ``--reuse DIR`` keeps the
filled databases (the SQLite file in ``DIR``, the PostgreSQL database ``--pg-database``) and
takes them again on the next call with the same ``--runs``, instead of filling anew; a reused
store also holds the runs earlier calls started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import lists, watch_clients  # noqa: E402
from bench.common import load_average, say  # noqa: E402

ADMIN_KEY = lists.ADMIN_KEY
PG_DATABASE = "legato_bench_reads"
LEGATO = str(Path(sys.executable).with_name("legato"))
NOOP = """
name: bench-noop
steps:
  - {id: a, uses: python, with: {function: "bench.steps:noop"}}
  - {id: b, needs: [a], uses: python, with: {function: "bench.steps:noop"}}
  - {id: c, needs: [b], uses: python, with: {function: "bench.steps:noop"}}
"""
GATE = """
name: bench-gate
steps:
  - {id: gate, uses: approval}
"""
WRK_SCRIPT = """
local requests = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local method, path, headers, body = line:match("^(%S+)\\t(%S+)\\t([^\\t]*)\\t(.*)$")
    local h = {}
    for k, v in headers:gmatch("([^=;]+)=([^;]*)") do h[k] = v end
    if body == "" then body = nil end
    requests[#requests + 1] = wrk.format(method, path, h, body)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "bad_status": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class Figure:
    name: str
    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    of_healthz: float | None = None
    errors: int = 0
    note: str = ""


@dataclass
class StoreResult:
    store: str
    runs: int
    figures: list[Figure] = field(default_factory=list)
    watchers: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


# -- servers and load --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    args: list[str], url: str, port: int, workdir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "LEGATO_ADMIN_KEY": ADMIN_KEY,
        "LEGATO_DATABASE_URL": url,
        "LEGATO_ALLOW_PRIVATE_URLS": "true",
        "LEGATO_STEP_MODULES": "bench.steps",  # what the bench's workflow calls
        "PYTHONPATH": str(ROOT),
    }
    log = (workdir / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(
        [LEGATO, *args, "--port", str(port)], cwd=workdir, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log.name}")
            time.sleep(0.2)
        yield proc
    except BaseException:
        died = proc.poll()
        log.flush()
        tail = Path(log.name).read_text(errors="replace").splitlines()[-30:]
        say(f"server on port {port} ({'exited ' + str(died) if died is not None else 'alive'}):")
        say("\n".join(tail))
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Stream(threading.Thread):
    """Starts a three-step run every 1/rate seconds until stopped: a busy worker."""

    def __init__(self, base: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.base, self.rate, self.started, self.failed = base, rate, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=auth(), timeout=30) as client:
            while not self.stop.wait(1.0 / self.rate):
                try:
                    r = client.post("/api/v1/runs", json={"workflow": "bench-noop"})
                    self.started += r.status_code == 201
                except httpx.HTTPError:
                    self.failed += 1


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def wrk(base: str, requests: list[tuple[str, str, dict[str, str], str]], opts: Any) -> Figure:
    """Drive the requests round-robin with wrk; answers rate and latency."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp) / "reads.lua", Path(tmp) / "requests.tsv"
        script.write_text(WRK_SCRIPT)
        listing.write_text(
            "".join(
                f"{method}\t{path}\t{';'.join(f'{k}={v}' for k, v in headers.items())}\t{body}\n"
                for method, path, headers, body in requests
            )
        )
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{opts.connections}",
                f"-d{opts.seconds}s",
                "--latency",
                "-s",
                str(script),
                base,
                "--",
                str(listing),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    data = json.loads(line[4:])
    rate = data["requests"] / (data["duration_us"] / 1e6)
    return Figure(
        "",
        round(rate),
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        errors=data["errors"] + data["bad_status"],
    )


def get(path: str, headers: dict[str, str] | None = None) -> tuple[str, str, dict[str, str], str]:
    return ("GET", path, {**auth(), **(headers or {})}, "")


# -- the dialects' status reads ----------------------------------------------------------


def dialect_requests(client: httpx.Client, run_ids: list[int]) -> dict[str, list[Any]]:
    """For each dialect, requests reading the status of the given runs its own way (setup
    through the native API); a dialect that cannot be set up answers its reason instead."""
    out: dict[str, list[Any]] = {}
    runs = [client.get(f"/api/v1/runs/{i}").json() for i in run_ids[:50]]

    def attempt(name: str, build: Any) -> None:
        try:
            out[name] = build()
        except Exception as exc:  # reported, not raised
            out[name] = [f"not measured: {exc}"]

    def aspera() -> list[Any]:
        user = {"username": "bench-aspera", "password": "bench-aspera-password", "role": "viewer"}
        r = client.post("/api/v1/users", json=user)
        assert r.status_code in (201, 409), r.text
        basic = (
            "Basic "
            + __import__("base64").b64encode(b"bench-aspera:bench-aspera-password").decode()
        )
        return [
            (
                "GET",
                f"/aspera/orchestrator/api/work_step_status/{run['steps'][0]['id']}.json",
                {"Authorization": basic},
                "",
            )
            for run in runs
        ]

    def encoding() -> list[Any]:
        key = client.post("/api/v1/keys", json={"name": "bench encoding", "role": "viewer"}).json()
        form = __import__("urllib.parse").parse
        return [
            (
                "POST",
                "/",
                {"Content-Type": "application/x-www-form-urlencoded"},
                form.urlencode(
                    {
                        "json": json.dumps(
                            {
                                "query": {
                                    "userid": str(key["id"]),
                                    "userkey": key["key"],
                                    "action": "GetStatus",
                                    "mediaid": str(run["id"]),
                                }
                            }
                        )
                    }
                ),
            )
            for run in runs
        ]

    def oac() -> list[Any]:
        return [get(f"/api/20210901/workRequests/{run['id']}") for run in runs]

    def datasourcesvc() -> list[Any]:
        return [
            get(f"/datasourcesvc/api/v1/orchrun/{run['uuid']}?nsfilter=default") for run in runs
        ]

    def oracle() -> list[Any]:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        identifier = str(uuid.uuid4())  # a reused store holds earlier calls' registrations
        body = {
            "identifier": identifier,
            "keys": {"keys": [{**public, "kid": "b", "use": "sig"}]},
            "role": "viewer",
            "audience": "legato-bench",
        }
        r = client.post("/api/v1/jwks", json=body)
        if r.status_code == 422:  # an installation whose JWKS take no audience
            body.pop("audience")
            r = client.post("/api/v1/jwks", json=body)
        assert r.status_code in (200, 201), r.text
        now = int(time.time())
        claims = {
            "sub": "bench@example.com",
            "iat": now,
            "exp": now + 3600,
            "aud": "legato-bench",
            "scope": "mcs:oci:api:User mcs:oci:api:PrivilegedUser mcs:oci:api:Approver",
        }
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "b"})
        heads = {"Authorization": f"Bearer {token}", "Identifier": identifier}
        return [
            ("GET", f"/selfservice/v1/executions/status?id={run['id']}&requestor=BENCH", heads, "")
            for run in runs
        ]

    for name, build in (
        ("Aspera work_step_status", aspera),
        ("Encoding.com GetStatus", encoding),
        ("OAC workRequests/{id}", oac),
        ("Oracle executions/status", oracle),
        ("datasourcesvc orchrun/{id}", datasourcesvc),
    ):
        attempt(name, build)
    return out


# -- watchers --------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def watchers(base: str, pid: int, n: int, processes: int) -> dict[str, Any]:
    """``n`` long-polls, then ``n`` SSE streams, on one run each; then the run changes."""
    out: dict[str, Any] = {}
    for kind in ("long-poll", "sse"):
        async with httpx.AsyncClient(base_url=base, headers=auth(), timeout=90) as client:
            try:
                out[kind] = await watch_once(client, pid, n, kind, processes)
            except (httpx.HTTPError, AssertionError, TimeoutError, queue.Empty) as exc:
                out[kind] = f"not measured: {type(exc).__name__}: {exc}"
    return out


async def watch_once(
    c: httpx.AsyncClient, pid: int, n: int, kind: str, processes: int
) -> dict[str, Any]:
    """The watchers are light clients (``bench/watch_clients.py``) in ``processes``
    processes, so that reading a thousand answers at once measures the server rather than a
    Python HTTP client sharing its cores."""
    run = (await c.post("/api/v1/runs", json={"workflow": "bench-gate"})).json()
    path = f"/api/v1/runs/{run['id']}"
    deadline = time.monotonic() + 30
    # until the step waits for its approval (claimed, then handed back by its worker)
    while (await c.get(f"{path}/steps/gate")).json()["waiting_reason"] != {"reason": "approval"}:
        assert time.monotonic() < deadline, "the gate never opened"
        await asyncio.sleep(0.05)
    tag = (await c.get(path)).headers["etag"]
    seen = tag.split(".")[1]  # W/"id.version.json": the version the watchers have seen
    host, port = c.base_url.host, c.base_url.port or 80
    target, header = (
        (f"{path}?wait=60s", f"If-None-Match: {tag}")
        if kind == "long-poll"
        else (f"{path}/watch", f"Last-Event-ID: {seen}")
    )
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\n{header}\r\n\r\n"
    ).encode()
    before = rss_kb(pid)
    with watch_clients.watchers(host, port, request, kind, n, processes) as waiting:
        await asyncio.sleep(2.0)  # every request is waiting in the server by now
        during = rss_kb(pid)
        # from the moment the approval is sent: its commit wakes the watchers, who may well
        # hear of it before the sender has its own answer
        changed = time.monotonic()
        signal = await c.post(f"{path}/steps/gate/signal", json={"ok": True})
        assert signal.status_code == 200, signal.text
        arrived = await asyncio.to_thread(waiting.arrivals)
    assert len(arrived) == n, f"{len(arrived)} of {n} watchers had news"
    delays = sorted((t - changed) * 1000 for t in arrived)
    # the change itself: the run finished (the approval's commit) at this wall-clock time,
    # read back from the run (milliseconds), on the clock of this same machine
    finished = (await c.get(path)).json()["finished_at"]
    committed = _wall(finished) - (time.time() - time.monotonic())
    since_commit = sorted((t - committed) * 1000 for t in arrived)
    return {
        "watchers": n,
        "first_ms": round(delays[0], 1),
        "p50_ms": round(statistics.median(delays), 1),
        "p99_ms": round(delays[int(0.99 * (len(delays) - 1))], 1),
        "commit_p50_ms": round(statistics.median(since_commit), 1),
        "commit_p99_ms": round(since_commit[int(0.99 * (len(since_commit) - 1))], 1),
        "kb_per_watcher": round((during - before) / n, 1),
    }


def _wall(stamp: str) -> float:
    """``2026-11-29T08:46:20.733Z`` as seconds since the epoch."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# -- one store -------------------------------------------------------------------------


PARTS = ("run", "conditional", "list", "dialects", "watchers", "api")


def measure(name: str, url: str, opts: Any, workdir: Path) -> StoreResult:
    result = StoreResult(name, opts.runs)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(["serve", "--no-examples"], url, port, workdir) as proc:
        client = httpx.Client(base_url=base, headers=auth(), timeout=60)
        for source in (NOOP, GATE):
            wf = source.split("name: ")[1].split()[0]
            r = client.put(
                f"/api/v1/workflows/{wf}",
                content=source,
                headers={"Content-Type": "application/yaml"},
            )
            assert r.status_code in (200, 201), r.text
        stream = Stream(base, 20.0)
        stream.start()
        start = {"workflow": "bench-noop", "requestor": "BENCH"}  # Oracle's API asks for one
        ids = [client.post("/api/v1/runs", json=start).json()["id"] for _ in range(200)]
        deadline = time.monotonic() + 120
        while client.get(f"/api/v1/runs/{ids[-1]}.txt").text != "SUCCEEDED":
            assert time.monotonic() < deadline, "the worker did not finish the bench runs"
            time.sleep(0.2)
        tags = {i: client.get(f"/api/v1/runs/{i}").headers["etag"] for i in ids}
        healthz = wrk(base, [("GET", "/healthz", {}, "")], opts)
        plan: list[tuple[str, list[Any]]] = []
        if "run" in opts.only:
            plan.append(("GET /api/v1/runs/{id}", [get(f"/api/v1/runs/{i}") for i in ids]))
        if "conditional" in opts.only:
            plan.append(
                (
                    "… with If-None-Match (304)",
                    [get(f"/api/v1/runs/{i}", {"If-None-Match": tags[i]}) for i in ids],
                )
            )
        if "list" in opts.only:
            page = get("/api/v1/runs?status=FAILED&page_size=50")
            plan.append(("GET /api/v1/runs?status=FAILED", [page]))
        if "dialects" in opts.only:
            plan += list(dialect_requests(client, ids).items())
        healthz.name, healthz.of_healthz = "GET /healthz", 1.0
        result.figures.append(healthz)
        for label, requests in plan:
            if requests and isinstance(requests[0], str):
                result.figures.append(Figure(label, note=requests[0]))
                continue
            say(f"  {name}: {label}")
            figure = wrk(base, requests, opts)
            figure.name = label
            figure.of_healthz = round(figure.rate / healthz.rate, 2) if healthz.rate else None
            result.figures.append(figure)
        if "watchers" in opts.only:
            say(f"  {name}: {opts.watchers} watchers")
            result.watchers = asyncio.run(
                watchers(base, proc.pid, opts.watchers, opts.watcher_processes)
            )
        stream.stop.set()
        stream.join()
        result.watchers["runs started meanwhile"] = stream.started
        result.watchers["starts that failed"] = stream.failed
        client.close()
        processes = os.cpu_count() or 2
        for count in (1, processes) if "api" in opts.only else ():
            api_port = free_port()
            args = ["api"] + (["--workers", str(count)] if count > 1 else [])
            with server(args, url, api_port, workdir):
                api_base = f"http://127.0.0.1:{api_port}"
                say(f"  {name}: legato api, {count} process(es)")
                figure = wrk(api_base, [get(f"/api/v1/runs/{i}") for i in ids], opts)
                figure.name = f"legato api --workers {count}: GET /api/v1/runs/{{id}}"
                figure.of_healthz = round(figure.rate / healthz.rate, 2)
                result.figures.append(figure)
    return result


def fresh(name: str, opts: Any, workdir: Path) -> str:
    """The store's URL, filled with ``--runs`` runs (or as a previous call left it, with
    ``--reuse``)."""
    lists.PG_DATABASE = opts.pg_database
    filled = workdir / f"{name}-{opts.runs}.filled"
    if name == "sqlite":
        url = f"sqlite:///{workdir / f'legato-bench-reads-{opts.runs}.db'}"
    else:
        url = f"{opts.pg_url}/{opts.pg_database}"
    if opts.reuse and filled.exists():
        say(f"{name}: reusing the store filled with {opts.runs:,} runs")
        return url
    if name == "sqlite":
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        lists.upgrade(url)
    else:
        url = lists.fresh_postgresql(opts.pg_url)
    catalog = asyncio.run(lists.make_catalog(url))
    say(f"{name}: filling {opts.runs:,} runs")
    if name == "sqlite":
        lists.fill_sqlite(url.removeprefix("sqlite:///"), opts.runs, catalog)
    else:
        asyncio.run(lists.fill_postgresql(url, opts.runs, catalog))
    filled.touch()
    return url


def table(results: Sequence[StoreResult]) -> str:
    lines = [
        f"{'store':<11} {'request':<52} {'answers/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'÷ healthz':>9}"
    ]
    for res in results:
        if res.skipped:
            lines.append(f"{res.store:<11} skipped: {res.skipped}")
            continue
        for f in res.figures:
            if f.rate is None:
                lines.append(f"{res.store:<11} {f.name:<52} {f.note}")
                continue
            errors = f"  ({f.errors} errors)" if f.errors else ""
            lines.append(
                f"{res.store:<11} {f.name:<52} {f.rate:>9,} {f.p50_ms:>7.1f} {f.p99_ms:>7.1f} "
                f"{f.of_healthz:>9.2f}{errors}"
            )
        for kind, w in res.watchers.items():
            if isinstance(w, str):
                lines.append(f"{res.store:<11} {kind} watchers: {w}")
            elif isinstance(w, dict):
                lines.append(
                    f"{res.store:<11} {w['watchers']:,} {kind} watchers: news after the change "
                    f"was committed p50 {w['commit_p50_ms']} ms, p99 {w['commit_p99_ms']} ms; "
                    f"after its request was sent first {w['first_ms']} ms, p50 {w['p50_ms']} ms,"
                    f" p99 {w['p99_ms']} ms; {w['kb_per_watcher']} kB of server memory each"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--watcher-processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--pg-url", default=lists.PG_BASE)
    parser.add_argument("--pg-database", default=PG_DATABASE)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", default=",".join(PARTS), help=f"of {', '.join(PARTS)}")
    parser.add_argument("--reuse", type=Path, metavar="DIR", help="keep and reuse the stores")
    opts = parser.parse_args(argv)
    opts.only = {part.strip() for part in opts.only.split(",") if part.strip()}
    if opts.only - set(PARTS):
        parser.error(f"--only takes {', '.join(PARTS)}")
    results = []
    say(f"load average {load_average():.2f} at the start")
    with contextlib.ExitStack() as stack:
        if opts.reuse:
            opts.reuse.mkdir(parents=True, exist_ok=True)
            workdir = opts.reuse
        else:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="legato-bench-reads-"))
            )
        for name in opts.stores.split(","):
            try:
                url = fresh(name, opts, workdir)
                results.append(measure(name, url, opts, workdir))
            except Exception as exc:  # reported in the table; the other store still runs
                results.append(StoreResult(name, opts.runs, skipped=f"{type(exc).__name__}: {exc}"))
            finally:
                if name == "postgresql" and not opts.reuse:
                    with contextlib.suppress(Exception):
                        asyncio.run(lists.recreate_pg(opts.pg_url, drop_only=True))
    print(table(results))
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
