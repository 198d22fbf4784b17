"""Listing runs at scale: keyset pages, filters and their query plans, on SQLite and PostgreSQL.

    python bench/lists.py [--runs 1000000] [--stores sqlite,postgresql] [--repeat 30]
                          [--json results.json] [--keep]

Each store gets a fresh database (a new SQLite file; the PostgreSQL database
``legato_bench_lists`` dropped and created again), migrated, with three namespaces and twenty
workflows in each. ``--runs`` runs are then written straight into the tables in bulk (SQLite:
``executemany``, one transaction per 50,000 rows; PostgreSQL: ``COPY``), spread over the
namespaces, workflows, statuses, labels and 90 days of ``created_at``; a sample of them get
three steps each. No engine runs: the runs only have to be there to be listed.

The queries then go through the service layer (``app.runs.list_runs`` and ``app.runs.get``),
as the API calls them, each repeated ``--repeat`` times: p50/p95 of the call, the rows it
returned, and the plan the database chose (``EXPLAIN QUERY PLAN``; ``EXPLAIN ANALYZE``).
Listed runs are checked against their detail view (same status, message and ``updated_at``),
before and after a run is cancelled. The bench databases are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select  # noqa: E402

from bench.common import (  # noqa: E402
    SETTINGS,
    BenchError,
    load_average,
    percentiles,
    say,
    server_version,
)
from legato.model.filters import RunFilter  # noqa: E402
from legato.model.states import RUN_TERMINAL  # noqa: E402
from legato.runtime import Legato  # noqa: E402
from legato.service.principal import Principal  # noqa: E402
from legato.store import tables  # noqa: E402
from legato.store.migrate import upgrade  # noqa: E402

ADMIN_KEY = "lg_bench_admin_key_0123456789abcdef"
PG_BASE = os.environ.get("LEGATO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = "legato_bench_lists"
DAY = 86400.0
SPAN_DAYS = 90
CHUNK = 50_000  # rows per transaction (SQLite) or COPY call (PostgreSQL)
SLOW_MS = 50.0

NAMESPACES = [("default", 0.6), ("team-b", 0.3), ("team-c", 0.1)]
WORKFLOWS = [f"wf-{i:02d}" for i in range(20)]
WORKFLOW_WEIGHTS = [1.0 / (i + 1) for i in range(20)]  # a few busy workflows, a long tail
TEAMS = [f"team-{i}" for i in range(10)]
ENVS = [("prod", 0.80), ("staging", 0.15), ("dev", 0.05)]
STATUSES = [
    ("SUCCEEDED", 0.900),
    ("FAILED", 0.050),
    ("CANCELED", 0.015),
    ("TIMED_OUT", 0.005),
    ("RUNNING", 0.020),
    ("QUEUED", 0.009),
    ("CANCELING", 0.001),
]
STEP_EVERY = 50  # every 50th run has steps, and so do the newest STEP_NEWEST runs
STEP_NEWEST = 2000

WORKFLOW_YAML = """
name: {name}
description: a three-step workflow for the list bench
steps:
  - id: a
    uses: python
    with: {{function: "bench.steps:noop"}}
  - id: b
    needs: [a]
    uses: python
    with: {{function: "bench.steps:noop"}}
  - id: c
    needs: [b]
    uses: python
    with: {{function: "bench.steps:noop"}}
