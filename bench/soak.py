"""A soak: one real ``legato serve`` under a steady, bounded mix of requests for a while,
watched for memory, file descriptors, latency and server errors.

    python bench/soak.py [--minutes 10] [--concurrency 12] [--json bench/results/soak.json]

The server runs as a subprocess on a fresh SQLite database in a temporary folder and a free
port on 127.0.0.1, with its own two workflows applied through the API (``soak-quick``: a
Python step, a shell step, a short sleep; ``soak-slow``: a long sleep, to be canceled) and a
webhook subscription to a receiver this script runs as a process of its own on another local
port (the server is started with ``LEGATO_ALLOW_PRIVATE_URLS=true`` for it).

``--concurrency`` loops each pick an action at random, again and again until the time is up:
starts (some with ``notify_url`` and ``Idempotency-Key``), cancels, status polls, conditional
polls (``If-None-Match``), long-polls (``?wait=2s``), log follows (``logs?follow=true``), SSE
watches (``/watch``) and lists. Every request has a timeout and every stream a bound, so each
loop stops by itself. Every few seconds the server's RSS (``/proc/<pid>/status``) and open
file descriptors (``/proc/<pid>/fd``) are sampled.

It prints, per window (a minute, shorter for runs under four minutes), RSS, descriptors and
p50/p99 latency and errors per kind, then the first and the last window side by side (noting
each kind whose p99 more than doubled), and writes everything to the JSON report. It exits 1
if any request answered 5xx or failed at the transport, a run ended in an unexpected state,
or from the end of the first window (warm-up) to the end of the last RSS grew by more than
50 % or 100 MB, or descriptors by more than 50.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "lg_soak_admin_key_0123456789abcdef"
RSS_GROWTH_SHARE = 0.5
RSS_GROWTH_BYTES = 100 * 1024 * 1024
FD_GROWTH = 50
REQUEST_TIMEOUT = 30.0
STREAM_SECONDS = 20.0
LONG_POLL = "2s"

WORKFLOWS = {
    "soak-quick": """
name: soak-quick
inputs:
  name: {type: string, default: soak}
steps:
  - id: greet
    uses: python
    with: {function: "legato_examples.hello:greet", name: "${{ inputs.name }}"}
  - id: echo
    needs: [greet]
    uses: shell
    with: {argv: [printf, "line %s\\n", "1", "2", "3"]}
    timeout: 10s
  - id: pause
    needs: [echo]
    uses: sleep
    with: {duration: 300ms}
outputs:
  greeting: ${{ steps.greet.outputs.greeting }}
""",
    "soak-slow": """
name: soak-slow
steps:
  - id: greet
    uses: python
    with: {function: "legato_examples.hello:greet", name: slow}
  - id: wait
    needs: [greet]
    uses: sleep
    with: {duration: 30s}
