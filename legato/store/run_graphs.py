"""Run graphs in the database: load them (locked), insert new runs and steps, and write back
what the planner changed, with the events, values, errors and statistics it produced."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Insert, Select
from sqlalchemy.types import TypeEngine

from legato.model.advance import Effects, RunGraph
from legato.model.definition import WorkflowDefinition
from legato.model.definition_loading import definition_from_data
from legato.model.records import (
    RUN_SET_AT_START,
    STEP_SET_AT_START,
    ClaimedStep,
    RunState,
    StepState,
    value_type,
)
from legato.model.states import RUN_TERMINAL
from legato.store.claims import mirror_claim, mirror_run_start
from legato.store.database import CHANNEL, Tx, dump_json
from legato.store.direct import DirectStatement, fetch, ids_in, run_many
from legato.store.outbox import RunFacts, remember_runs
from legato.store.outbox import enqueue as enqueue_webhooks
from legato.store.stats import record_durations
from legato.store.tables import (
    events,
    run_errors,
    run_labels,
    run_values,
    runs,
    steps,
    workflows,
)

__all__ = [
    "DefinitionCache",
    "GraphCache",
    "insert_events",
    "insert_runs",
    "insert_steps",
    "load_graphs",
    "persist",
    "run_row",
    "step_row",
]

_RUN_FIELDS = [f.name for f in fields(RunState) if f.name != "dirty"]
_STEP_FIELDS = [f.name for f in fields(StepState) if f.name not in ("dirty", "parent")]
# updates leave what never changes after creation (and the indexes over it) alone
_RUN_MUTABLE = [n for n in _RUN_FIELDS if n not in RUN_SET_AT_START]
_STEP_MUTABLE = [n for n in _STEP_FIELDS if n not in STEP_SET_AT_START]

_update_runs = DirectStatement(
    update(runs)
    .where(runs.c.id == bindparam("b_id"))
    .values({n: bindparam(f"b_{n}") for n in _RUN_MUTABLE}),
    many=True,
)
_update_steps = DirectStatement(
    update(steps)
    .where(steps.c.id == bindparam("b_id"))
    .values(
        {
            **{n: bindparam(f"b_{n}") for n in _STEP_MUTABLE},
            # the planner clears a lease, or gives one to a step it claims for the worker
            # reporting (``claim_released``); renewals (heartbeats) are the store's, so a
            # lease never moves back to what a kept graph knew of it
            "lease_expires_at": case(
                (bindparam("b_lease_expires_at", type_=Float()).is_(None), None),
                (
                    or_(
                        steps.c.lease_expires_at.is_(None),
                        steps.c.lease_expires_at < bindparam("b_lease_expires_at"),
                    ),
                    bindparam("b_lease_expires_at"),
                ),
                else_=steps.c.lease_expires_at,
            ),
        }
    )
)


class GraphCache:
    """The run graphs this process wrote last, by run id, each valid while its run's change
    counter is the one it was written with: every write to a run or its steps moves the
    counter (``persist``, the claim, step reports, the limits), so a graph whose counter
    still matches the row just locked holds what the database holds, run and steps, and
    neither is read again. Graphs go in only once their transaction committed, and out when
    taken."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._graphs: OrderedDict[int, RunGraph] = OrderedDict()

    def holds(self, run_ids: Iterable[int]) -> bool:
        """Whether a graph of any of ``run_ids`` is kept."""
        return any(r in self._graphs for r in run_ids)

    def take(self, run_id: int, change_seq: int) -> RunGraph | None:
        graph = self._graphs.pop(run_id, None)
        return graph if graph is not None and graph.run.change_seq == change_seq else None

    def claimed(
        self, steps: Iterable[ClaimedStep], counters: dict[int, int | None], worker: str
    ) -> None:
        """A claim for ``worker`` committed: ``counters`` holds the new change counter of
        each run it touched (None: put back in the queue). A kept graph one change behind
        takes in what the claim wrote (its steps and its run's start); any other is
        dropped."""
        by_run: dict[int, list[ClaimedStep]] = {}
        for c in steps:
            by_run.setdefault(c.run_id, []).append(c)
        for run_id, counter in counters.items():
            graph = self._graphs.get(run_id)
            if graph is None:
                continue
            taken = by_run.get(run_id, [])
            if counter is None or graph.run.change_seq != counter - 1 or not taken:
                del self._graphs[run_id]
                continue
            for c in taken:
                step = graph.by_id(c.id)
                if step is None or step.lease_owner is not None:
                    del self._graphs[run_id]
                    break
                mirror_claim(step, c, worker)
            else:
                mirror_run_start(graph.run, taken[0].started_at, counter)

    def keep(self, graphs: Iterable[RunGraph]) -> None:
        for graph in graphs:
            if graph.run.status in RUN_TERMINAL:
                continue  # nothing will advance it again (a retry reads it afresh)
            self._graphs[graph.run.id] = graph
            self._graphs.move_to_end(graph.run.id)
        while len(self._graphs) > self._size:
            self._graphs.popitem(last=False)