"""

RUN_COLUMNS = [
    "id",
    "uuid",
    "namespace_id",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "status",
    "status_message",
    "inputs",
    "vars",
    "outputs",
    "error",
    "labels",
    "priority",
    "operation_type",
    "requestor",
    "external_id",
    "idempotency_key",
    "notify_url",
    "parent_run_id",
    "parent_step_id",
    "total_steps",
    "finished_steps",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "deadline_at",
    "change_seq",
]
STEP_COLUMNS = [
    "run_id",
    "key",
    "name",
    "kind",
    "rank",
    "needs",
    "status",
    "status_message",
    "attempt",
    "max_attempts",
    "priority",
    "not_before",
    "cancel_requested",
    "outputs",
    "error",
    "created_at",
    "started_at",
    "finished_at",
]

# step statuses (a, b, c) and finished steps, by run status
STEP_STATES: dict[str, tuple[tuple[str, str, str], int]] = {
    "SUCCEEDED": (("SUCCEEDED", "SUCCEEDED", "SUCCEEDED"), 3),
    "FAILED": (("SUCCEEDED", "FAILED", "SKIPPED"), 3),
    "CANCELED": (("SUCCEEDED", "CANCELED", "CANCELED"), 3),
    "TIMED_OUT": (("SUCCEEDED", "TIMED_OUT", "SKIPPED"), 3),
    "RUNNING": (("SUCCEEDED", "RUNNING", "PENDING"), 1),
    "QUEUED": (("PENDING", "PENDING", "PENDING"), 0),
    "CANCELING": (("SUCCEEDED", "RUNNING", "PENDING"), 1),
}


@dataclass
class Query:
    """One row of the table: a list (or detail) call repeated with varying arguments."""

    name: str
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    calls: int = 0
    rows: int = 0
    samples_ms: list[float] = field(default_factory=list)
    plan: str = ""
    sql: str = ""

    @property
    def slow(self) -> bool:
        return self.p50_ms > SLOW_MS


@dataclass
class StoreResult:
    name: str
    runs: int = 0
    steps: int = 0
    fill_s: float = 0.0
    analyze_s: float = 0.0
    db_size_mb: float = 0.0
    namespace_runs: int = 0
    server: str = ""
    queries: list[Query] = field(default_factory=list)
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    cancel_check: str = ""
    wall_s: float = 0.0
    skipped: str | None = None


# -- the data ----------------------------------------------------------------------------


@dataclass
class Catalog:
    """Namespaces and workflows created through the services, before the bulk fill."""

    principals: dict[str, Principal]
    workflow_ids: dict[tuple[int, str], int]  # (namespace id, name) -> workflow id
    now: float


def run_rows(n: int, catalog: Catalog, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """``n`` runs, ids 1..n in created_at order, over the last 90 days."""
    rnd = random.Random(seed)
    ns_ids = [catalog.principals[name].namespace_id for name, _ in NAMESPACES]
    ns_weights = [w for _, w in NAMESPACES]
    statuses = [s for s, _ in STATUSES]
    status_weights = [w for _, w in STATUSES]
    envs = [e for e, _ in ENVS]
    env_weights = [w for _, w in ENVS]
    labels = {(t, e): json.dumps({"team": t, "env": e}) for t in TEAMS for e in envs}
    start = catalog.now - SPAN_DAYS * DAY
    step = SPAN_DAYS * DAY / n
    inputs = json.dumps({"n": 1})
    outputs = json.dumps({"result": "ok"})
    error = json.dumps({"code": "step_failed", "message": "boom", "step": "b"})
    choices = rnd.choices
    for i in range(1, n + 1):
        created = start + (i - 1) * step + rnd.random() * step * 0.5
        ns = choices(ns_ids, ns_weights)[0]
        wf = choices(WORKFLOWS, WORKFLOW_WEIGHTS)[0]
        status = choices(statuses, status_weights)[0]
        ended = status in RUN_TERMINAL
        started = created + 0.05
        finished = started + 1.0 + rnd.random() * 30 if ended else None
        updated = finished if finished is not None else started + 0.5
        finished_steps = STEP_STATES[status][1]
        yield (
            i,
            str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            ns,
            catalog.workflow_ids[(ns, wf)],
            wf,
            1,
            status,
            "" if ended else ("Queued" if status == "QUEUED" else "Running: b"),
            inputs,
            "{}",
            outputs if status == "SUCCEEDED" else None,
            error if status == "FAILED" else None,
            labels[(choices(TEAMS)[0], choices(envs, env_weights)[0])],
            0,
            wf,
            None,
            None,
            None,
            None,
            None,
            None,
            3,
            finished_steps,
            created,
            None if status == "QUEUED" else started,
            finished,
            updated,
            None,
            2 if ended else 1,
        )


def has_steps(run_id: int, n: int) -> bool:
    return run_id % STEP_EVERY == 0 or run_id > n - STEP_NEWEST


def step_rows(run: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Three steps a → b → c in the states the run's status implies."""
    run_id, status, created, started = run[0], run[6], run[23], run[24]
    states, _ = STEP_STATES[status]
    rows = []
    for rank, (key, state) in enumerate(zip("abc", states, strict=True)):
        t0 = (started or created) + rank
        ran = state not in ("PENDING", "SKIPPED")
        done = ran and state != "RUNNING"
        rows.append(
            (
                run_id,
                key,
                key.upper(),
                "python",
                rank,
                json.dumps([] if rank == 0 else ["ab"[rank - 1]]),
                state,
                "",
                1 if ran else 0,
                1,
                0,
                0.0,
                False,
                json.dumps({}) if state == "SUCCEEDED" else None,
                json.dumps({"code": "boom", "message": "boom"}) if state == "FAILED" else None,
                created,
                t0 if ran else None,
                t0 + 0.5 if done else None,
            )
        )
    return rows


def chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Starting a run writes one run_labels row per label (its index serves label filters); the
# bench fills runs directly, so it derives those rows the way migration 0004 does.
LABEL_ROWS_SQL = {
    "sqlite": "INSERT INTO run_labels (run_id, key, value, namespace_id, created_at) "
    "SELECT runs.id, j.key, j.value, runs.namespace_id, runs.created_at "
    "FROM runs, json_each(runs.labels) AS j",
    "postgresql": "INSERT INTO run_labels (run_id, key, value, namespace_id, created_at) "
    "SELECT runs.id, j.key, j.value, runs.namespace_id, runs.created_at "
    "FROM runs, jsonb_each_text(runs.labels) AS j",
}


def fill_sqlite(path: str, n: int, catalog: Catalog) -> int:
    """executemany, one transaction per CHUNK runs (and their steps)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        run_sql = (
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
        )
        step_sql = (
            f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(STEP_COLUMNS))})"
        )
        steps = 0
        for batch in chunks(run_rows(n, catalog), CHUNK):
            step_batch = [s for r in batch if has_steps(r[0], n) for s in step_rows(r)]
            conn.execute("BEGIN")
            conn.executemany(run_sql, batch)
            conn.executemany(step_sql, step_batch)
            conn.execute("COMMIT")
            steps += len(step_batch)
            say(f"    {batch[-1][0]:,} runs")
        conn.execute(LABEL_ROWS_SQL["sqlite"])  # what a start writes, as the migration does
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return steps
    finally:
        conn.close()


async def fill_postgresql(dsn: str, n: int, catalog: Catalog) -> int:
    """COPY, CHUNK runs (and their steps) per call."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        steps = 0
        for batch in chunks(run_rows(n, catalog), CHUNK):
            step_batch = [s for r in batch if has_steps(r[0], n) for s in step_rows(r)]
            async with conn.transaction():
                await conn.copy_records_to_table("runs", records=batch, columns=RUN_COLUMNS)
                await conn.copy_records_to_table("steps", records=step_batch, columns=STEP_COLUMNS)
            steps += len(step_batch)
            say(f"    {batch[-1][0]:,} runs")
        await conn.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), $1)", n)
        await conn.execute(LABEL_ROWS_SQL["postgresql"])
        return steps
    finally:
        await conn.close()


# -- stores ------------------------------------------------------------------------------


def fresh_sqlite(workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'legato-bench-lists.db'}"
    upgrade(url)
    return url


async def recreate_pg(base: str, drop_only: bool = False) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()


def fresh_postgresql(base: str) -> str:
    asyncio.run(recreate_pg(base))
    url = f"{base}/{PG_DATABASE}"
    upgrade(url)
    return url