""",
}

#: Relative weights of the actions each loop picks from.
MIX = {
    "start": 6,
    "cancel": 2,
    "status": 8,
    "conditional": 6,
    "long-poll": 3,
    "logs-follow": 2,
    "watch": 2,
    "list": 2,
}
KINDS = [*MIX, "webhook-lag"]


# -- measurements ---------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    rss_bytes: int
    fds: int


@dataclass
class Window:
    index: int
    start_s: float
    end_s: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    samples: list[Sample] = field(default_factory=list)

    def rss_mb(self) -> float | None:
        values = [s.rss_bytes for s in self.samples]
        return statistics.median(values) / 2**20 if values else None

    def fds(self) -> float | None:
        values = [s.fds for s in self.samples]
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, Any]:
        kinds = {}
        for kind in KINDS:
            samples = self.latencies.get(kind, [])
            p50, p99 = percentiles(samples)
            kinds[kind] = {
                "count": len(samples),
                "p50_ms": p50,
                "p99_ms": p99,
                "statuses": dict(self.statuses.get(kind, {})),
                "errors": len(self.errors.get(kind, [])),
                "error_examples": self.errors.get(kind, [])[:5],
            }
        return {
            "index": self.index,
            "start_s": round(self.start_s, 1),
            "end_s": round(self.end_s, 1),
            "rss_mb": self.rss_mb(),
            "fds": self.fds(),
            "samples": [asdict(s) for s in self.samples],
            "kinds": kinds,
        }


def percentiles(samples: list[float]) -> tuple[float | None, float | None]:
    """p50 and p99 in milliseconds (inclusive method), or None without samples."""
    if not samples:
        return None, None
    if len(samples) == 1:
        return round(samples[0] * 1000, 1), round(samples[0] * 1000, 1)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(statistics.median(samples) * 1000, 1), round(cuts[98] * 1000, 1)


class Recorder:
    """Latencies, statuses and errors by kind, in windows of the run's time."""

    def __init__(self, window_seconds: float, duration: float) -> None:
        self.t0, self.t0_wall = time.monotonic(), time.time()
        self.window_seconds = window_seconds
        count = max(1, round(duration / window_seconds))
        self.windows = [
            Window(i, i * window_seconds, min((i + 1) * window_seconds, duration))
            for i in range(count)
        ]

    def start(self) -> None:
        self.t0, self.t0_wall = time.monotonic(), time.time()

    def window(self, wall: float | None = None) -> Window:
        elapsed = time.monotonic() - self.t0 if wall is None else wall - self.t0_wall
        index = int(max(elapsed, 0.0) / self.window_seconds)
        return self.windows[min(index, len(self.windows) - 1)]

    def delivery(self, wall: float, lag: float) -> None:
        """A webhook delivery the receiver got at ``wall``, ``lag`` seconds after its event."""
        window = self.window(wall)
        window.latencies["webhook-lag"].append(lag)
        window.statuses["webhook-lag"]["204"] += 1

    def ok(self, kind: str, seconds: float, status: int) -> None:
        window = self.window()
        window.latencies[kind].append(seconds)
        window.statuses[kind][str(status)] += 1
        if status >= 500:
            window.errors[kind].append(f"HTTP {status}")

    def error(self, kind: str, what: str) -> None:
        self.window().errors[kind].append(what)

    def sample(self, rss_bytes: int, fds: int) -> None:
        now = time.monotonic() - self.t0
        self.window().samples.append(Sample(round(now, 1), rss_bytes, fds))