class DefinitionCache:
    """Workflow versions are immutable, so their parsed definitions are cached by row id."""

    def __init__(self) -> None:
        self._by_id: dict[int, WorkflowDefinition] = {}

    def put(self, workflow_id: int, definition: WorkflowDefinition) -> None:
        self._by_id[workflow_id] = definition

    async def get_many(
        self, conn: AsyncConnection, ids: Iterable[int]
    ) -> dict[int, WorkflowDefinition]:
        wanted = set(ids)
        missing = wanted - self._by_id.keys()
        if missing:
            rows = await conn.execute(
                select(workflows.c.id, workflows.c.definition).where(workflows.c.id.in_(missing))
            )
            for row in rows:
                self._by_id[row.id] = definition_from_data(row.definition)
        return {i: self._by_id[i] for i in wanted}


def run_row(run: RunState) -> dict[str, Any]:
    return {n: getattr(run, n) for n in _RUN_FIELDS if n != "id" or run.id}


def step_row(step: StepState) -> dict[str, Any]:
    row = {n: getattr(step, n) for n in _STEP_FIELDS if n != "id"}
    if step.parent is not None:
        row["parent_step_id"] = step.parent.id
    return row


async def load_graphs(
    conn: AsyncConnection,
    run_ids: Iterable[int],
    definitions: DefinitionCache,
    *,
    lock: bool,
    cache: GraphCache | None = None,
) -> dict[int, RunGraph]:
    """The runs (locked, on PostgreSQL) with their steps; the steps of a run whose graph
    ``cache`` holds at the row's change counter come from there."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    postgresql = conn.dialect.name == "postgresql"
    graphs: dict[int, RunGraph] = {}
    missing = ids
    if cache is not None and cache.holds(ids):
        # the counters alone (locked, on PostgreSQL): a kept graph whose counter holds is
        # what the database holds
        counters = _COUNTERS_LOCKED if lock and postgresql else _COUNTERS
        missing = []
        for run_id, change_seq in await fetch(conn, counters, {"ids": ids}):
            kept = cache.take(run_id, change_seq)
            if kept is None:
                missing.append(run_id)
            else:
                graphs[run_id] = kept
    if not missing:
        return graphs
    runs_query = _RUNS_LOCKED if lock and postgresql else _RUNS
    run_states = [
        RunState(**dict(zip(_RUN_FIELDS, row, strict=True)))
        for row in await fetch(conn, runs_query, {"ids": missing})
    ]
    defs = await definitions.get_many(conn, {r.workflow_id for r in run_states})
    steps_of: dict[int, list[StepState]] = {r.id: [] for r in run_states}
    if steps_of:
        for row in await fetch(conn, _STEPS_OF_RUNS, {"ids": list(steps_of)}):
            step = StepState(**dict(zip(_STEP_FIELDS, row, strict=True)))
            steps_of[step.run_id].append(step)
    for run in run_states:  # a graph follows the changes of the steps it is made with
        graphs[run.id] = RunGraph(run, defs[run.workflow_id], steps_of[run.id])
    return graphs


def _of_runs(
    columns: list[str], table: Table, by: str, dialect: str, *, lock: bool = False
) -> Select[Any]:
    """``columns`` of the rows of ``table`` whose ``by`` is one of the ids given as ``ids``,
    in id order; locked on PostgreSQL with ``lock`` (serialises advancement of a run)."""
    query = (
        select(*(table.c[n] for n in columns))
        .where(ids_in(table.c[by], "ids", dialect))
        .order_by(table.c.id)
    )
    return query.with_for_update() if lock else query


_RUNS = DirectStatement(lambda d: _of_runs(_RUN_FIELDS, runs, "id", d))
_RUNS_LOCKED = DirectStatement(lambda d: _of_runs(_RUN_FIELDS, runs, "id", d, lock=True))
_STEPS_OF_RUNS = DirectStatement(lambda d: _of_runs(_STEP_FIELDS, steps, "run_id", d))
# the change counters of runs: a kept graph whose counter holds is what the database holds
_COUNTERS = DirectStatement(lambda d: _of_runs(["id", "change_seq"], runs, "id", d))
_COUNTERS_LOCKED = DirectStatement(
    lambda d: _of_runs(["id", "change_seq"], runs, "id", d, lock=True)
)


async def insert_runs(conn: AsyncConnection, graphs: list[RunGraph]) -> None:
    """Insert new runs with all their steps and labels (one statement each) and give them
    their ids."""
    ids = await _insert_with_ids(conn, runs, [run_row(g.run) for g in graphs])
    for graph, run_id in zip(graphs, ids, strict=True):
        graph.run.id = run_id
        graph.run.dirty = False
        for step in graph.steps:
            step.run_id = run_id
    await insert_steps(conn, [s for g in graphs for s in g.steps])
    labels = [
        {
            "run_id": g.run.id,
            "key": k,
            "value": str(v),
            "namespace_id": g.run.namespace_id,
            "created_at": g.run.created_at,
        }
        for g in graphs
        for k, v in g.run.labels.items()
    ]
    if labels:
        await run_many(conn, _insert_plain(run_labels, tuple(labels[0])), labels)


async def _insert_with_ids(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` (all with the same keys) with one statement and answer their ids in
    order. PostgreSQL returns them; SQLite cannot return the ids of a many-row insert in
    order, so there the ids are given: the transaction holds the database's only write lock,
    and the next ids are those after the highest (the ones SQLite would pick itself)."""
    if not rows:
        return []
    keys = tuple(rows[0])
    if len(rows) == 1:
        return [(await fetch(conn, _insert_returning_id(table, keys), rows[0]))[0][0]]
    if conn.dialect.name != "sqlite":
        return [row.id for row in await conn.execute(_insert_in_order(table), rows)]
    highest = (await fetch(conn, _highest_id(table), {}))[0][0] or 0
    ids = list(range(highest + 1, highest + 1 + len(rows)))
    await run_many(
        conn,
        _insert_plain(table, (*keys, "id")),
        [{**row, "id": i} for row, i in zip(rows, ids, strict=True)],
    )
    return ids