async def make_catalog(url: str) -> Catalog:
    """Namespaces, keys and workflows, made through the services as an operator would."""
    app = Legato(url, settings=SETTINGS)
    await app.open()
    try:
        await app.tenancy.bootstrap(ADMIN_KEY)
        admin = await app.tenancy.authenticate(ADMIN_KEY)
        principals = {"default": admin}
        for name, _ in NAMESPACES[1:]:
            await app.tenancy.create_namespace(admin, name, {})
            ns_id = await app.tenancy.namespace_id(name)
            principals[name] = Principal(ns_id, name, "admin", name=f"bench {name}")
        for p in principals.values():
            for wf in WORKFLOWS:
                await app.workflows.apply(p, WORKFLOW_YAML.format(name=wf))
        w = tables.workflows.c
        async with app.db.read() as conn:
            rows = (await conn.execute(select(w.namespace_id, w.name, w.id))).all()
        ids = {(int(r[0]), str(r[1])): int(r[2]) for r in rows}
    finally:
        await app.close()
    return Catalog(principals, ids, time.time())


# -- measuring ---------------------------------------------------------------------------


FROM_RUNS = re.compile(r"\bFROM runs\b")


class Recorder:
    """The last SQL statement each engine ran, to ask the database for its plan."""

    def __init__(self, app: Legato) -> None:
        self.last: tuple[str, Any] | None = None
        engines = {id(app.db.reader): app.db.reader, id(app.db.writer): app.db.writer}
        for engine in engines.values():
            event.listen(engine.sync_engine, "before_cursor_execute", self._seen)
        rows = app.db.rows  # the lists' raw reads, which bypass SQLAlchemy

        async def seen_rows(query: Any, *params: Any) -> Any:
            sql = query.sqlite if app.db.is_sqlite else query.postgresql
            self._seen(None, None, sql, params)
            return await rows(query, *params)

        app.db.rows = seen_rows  # type: ignore[method-assign]

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and FROM_RUNS.search(statement):
            self.last = (statement, params)


async def plan(app: Legato, statement: str, params: Any) -> str:
    if app.db.is_sqlite:
        sql = "EXPLAIN QUERY PLAN " + statement
    else:
        sql = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + statement
    async with app.db.read() as conn:
        rows: list[Any] = list((await conn.exec_driver_sql(sql, params)).all())
    if app.db.is_sqlite:  # (id, parent, notused, detail)
        depth: dict[int, int] = {0: 0}
        lines = []
        for row in rows:
            depth[row[0]] = depth.get(row[1], 0) + 1
            lines.append("  " * (depth[row[0]] - 1) + str(row[3]))
        return "\n".join(lines)
    return "\n".join(str(row[0]) for row in rows)


Call = Callable[[int], Any]


async def timed(
    app: Legato, rec: Recorder, name: str, call: Call, repeat: int, budget_s: float = 20.0
) -> Query:
    """``call(i)`` answers the page (or view); 3 untimed calls, then up to ``repeat`` timed
    ones (fewer when a slow query would take more than ``budget_s``, at least 5)."""
    q = Query(name)
    for i in range(3):
        await call(-1 - i)
    spent = 0.0
    for i in range(repeat):
        t0 = time.perf_counter()
        answer = await call(i)
        elapsed = time.perf_counter() - t0
        q.samples_ms.append(elapsed * 1000)
        spent += elapsed
        if isinstance(answer, dict) and "runs" in answer:
            q.rows = len(answer["runs"])
        else:
            q.rows = 1
        if spent > budget_s and i >= 4:
            break
    q.calls = len(q.samples_ms)
    q.p50_ms, q.p95_ms = percentiles(q.samples_ms)
    if rec.last is not None:
        q.sql = rec.last[0]
        q.plan = await plan(app, *rec.last)
    return q