def read_process(pid: int) -> tuple[int, int]:
    """RSS in bytes and the number of open file descriptors of process ``pid`` (Linux)."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


# -- the server and the webhook receiver -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(home: Path, port: int) -> Any:
    """``legato serve`` as a subprocess; yields the process once /healthz answers."""
    env = {
        **os.environ,
        "LEGATO_ADMIN_KEY": ADMIN_KEY,
        "LEGATO_ALLOW_PRIVATE_URLS": "true",
        "LEGATO_LOG_LEVEL": "WARNING",
        "LEGATO_STEP_MODULES": "legato_examples",  # what the soak's workflows call
    }
    log = (home / "serve.log").open("wb")
    command = [sys.executable, "-m", "legato", "serve", "--no-examples", "--port", str(port)]
    command += ["--database-url", f"sqlite:///{home / 'legato.db'}"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("legato serve did not start:\n" + (home / "serve.log").read_text())
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class Receiver:
    """An HTTP endpoint for webhook deliveries, run in a process of its own (so that the busy
    request loops never delay its answers): answers 204 and appends a line per delivery to
    a file: when it came, how long after its event, and the event type."""

    def __init__(self, into: Path) -> None:
        self.out = into.open("a")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            now = time.time()
            try:
                event = json.loads(body)
                sent = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
                self.out.write(f"{now} {max(now - sent, 0.0)} {event['type']}\n")
            except (ValueError, KeyError, TypeError):
                self.out.write(f"{now} - unreadable\n")
            self.out.flush()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def receive(port: int, into: Path) -> None:
    """The receiver process: serves until SIGTERM."""
    receiver = Receiver(into)
    uvicorn.run(receiver, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Deliveries:
    """What the receiver wrote so far, read as it grows."""

    def __init__(self, path: Path, recorder: Recorder) -> None:
        self.path, self.recorder = path, recorder
        self.offset = 0
        self.count = 0
        self.events: dict[str, int] = defaultdict(int)

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open() as f:
            f.seek(self.offset)
            while (line := f.readline()).endswith("\n"):
                self.offset = f.tell()
                wall, lag, event_type = line.split()
                if lag == "-":
                    self.recorder.error("webhook-lag", "an unreadable delivery")
                    continue
                self.recorder.delivery(float(wall), float(lag))
                self.events[event_type] += 1
                self.count += 1


@contextlib.contextmanager
def receiving(port: int, into: Path) -> Any:
    command = [sys.executable, __file__, "--receive", str(port), "--receive-into", str(into)]
    proc = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 204:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the webhook receiver did not start")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the mix ---------------------------------------------------------------------------------


class Mix:
    """The actions the loops pick from, and the runs they share."""

    def __init__(self, client: httpx.AsyncClient, recorder: Recorder, hook_url: str) -> None:
        self.client = client
        self.recorder = recorder
        self.hook_url = hook_url
        self.recent: deque[int] = deque(maxlen=200)  # quick runs, for reads
        self.etags: dict[int, str] = {}
        self.started = 0
        self.canceled: set[int] = set()

    async def timed(
        self, kind: str, call: Callable[[], Awaitable[httpx.Response]]
    ) -> httpx.Response | None:
        began = time.monotonic()
        try:
            response = await call()
        except httpx.HTTPError as exc:
            self.recorder.error(kind, f"{type(exc).__name__}: {exc}")
            return None
        self.recorder.ok(kind, time.monotonic() - began, response.status_code)
        return response

    def known_run(self) -> int | None:
        return random.choice(self.recent) if self.recent else None

    async def start(self, workflow: str = "soak-quick", kind: str = "start") -> int | None:
        body: dict[str, Any] = {"workflow": workflow, "labels": {"soak": "yes"}}
        headers = {}
        if random.random() < 0.3:
            body["notify_url"] = self.hook_url
        if random.random() < 0.2:
            headers["Idempotency-Key"] = f"soak-{random.getrandbits(64):x}"
        r = await self.timed(
            kind, lambda: self.client.post("/api/v1/runs", json=body, headers=headers)
        )
        if r is None or r.status_code != 201:
            return None
        self.started += 1
        run_id = int(r.json()["id"])
        if workflow == "soak-quick":
            self.recent.append(run_id)
        return run_id

    async def cancel(self) -> None:
        run_id = await self.start("soak-slow", kind="start")
        if run_id is None:
            return
        await asyncio.sleep(random.uniform(0.05, 0.5))
        r = await self.timed("cancel", lambda: self.client.post(f"/api/v1/runs/{run_id}/cancel"))
        if r is not None and r.status_code < 300:
            self.canceled.add(run_id)

    async def status(self) -> None:
        run_id = self.known_run()
        if run_id is None:
            return
        r = await self.timed("status", lambda: self.client.get(f"/api/v1/runs/{run_id}"))
        if r is not None and "etag" in r.headers:
            self.etags[run_id] = r.headers["etag"]

    async def conditional(self, kind: str = "conditional", wait: str | None = None) -> None:
        run_id = self.known_run()
        if run_id is None or run_id not in self.etags:
            return await self.status()
        headers = {"If-None-Match": self.etags[run_id]}
        params = {"wait": wait} if wait else {}
        r = await self.timed(
            kind,
            lambda: self.client.get(f"/api/v1/runs/{run_id}", headers=headers, params=params),
        )
        if r is not None and r.status_code == 200 and "etag" in r.headers:
            self.etags[run_id] = r.headers["etag"]

    async def long_poll(self) -> None:
        await self.conditional("long-poll", LONG_POLL)

    async def stream(self, kind: str, path: str, params: dict[str, str], marker: bytes) -> None:
        """Time to the first ``marker`` of a stream, then read it to its end (bounded)."""
        began = time.monotonic()
        first: float | None = None
        try:
            async with asyncio.timeout(STREAM_SECONDS):
                async with self.client.stream("GET", path, params=params) as r:
                    if r.status_code != 200:
                        await r.aread()
                        self.recorder.ok(kind, time.monotonic() - began, r.status_code)
                        return
                    async for chunk in r.aiter_bytes():
                        if first is None and marker in chunk:
                            first = time.monotonic() - began
            self.recorder.ok(kind, first if first is not None else time.monotonic() - began, 200)
        except TimeoutError:
            self.recorder.error(kind, f"stream still open after {STREAM_SECONDS:.0f} s")
        except httpx.HTTPError as exc:
            self.recorder.error(kind, f"{type(exc).__name__}: {exc}")

    async def logs_follow(self) -> None:
        run_id = await self.start()
        if run_id is not None:
            path = f"/api/v1/runs/{run_id}/logs"
            await self.stream("logs-follow", path, {"follow": "true"}, b"\n")

    async def watch(self) -> None:
        run_id = await self.start() if random.random() < 0.5 else self.known_run()
        if run_id is not None:
            await self.stream("watch", f"/api/v1/runs/{run_id}/watch", {}, b"event: run")

    async def list(self) -> None:
        params = {"page_size": "20", "workflow": "soak-quick"}
        await self.timed("list", lambda: self.client.get("/api/v1/runs", params=params))

    async def loop(self, deadline: float) -> None:
        actions: dict[str, Callable[[], Awaitable[Any]]] = {
            "start": self.start,
            "cancel": self.cancel,
            "status": self.status,
            "conditional": self.conditional,
            "long-poll": self.long_poll,
            "logs-follow": self.logs_follow,
            "watch": self.watch,
            "list": self.list,
        }
        names, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline:
            await actions[random.choices(names, weights)[0]]()
            await asyncio.sleep(random.uniform(0.05, 0.25))  # a steady load, not a flood


async def sampler(recorder: Recorder, pid: int, every: float, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            recorder.sample(*read_process(pid))
        except OSError:
            return  # the server is gone; the mix reports the errors
        await asyncio.sleep(min(every, max(deadline - time.monotonic(), 0.0)))
    with contextlib.suppress(OSError):
        recorder.sample(*read_process(pid))


# -- setup, settling, the report -------------------------------------------------------------


async def prepare(client: httpx.AsyncClient, hook_url: str) -> None:
    for name, source in WORKFLOWS.items():
        r = await client.put(
            f"/api/v1/workflows/{name}",
            content=source,
            headers={"Content-Type": "application/yaml"},
        )
        if r.status_code not in (200, 201):
            raise SystemExit(f"could not apply {name}: {r.status_code} {r.text}")
    r = await client.post(
        "/api/v1/webhooks", json={"url": hook_url, "event_types": ["run.*"], "workflows": []}
    )
    if r.status_code != 201:
        raise SystemExit(f"could not subscribe the webhook receiver: {r.status_code} {r.text}")


async def settle(client: httpx.AsyncClient, seconds: float) -> dict[str, dict[str, int]]:
    """Wait (bounded) for the runs left going, then count runs by workflow and status."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = await client.get(
            "/api/v1/runs", params={"status": "QUEUED,RUNNING,CANCELING", "page_size": "1"}
        )
        if r.status_code == 200 and not r.json()["runs"]:
            break
        await asyncio.sleep(1)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    token: str | None = None
    while True:
        params = {"page_size": "500", **({"page_token": token} if token else {})}
        r = await client.get("/api/v1/runs", params=params)
        r.raise_for_status()
        page = r.json()
        for run in page["runs"]:
            counts[run["workflow"]][run["status"]] += 1
        token = page.get("next_page_token")
        if not token:
            return {k: dict(v) for k, v in counts.items()}