@functools.cache
def _insert_in_order(table: Table) -> Insert:
    """PostgreSQL's many-row insert, returning the ids in the order of the rows (through
    SQLAlchemy, whose insertmanyvalues batches it)."""
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


@functools.cache
def _insert_returning_id(table: Table, keys: tuple[str, ...]) -> DirectStatement:
    return DirectStatement(
        insert(table).values({k: bindparam(k) for k in keys}).returning(table.c.id)
    )


@functools.cache
def _insert_plain(table: Table, keys: tuple[str, ...]) -> DirectStatement:
    return DirectStatement(insert(table).values({k: bindparam(k) for k in keys}), many=True)


@functools.cache
def _highest_id(table: Table) -> DirectStatement:
    return DirectStatement(select(func.max(table.c.id)))


async def insert_steps(conn: AsyncConnection, new: list[StepState]) -> None:
    """Insert steps and give them their ids; parents before their foreach items."""
    for layer in ([s for s in new if s.parent is None], [s for s in new if s.parent is not None]):
        todo = [s for s in layer if s.is_new]
        if not todo:
            continue
        ids = await _insert_with_ids(conn, steps, [step_row(s) for s in todo])
        for step, step_id in zip(todo, ids, strict=True):
            step.id = step_id
            step.parent_step_id = step.parent.id if step.parent else step.parent_step_id
            step.dirty = False