async def measure_store(name: str, url: str, catalog: Catalog, opts: argparse.Namespace) -> Any:
    app = Legato(url, settings=SETTINGS)
    await app.open()
    out: dict[str, Any] = {"queries": [], "mismatches": [], "checked": 0}
    try:
        rec = Recorder(app)
        p = catalog.principals["default"]
        ns = p.namespace_id
        r = tables.runs.c
        async with app.db.read() as conn:
            count = select(func.count()).select_from(tables.runs).where(r.namespace_id == ns)
            out["namespace_runs"] = int((await conn.execute(count)).scalar_one())
        out["server"] = await server_version(app)
        now = catalog.now

        def lister(make: Callable[[int], RunFilter], size: int = 50) -> Call:
            return lambda i: app.runs.list_runs(p, make(i), size, None)

        def by_label(labels: Callable[[int], dict[str, str]]) -> Call:
            return lister(lambda i: RunFilter(ns, labels=labels(i)))

        def window(i: int) -> RunFilter:
            start = now - (10 + (i % 60)) * DAY
            return RunFilter(ns, created_after=start, created_before=start + DAY)

        cases: list[tuple[str, Call]] = [
            ("newest page", lister(lambda i: RunFilter(ns))),
            ("status=FAILED", lister(lambda i: RunFilter(ns, statuses=["FAILED"]))),
            (
                "status=RUNNING,QUEUED",
                lister(lambda i: RunFilter(ns, statuses=["RUNNING", "QUEUED"])),
            ),
            ("workflow=wf-NN", lister(lambda i: RunFilter(ns, workflow=WORKFLOWS[i % 20]))),
            (
                "workflow+status=FAILED",
                lister(lambda i: RunFilter(ns, workflow=WORKFLOWS[i % 20], statuses=["FAILED"])),
            ),
            ("label team=x", by_label(lambda i: {"team": TEAMS[i % 10]})),
            ("label team=x,env=dev", by_label(lambda i: {"team": TEAMS[i % 10], "env": "dev"})),
            ("label no match", by_label(lambda i: {"team": f"nobody-{i}"})),
            ("created 1-day window", lister(window)),
            ("page_size=500", lister(lambda i: RunFilter(ns), 500)),
        ]
        for label, call in cases:
            say(f"  {name}: {label}")
            out["queries"].append(await timed(app, rec, label, call, opts.repeat))

        say(f"  {name}: pages 1..{opts.pages} following tokens")
        out["queries"].append(await follow_pages(app, rec, p, opts.pages))

        # A token from half-way down the namespace (about 300,000 runs deep at 1M runs): the
        # token is (created_at, id), so a page of an older window hands one over.
        tokens = []
        for i in range(10):
            older = RunFilter(ns, created_before=now - (40 + i) * DAY)
            tokens.append((await app.runs.list_runs(p, older, 50, None))["next_page_token"])
        say(f"  {name}: a deep page by token")
        out["queries"].append(
            await timed(
                app,
                rec,
                "deep page (token 45 d back)",
                lambda i: app.runs.list_runs(p, RunFilter(ns), 50, tokens[i % 10]),
                opts.repeat,
            )
        )

        newest = await app.runs.list_runs(p, RunFilter(ns), 50, None)
        ids = [int(v["id"]) for v in newest["runs"]]
        out["queries"].append(
            await timed(
                app, rec, "detail (runs.get)", lambda i: app.runs.get(p, ids[i % 50]), opts.repeat
            )
        )
        out["queries"][-1].sql = out["queries"][-1].plan = ""

        say(f"  {name}: list vs detail consistency")
        await consistency(app, p, out, now)
    finally:
        await app.close()
    return out


async def follow_pages(app: Legato, rec: Recorder, p: Principal, pages: int) -> Query:
    """Pages 1..``pages`` of the namespace's runs following ``next_page_token``; each page
    timed on its own. Checks the pages do not overlap and stay in order."""
    q = Query(f"pages 1-{pages} via tokens")
    token: str | None = None
    seen: set[int] = set()
    last_key: tuple[str, int] | None = None
    for _ in range(pages):
        t0 = time.perf_counter()
        page = await app.runs.list_runs(p, RunFilter(p.namespace_id), 50, token)
        q.samples_ms.append((time.perf_counter() - t0) * 1000)
        for v in page["runs"]:
            key = (str(v["created_at"]), int(v["id"]))
            if int(v["id"]) in seen or (last_key is not None and key > last_key):
                raise BenchError(f"page order broken at run {v['id']}")
            seen.add(int(v["id"]))
            last_key = key
        token = page["next_page_token"]
        q.rows = len(page["runs"])
        if token is None:
            break
    q.calls = len(q.samples_ms)
    q.p50_ms, q.p95_ms = percentiles(q.samples_ms)
    if rec.last is not None:
        q.sql = rec.last[0]
        q.plan = await plan(app, *rec.last)
    return q