async def count_pages(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> int:
    """How many items a paged listing holds, following its page tokens."""
    total, token = 0, None
    while True:
        page_params = {**params, "page_size": "500", **({"page_token": token} if token else {})}
        r = await client.get(path, params=page_params)
        r.raise_for_status()
        body = r.json()
        total += len(next(v for v in body.values() if isinstance(v, list)))
        token = body.get("next_page_token")
        if not token:
            return total


async def delivery_counts(client: httpx.AsyncClient) -> dict[str, int]:
    return {
        status: await count_pages(client, "/api/v1/webhooks/deliveries", {"status": status})
        for status in ("PENDING", "DELIVERED", "FAILED")
    }


def verdict(
    windows: list[dict[str, Any]], runs: dict[str, dict[str, int]], canceled: int
) -> list[str]:
    """Why the soak failed; empty if it passed."""
    reasons = []
    for window in windows:
        for kind, figures in window["kinds"].items():
            server = sum(n for s, n in figures["statuses"].items() if int(s) >= 500)
            if server:
                reasons.append(f"window {window['index'] + 1}: {kind}: {server} answer(s) 5xx")
            transport = figures["errors"] - server
            if transport:
                examples = "; ".join(figures["error_examples"][:2])
                reasons.append(
                    f"window {window['index'] + 1}: {kind}: {transport} failed: {examples}"
                )
    first, last = windows[0], windows[-1]
    if len(windows) > 1 and first["rss_mb"] and last["rss_mb"]:
        grown = last["rss_mb"] - first["rss_mb"]
        limit = min(first["rss_mb"] * RSS_GROWTH_SHARE, RSS_GROWTH_BYTES / 2**20)
        if grown > limit:
            reasons.append(
                f"RSS grew by {grown:.1f} MB ({first['rss_mb']:.1f} -> {last['rss_mb']:.1f} MB),"
                f" more than {limit:.1f} MB"
            )
    if len(windows) > 1 and first["fds"] is not None and last["fds"] is not None:
        if last["fds"] - first["fds"] > FD_GROWTH:
            reasons.append(f"file descriptors grew from {first['fds']} to {last['fds']}")
    quick, slow = runs.get("soak-quick", {}), runs.get("soak-slow", {})
    unexpected = {s: n for s, n in quick.items() if s != "SUCCEEDED"}
    if unexpected:
        reasons.append(f"soak-quick runs not SUCCEEDED: {unexpected}")
    slow_bad = {s: n for s, n in slow.items() if s not in ("CANCELED", "SUCCEEDED")}
    if slow_bad:
        reasons.append(f"soak-slow runs neither CANCELED nor SUCCEEDED: {slow_bad}")
    if slow.get("CANCELED", 0) < canceled:
        reasons.append(f"{canceled} cancels accepted but {slow.get('CANCELED', 0)} runs CANCELED")
    return reasons


def slower(first: dict[str, Any], last: dict[str, Any]) -> list[str]:
    """Kinds whose p99 more than doubled (and by more than half a second): not a failure (a
    shared machine makes timings noisy), but worth a look."""
    notes = []
    for kind in KINDS:
        a, b = first["kinds"][kind]["p99_ms"], last["kinds"][kind]["p99_ms"]
        if a is not None and b is not None and b > 2 * a and b - a > 500:
            notes.append(f"{kind} p99 grew from {a:.0f} ms to {b:.0f} ms")
    return notes


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_window(window: dict[str, Any]) -> None:
    fds = "-" if window["fds"] is None else f"{window['fds']:.0f}"
    span = f"{window['start_s']:.0f}-{window['end_s']:.0f} s"
    print(f"window {window['index'] + 1}  {span}   RSS {_ms(window['rss_mb'])} MB   fds {fds}")
    print(f"  {'kind':<13}{'count':>7}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}  statuses")
    for kind, f in window["kinds"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(f["statuses"].items()))
        print(
            f"  {kind:<13}{f['count']:>7}{_ms(f['p50_ms']):>10}{_ms(f['p99_ms']):>10}"
            f"{f['errors']:>8}  {statuses}"
        )


def print_comparison(first: dict[str, Any], last: dict[str, Any]) -> None:
    print(f"first vs last window ({first['index'] + 1} vs {last['index'] + 1})")
    print(f"  {'':<13}{'first':>12}{'last':>12}")
    print(f"  {'RSS MB':<13}{_ms(first['rss_mb']):>12}{_ms(last['rss_mb']):>12}")
    print(f"  {'fds':<13}{_ms(first['fds']):>12}{_ms(last['fds']):>12}")
    for kind in KINDS:
        a, b = first["kinds"][kind], last["kinds"][kind]
        print(f"  {kind + ' p99':<13}{_ms(a['p99_ms']):>12}{_ms(b['p99_ms']):>12}")


async def soak(args: argparse.Namespace, home: Path) -> int:
    duration = args.minutes * 60
    window_seconds = 60.0 if args.minutes >= 4 else duration / 4
    recorder = Recorder(window_seconds, duration)
    hook_port, port = free_port(), free_port()
    received = home / "deliveries.txt"
    deliveries_seen = Deliveries(received, recorder)
    hook_url = f"http://127.0.0.1:{hook_port}/hook"
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    with receiving(hook_port, received), serve(home, port) as proc:
        async with httpx.AsyncClient(
            base_url=base,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=REQUEST_TIMEOUT,
            limits=limits,
        ) as client:
            await prepare(client, hook_url)
            print(
                f"soak: {args.minutes:g} min, {args.concurrency} loops, windows of "
                f"{window_seconds:.0f} s, server pid {proc.pid} on {base}",
                flush=True,
            )
            mix = Mix(client, recorder, hook_url)
            recorder.start()
            deadline = recorder.t0 + duration
            tasks = [asyncio.create_task(mix.loop(deadline)) for _ in range(args.concurrency)]
            tasks.append(asyncio.create_task(sampler(recorder, proc.pid, 5.0, deadline)))
            shown = 0
            while not all(t.done() for t in tasks[:-1]):
                await asyncio.sleep(1)
                deliveries_seen.read()
                current = int((time.monotonic() - recorder.t0) / window_seconds)
                while shown < min(current, len(recorder.windows)):
                    print_window(recorder.windows[shown].summary())
                    shown += 1
            await asyncio.gather(*tasks)
            runs = await settle(client, 45)
            await asyncio.sleep(2)  # the last deliveries of the last runs
            deliveries = await delivery_counts(client)
    deliveries_seen.read()
    windows = [w.summary() for w in recorder.windows]
    for window in windows[shown:]:
        print_window(window)
    print_comparison(windows[0], windows[-1])
    reasons = verdict(windows, runs, len(mix.canceled))
    for note in slower(windows[0], windows[-1]):
        print(f"note: {note}")
    print(f"runs started: {mix.started}; by workflow and status: {json.dumps(runs)}")
    print(
        f"webhook deliveries received: {deliveries_seen.count}; delivery log: "
        f"{json.dumps(deliveries)}"
    )
    print("PASS: flat" if not reasons else "FAIL:\n  " + "\n  ".join(reasons))
    report = {
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "window_seconds": window_seconds,
        "mix": MIX,
        "tolerances": {
            "rss_growth_share": RSS_GROWTH_SHARE,
            "rss_growth_mb": RSS_GROWTH_BYTES / 2**20,
            "fd_growth": FD_GROWTH,
        },
        "windows": windows,
        "runs": runs,
        "runs_started": mix.started,
        "cancels_accepted": len(mix.canceled),
        "webhooks": {"received": deliveries_seen.count, "events": dict(deliveries_seen.events)},
        "delivery_log": deliveries,
        "passed": not reasons,
        "reasons": reasons,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log = args.json.with_name(args.json.stem + "-server.log")
    shutil.copy(home / "serve.log", log)
    print(f"report: {args.json}; server log: {log}")
    return 0 if not reasons else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="request loops (default 8)")
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "bench" / "results" / "soak.json",
        help="the report (default bench/results/soak.json)",
    )
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)  # the receiver process
    parser.add_argument("--receive-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receive:
        receive(args.receive, args.receive_into)
        return 0
    if args.minutes <= 0 or args.concurrency < 1:
        parser.error("--minutes must be positive and --concurrency at least 1")
    with tempfile.TemporaryDirectory(prefix="legato-soak-") as home:
        return asyncio.run(soak(args, Path(home)))


if __name__ == "__main__":
    sys.exit(main())