async def persist(
    tx: Tx,
    graphs: Iterable[RunGraph],
    fx: Effects,
    now: float,
    before_effects: Callable[[], Awaitable[None]] | None = None,
) -> list[StepState]:
    """Write every dirty run and step, then (after ``before_effects``, which may add raw
    event rows) the events, values, errors and duration statistics. Answers the steps it
    inserted or updated."""
    conn = tx.conn
    graphs = list(graphs)
    removed = {s.run_id for s in fx.removed_steps}
    touched: list[StepState] = []  # what changed, from each graph's journal of its steps
    for g in graphs:  # a change to its steps is a change of the run (its counter moves)
        changed = g.changed()
        if changed or g.run.id in removed:
            g.run.dirty = True
        touched.extend(changed)
    await insert_steps(conn, [s for s in touched if s.is_new])
    if fx.removed_steps:
        await conn.execute(delete(steps).where(steps.c.id.in_([s.id for s in fx.removed_steps])))
    step_updates = [
        {"b_id": s.id, **{f"b_{n}": getattr(s, n) for n in _STEP_MUTABLE}}
        for s in touched
        if s.dirty
    ]
    await run_many(conn, _update_steps, step_updates)
    run_updates = []
    for g in graphs:
        if g.run.dirty:
            g.run.updated_at = now
            g.run.change_seq += 1
            run_updates.append(
                {"b_id": g.run.id, **{f"b_{n}": getattr(g.run, n) for n in _RUN_MUTABLE}}
            )
    await run_many(conn, _update_runs, run_updates)
    for g in graphs:
        g.run.dirty = False
    for s in touched:
        s.dirty = False
    if before_effects is not None:
        await before_effects()
    # what webhooks need of these runs, known here, and to the process once committed
    known = {g.run.id: (g.run.namespace_id, g.run.workflow_name, g.run.notify_url) for g in graphs}
    await write_effects(tx, fx, known)
    tx.after_commit(lambda: remember_runs(conn, known))
    return touched


async def insert_events(
    tx: Tx,
    rows: list[dict[str, Any]],
    known: Mapping[int, RunFacts] | None = None,
) -> None:
    """Record events, and queue their webhooks in the same transaction (the outbox);
    ``known``: the facts of runs the transaction holds. On PostgreSQL the events go last,
    in one statement that also sends the transaction's NOTIFY (one round trip fewer)."""
    await enqueue_webhooks(tx.conn, rows, known)
    if not rows:
        return
    if tx.conn.dialect.name != "postgresql":
        await run_many(tx.conn, _INSERT_EVENTS, rows)
    elif tx.last is None:
        tx.last = _EventsLast(tx.conn, list(rows))
    else:
        assert isinstance(tx.last, _EventsLast), "only the events go last"
        tx.last.rows.extend(rows)


_EVENT_KEYS = ("run_id", "step_id", "step_key", "type", "status", "message", "time", "data")
_INSERT_EVENTS = _insert_plain(events, _EVENT_KEYS)