def compare(listed: dict[str, Any], detail: dict[str, Any]) -> list[str]:
    keys = ("status", "status_message", "updated_at", "finished_at", "labels", "workflow")
    return [f"run {listed['id']} {k}" for k in keys if listed[k] != detail[k]]


async def consistency(app: Legato, p: Principal, out: dict[str, Any], now: float) -> None:
    """Listed runs against their detail view: the newest page, active runs, a deep page;
    then a run is cancelled and both views must show it at once."""
    ns = p.namespace_id
    samples: list[dict[str, Any]] = []
    for flt in (RunFilter(ns), RunFilter(ns, statuses=["RUNNING", "QUEUED", "FAILED"])):
        samples += (await app.runs.list_runs(p, flt, 50, None))["runs"][:25]
    deep = await app.runs.list_runs(p, RunFilter(ns, created_before=now - 45 * DAY), 50, None)
    samples += deep["runs"][:25]
    for item in samples:
        out["mismatches"] += compare(item, await app.runs.get(p, int(item["id"])))
    out["checked"] = len(samples)
    active = await app.runs.list_runs(p, RunFilter(ns, statuses=["RUNNING"]), 50, None)
    target = active["runs"][0] if active["runs"] else None
    if target is None:
        out["cancel_check"] = "no RUNNING run to cancel"
        return
    try:
        await app.runs.cancel(p, int(target["id"]))
    except Exception as exc:  # the check is a bonus; the figures stand without it
        out["cancel_check"] = f"cancel failed: {type(exc).__name__}: {exc}"
        return
    detail = await app.runs.get(p, int(target["id"]))
    page = await app.runs.list_runs(p, RunFilter(ns, statuses=[detail["status"]]), 50, None)
    listed = next((v for v in page["runs"] if v["id"] == target["id"]), None)
    if listed is None:
        out["mismatches"].append(f"cancelled run {target['id']} not listed as {detail['status']}")
    else:
        out["mismatches"] += compare(listed, detail)
    out["cancel_check"] = (
        f"run {target['id']} RUNNING -> {detail['status']}: list and detail agree at once"
        if listed is not None and not compare(listed, detail)
        else f"run {target['id']}: list and detail disagree after cancel"
    )


async def analyze_pg(dsn: str) -> None:
    """What autovacuum does shortly after a bulk load: fresh statistics for the planner."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE runs")
        await conn.execute("VACUUM ANALYZE steps")
    finally:
        await conn.close()


def run_store(name: str, opts: argparse.Namespace, workdir: Path) -> StoreResult:
    result = StoreResult(name)
    started = time.perf_counter()
    say(f"{name}: preparing a fresh database")
    try:
        if name == "sqlite":
            url = fresh_sqlite(workdir)
        elif name == "postgresql":
            url = fresh_postgresql(opts.pg_url)
        else:
            raise BenchError(f"unknown store {name!r}: use sqlite or postgresql")
    except OSError as exc:
        say(f"{name}: skipped ({exc})")
        result.skipped = str(exc)
        return result
    try:
        catalog = asyncio.run(make_catalog(url))
        say(f"{name}: filling {opts.runs:,} runs")
        t0 = time.perf_counter()
        if name == "sqlite":
            path = url.removeprefix("sqlite:///")
            result.steps = fill_sqlite(path, opts.runs, catalog)
        else:
            result.steps = asyncio.run(fill_postgresql(url, opts.runs, catalog))
        result.fill_s = time.perf_counter() - t0
        result.runs = opts.runs
        if name == "postgresql":
            t0 = time.perf_counter()
            asyncio.run(analyze_pg(url))
            result.analyze_s = time.perf_counter() - t0
        result.db_size_mb = db_size_mb(name, url)
        say(f"{name}: filled in {result.fill_s:.0f} s ({result.db_size_mb:.0f} MB); measuring")
        out = asyncio.run(measure_store(name, url, catalog, opts))
        result.server = out["server"]
        result.namespace_runs = out["namespace_runs"]
        result.queries = out["queries"]
        result.checked = out["checked"]
        result.mismatches = out["mismatches"]
        result.cancel_check = out["cancel_check"]
    finally:
        if opts.keep:
            say(f"{name}: kept {url}")
        else:
            if name == "postgresql":
                asyncio.run(recreate_pg(opts.pg_url, drop_only=True))
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(workdir / f"legato-bench-lists.db{suffix}").unlink(missing_ok=True)
    result.wall_s = time.perf_counter() - started
    return result


def db_size_mb(name: str, url: str) -> float:
    if name == "sqlite":
        return Path(url.removeprefix("sqlite:///")).stat().st_size / 1e6

    async def size() -> float:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            return float(await conn.fetchval("SELECT pg_database_size(current_database())")) / 1e6
        finally:
            await conn.close()

    return asyncio.run(size())


# -- output ------------------------------------------------------------------------------


def table(results: list[StoreResult]) -> str:
    lines = [f"{'store':<12}{'query':<28}{'p50 (ms)':>10}{'p95 (ms)':>10}{'rows':>7}{'calls':>7}"]
    for r in results:
        if r.skipped:
            lines.append(f"{r.name:<12}skipped: {r.skipped}")
            continue
        for q in r.queries:
            flag = "   SLOW" if q.slow else ""
            lines.append(
                f"{r.name:<12}{q.name:<28}{q.p50_ms:>10.1f}{q.p95_ms:>10.1f}{q.rows:>7}"
                f"{q.calls:>7}{flag}"
            )
    return "\n".join(lines)


def details(results: list[StoreResult]) -> str:
    lines = []
    for r in results:
        if r.skipped:
            continue
        analyze = f" + VACUUM ANALYZE {r.analyze_s:.0f} s" if r.analyze_s else ""
        verdict = "OK" if not r.mismatches else f"{len(r.mismatches)} MISMATCHES"
        lines.append(
            f"{r.name}: {r.server}; {r.runs:,} runs and {r.steps:,} steps filled in "
            f"{r.fill_s:.0f} s ({r.runs / r.fill_s:,.0f} runs/s){analyze}; database "
            f"{r.db_size_mb:,.0f} MB; queried namespace holds {r.namespace_runs:,} runs; "
            f"list vs detail: {r.checked} runs compared, {verdict}; {r.cancel_check}; "
            f"store took {r.wall_s:.0f} s"
        )
        for m in r.mismatches[:10]:
            lines.append(f"  mismatch: {m}")
    return "\n".join(lines)


def plans(results: list[StoreResult]) -> str:
    lines = []
    for r in results:
        for q in r.queries:
            if not q.plan:
                continue
            lines.append(f"--- {r.name}: {q.name} (p50 {q.p50_ms:.1f} ms)")
            lines.append(q.plan)
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/lists.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000, help="runs in the store")
    ap.add_argument("--stores", default="sqlite,postgresql", help="comma-separated")
    ap.add_argument("--repeat", type=int, default=30, help="timed calls per query")
    ap.add_argument("--pages", type=int, default=100, help="pages followed by token")
    ap.add_argument("--pg-url", default=PG_BASE, help="PostgreSQL server (no database)")
    ap.add_argument("--keep", action="store_true", help="keep the bench databases")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started, load_at_start = time.perf_counter(), load_average()
    results: list[StoreResult] = []
    workdir = Path(tempfile.mkdtemp(prefix="legato-bench-lists-"))
    try:
        for name in [s.strip() for s in opts.stores.split(",") if s.strip()]:
            results.append(run_store(name, opts, workdir))
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started
    print(table(results))
    print()
    print(details(results))
    print(
        f"machine: {os.cpu_count()} cores; load average at start {load_at_start:.1f}; "
        f"bench took {total:.0f} s; SLOW = p50 above {SLOW_MS:.0f} ms"
    )
    print()
    print(plans(results))
    if opts.json:
        data = [asdict(r) for r in results]
        opts.json.write_text(json.dumps({"results": data, "total_s": total}, indent=2))
    bad = [r.name for r in results if r.mismatches]
    if bad:
        say(f"list and detail views disagree on: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