#: PostgreSQL: the events as one array per column, in their order, and the NOTIFY payload
#: (NULL: none); the insert runs whether or not the NOTIFY does
_EVENT_ARRAYS: dict[str, tuple[str, TypeEngine[Any]]] = {
    "run_id": ("bigint", BigInteger()),
    "step_id": ("bigint", BigInteger()),
    "step_key": ("text", String()),
    "type": ("text", String()),
    "status": ("text", String()),
    "message": ("text", String()),
    "data": ("text", String()),  # JSON text, cast to jsonb
    "time": ("float8", Float()),
}
_EVENT_COLUMNS = ", ".join(_EVENT_ARRAYS)
_EVENT_VALUES = ", ".join(
    "CAST(u.data AS jsonb)" if k == "data" else f"u.{k}" for k in _EVENT_ARRAYS
)
_EVENT_UNNEST = ", ".join(f"CAST(:{k} AS {t}[])" for k, (t, _) in _EVENT_ARRAYS.items())
_INSERT_EVENTS_NOTIFYING = DirectStatement(
    text(
        f"""WITH written AS (
          INSERT INTO events ({_EVENT_COLUMNS})
          SELECT {_EVENT_VALUES}
            FROM unnest({_EVENT_UNNEST}) WITH ORDINALITY AS u({_EVENT_COLUMNS}, n)
           ORDER BY u.n)
        SELECT pg_notify('{CHANNEL}', :payload) WHERE :payload IS NOT NULL"""
    ).bindparams(
        *(bindparam(k, type_=ARRAY(t)) for k, (_, t) in _EVENT_ARRAYS.items()),
        bindparam("payload", type_=String()),
    )
)


class _EventsLast:
    """The events of a PostgreSQL transaction, written after its other statements with the
    first of its NOTIFY payloads."""

    def __init__(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        self.conn = conn
        self.rows = rows

    async def __call__(self, payloads: list[str]) -> list[str]:
        rows = self.rows
        params: dict[str, Any] = {k: [r.get(k) for r in rows] for k in _EVENT_ARRAYS}
        params["data"] = [dump_json(d) for d in params["data"]]  # as the column stores None
        params["payload"] = payloads[0] if payloads else None
        await fetch(self.conn, _INSERT_EVENTS_NOTIFYING, params)
        return payloads[1:]


_INSERT_VALUES = _insert_plain(
    run_values, ("run_id", "step_id", "scope", "name", "type", "value", "created_at")
)
_INSERT_ERRORS = _insert_plain(
    run_errors, ("run_id", "step_id", "step_key", "code", "message", "time")
)


async def write_effects(tx: Tx, fx: Effects, known: Mapping[int, RunFacts] | None = None) -> None:
    conn = tx.conn
    if fx.events or fx.raw_events:
        rows = (
            [
                {
                    "run_id": e["run"].id,
                    "step_id": e["step"].id if e["step"] else None,
                    "step_key": e["step"].key if e["step"] else None,
                    "type": e["type"],
                    "status": e["status"],
                    "message": e["message"],
                    "time": e["time"],
                    "data": e["data"],
                }
                for e in fx.events
            ]
            + fx.raw_events  # the continuation's claims come after what released them
        )
        await insert_events(tx, rows, known)
        fx.events.clear()
        fx.raw_events.clear()
    if fx.values:
        await run_many(
            conn,
            _INSERT_VALUES,
            [
                {
                    "run_id": v["run"].id,
                    "step_id": v["step"].id if v["step"] else None,
                    "scope": v["scope"],
                    "name": v["name"],
                    "type": value_type(v["value"]),
                    "value": v["value"],
                    "created_at": v["run"].updated_at,
                }
                for v in fx.values
            ],
        )
        fx.values.clear()
    if fx.errors:
        await run_many(
            conn,
            _INSERT_ERRORS,
            [
                {
                    "run_id": e["run"].id,
                    "step_id": e["step"].id if e["step"] else None,
                    "step_key": e["step"].key if e["step"] else None,
                    "code": e["code"],
                    "message": e["message"],
                    "time": e["time"],
                }
                for e in fx.errors
            ],
        )
        fx.errors.clear()
    if fx.durations:
        await record_durations(conn, fx.durations)
        fx.durations.clear()
