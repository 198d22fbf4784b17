"""The reader of the read model: every status read of a run, as typed records.

Each function takes one open read connection and uses only it (a read never holds one
connection while waiting for another), with statements built once at import. A request first
reads the run's :class:`RunHead` (one indexed row); the rest is read only when the run
changed since the last read the service keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.reads import (
    ErrorRecord,
    EventRecord,
    LogRecord,
    ResourceRecord,
    RunHead,
    RunOrigin,
    RunRecord,
    StepRecord,
    ValueRecord,
)
from legato.store.database import Database, PointQuery
from legato.store.tables import (
    events,
    logs,
    resources,
    run_errors,
    run_values,
    runs,
    steps,
    workers,
)

__all__ = [
    "find_head",
    "find_heads",
    "head_now",
    "head_of_step_now",
    "namespace_full",
    "read_errors",
    "read_events",
    "read_logs",
    "read_resources",
    "read_run",
    "read_step_args",
    "read_steps",
    "read_subtree_counts",
    "read_value",
    "read_values",
    "run_origin_now",
    "worker_heartbeats",
]

_children = runs.alias("child")
_child_seqs = (
    select(cast(func.coalesce(func.sum(_children.c.change_seq), 0), BigInteger))
    .where(_children.c.parent_run_id == runs.c.id)
    .scalar_subquery()
)
_HEAD = select(
    runs.c.id, runs.c.namespace_id, runs.c.status, (runs.c.change_seq + _child_seqs), runs.c.uuid
).where(runs.c.namespace_id == bindparam("ns"))
_HEAD_BY_ID = _HEAD.where(runs.c.id == bindparam("ref"))
_HEAD_BY_UUID = _HEAD.where(runs.c.uuid == bindparam("ref"))
_HEADS = _HEAD.where(
    or_(
        runs.c.id.in_(bindparam("ids", expanding=True)),
        runs.c.uuid.in_(bindparam("uuids", expanding=True)),
    )
)

_RUN_FIELDS = RunRecord.__dataclass_fields__
_RUN = select(*(runs.c[name] for name in _RUN_FIELDS)).where(runs.c.id == bindparam("run_id"))

_STEP_FIELDS = StepRecord.__dataclass_fields__
_STEP_COLUMNS = [steps.c[name] for name in _STEP_FIELDS]
_STEPS = select(*_STEP_COLUMNS).where(steps.c.run_id == bindparam("run_id"))
_TOP_STEPS = _STEPS.where(steps.c.parent_step_id.is_(None)).order_by(steps.c.rank, steps.c.id)
_LEVEL_STEPS = _STEPS.where(steps.c.parent_step_id == bindparam("parent")).order_by(
    steps.c.rank, steps.c.id
)
_ALL_STEPS = _STEPS.order_by(steps.c.rank, steps.c.id)

_TOP_STEP_ARGS = select(steps.c.id, steps.c.args).where(
    steps.c.run_id == bindparam("run_id"), steps.c.parent_step_id.is_(None)
)

_NESTED_COUNTS = (
    select(steps.c.parent_step_id, literal_column("0"), steps.c.status, func.count())
    .where(steps.c.run_id == bindparam("run_id"), steps.c.parent_step_id.is_not(None))
    .group_by(steps.c.parent_step_id, steps.c.status)
)
_CHILD_RUN_COUNTS = (
    select(cast(null(), BigInteger), steps.c.run_id, steps.c.status, func.count())
    .where(
        steps.c.run_id.in_(bindparam("child_ids", expanding=True)),
        steps.c.parent_step_id.is_(None),
    )
    .group_by(steps.c.run_id, steps.c.status)
)
_COUNTS = union_all(_NESTED_COUNTS, _CHILD_RUN_COUNTS)

_VALUES = (
    select(
        *(run_values.c[name] for name in ValueRecord.__dataclass_fields__ if name != "step_key"),
        steps.c.key,
    )
    .select_from(run_values.outerjoin(steps, steps.c.id == run_values.c.step_id))
    .order_by(run_values.c.id)
)
_RUN_VALUES = _VALUES.where(run_values.c.run_id == bindparam("run_id"))
_VALUE = _VALUES.join(runs, runs.c.id == run_values.c.run_id).where(
    run_values.c.id == bindparam("value_id"), runs.c.namespace_id == bindparam("ns")
)
_EVENTS = (
    select(*(events.c[name] for name in EventRecord.__dataclass_fields__))
    .where(events.c.run_id == bindparam("run_id"))
    .order_by(events.c.id)
)
_ERRORS = (
    select(*(run_errors.c[name] for name in ErrorRecord.__dataclass_fields__))
    .where(run_errors.c.run_id == bindparam("run_id"))
    .order_by(run_errors.c.id)
)
_RESOURCES = (
    select(
        *(resources.c[name] for name in ResourceRecord.__dataclass_fields__ if name != "step_key"),
        steps.c.key,
    )
    .select_from(resources.outerjoin(steps, steps.c.id == resources.c.step_id))
    .where(resources.c.run_id == bindparam("run_id"))
    .order_by(resources.c.id)
)


def _heads_sql(cast_to: str, source: str, where: str, key: str = "") -> str:
    """What names a run and says whether it changed (see :class:`RunHead`), of the runs
    ``r`` that ``source`` and ``where`` select, after ``key`` if given (what the caller asked
    by); ``cast_to`` types the version on PostgreSQL."""
    return (
        f"SELECT {key}r.id, r.namespace_id, r.status, (r.change_seq + COALESCE((SELECT"
        f" SUM(c.change_seq) FROM runs c WHERE c.parent_run_id = r.id), 0)){cast_to}, r.uuid"
        f" FROM {source} WHERE {where}"
    )


def _head(row: Sequence[Any], at: int = 0) -> RunHead:
    return RunHead(row[at], row[at + 1], row[at + 2], int(row[at + 3]), row[at + 4])


_FROM_RUNS = "runs r"
_FROM_STEPS = "steps s JOIN runs r ON r.id = s.run_id"

#: The head of a run: the one read every status request makes, as plain SQL for each store.
_POINT_HEAD_BY_ID = PointQuery(
    _heads_sql("", _FROM_RUNS, "r.id = ? AND r.namespace_id = ?"),
    _heads_sql("::bigint", _FROM_RUNS, "r.id = $1::bigint AND r.namespace_id = $2::bigint"),
)
_POINT_HEAD_BY_UUID = PointQuery(
    _heads_sql("", _FROM_RUNS, "r.uuid = ? AND r.namespace_id = ?"),
    _heads_sql("::bigint", _FROM_RUNS, "r.uuid = $1::text AND r.namespace_id = $2::bigint"),
)
#: The head of the run a step (by id, of any level) belongs to.
_POINT_HEAD_OF_STEP = PointQuery(
    _heads_sql("", _FROM_STEPS, "s.id = ? AND r.namespace_id = ?"),
    _heads_sql("::bigint", _FROM_STEPS, "s.id = $1::bigint AND r.namespace_id = $2::bigint"),
)

#: The heads of several runs in one statement, of any namespace (PostgreSQL: concurrent
#: status reads share it; SQLite reads each inline, faster than any batching).
_HEADS_BY_IDS = PointQuery("", _heads_sql("::bigint", _FROM_RUNS, "r.id = ANY($1::bigint[])"))
_HEADS_BY_UUIDS = PointQuery("", _heads_sql("::bigint", _FROM_RUNS, "r.uuid = ANY($1::text[])"))
_HEADS_OF_STEPS = PointQuery(
    "", _heads_sql("::bigint", _FROM_STEPS, "s.id = ANY($1::bigint[])", key="s.id, ")
)


async def heads_now(db: Database, ids: Sequence[int]) -> dict[int, RunHead]:
    """The heads of the runs with these ids (of any namespace), as of now, by id."""
    return {row[0]: _head(row) for row in await db.rows(_HEADS_BY_IDS, list(ids))}


async def heads_by_uuid_now(db: Database, uuids: Sequence[str]) -> dict[str, RunHead]:
    """The heads of the runs with these UUIDs (of any namespace), as of now, by UUID."""
    return {row[4]: _head(row) for row in await db.rows(_HEADS_BY_UUIDS, list(uuids))}


async def head_now(db: Database, namespace_id: int, ref: int | str) -> RunHead | None:
    """A run's head as of now, outside any transaction (the hot path of status reads)."""
    query = _POINT_HEAD_BY_ID if isinstance(ref, int) else _POINT_HEAD_BY_UUID
    row = await db.point(query, ref, namespace_id)
    return None if row is None else _head(row)


async def heads_of_steps_now(db: Database, step_ids: Sequence[int]) -> dict[int, RunHead]:
    """The heads of the runs these steps (by id, of any level, any namespace) belong to, as
    of now, by step id."""
    return {row[0]: _head(row, 1) for row in await db.rows(_HEADS_OF_STEPS, list(step_ids))}


async def head_of_step_now(db: Database, namespace_id: int, step_id: int) -> RunHead | None:
    """The head of the namespace's run that step ``step_id`` belongs to, as of now."""
    row = await db.point(_POINT_HEAD_OF_STEP, step_id, namespace_id)
    return None if row is None else _head(row)


def _origin_sql(by: str, placeholder: str, second: str) -> str:
    return (
        "SELECT r.id, r.status, r.held_until, r.requestor, r.external_id, r.parent_run_id"
        f" FROM runs r WHERE r.{by} = {placeholder} AND r.namespace_id = {second}"
    )


_POINT_ORIGIN_BY_ID = PointQuery(
    _origin_sql("id", "?", "?"), _origin_sql("id", "$1::bigint", "$2::bigint")
)
_POINT_ORIGIN_BY_EXTERNAL_ID = PointQuery(
    _origin_sql("external_id", "?", "?"), _origin_sql("external_id", "$1::text", "$2::bigint")
)


_ORIGINS_BY_IDS = PointQuery(
    "",  # not used on SQLite
    "SELECT r.namespace_id, r.id, r.status, r.held_until, r.requestor, r.external_id,"
    " r.parent_run_id FROM runs r WHERE r.id = ANY($1::bigint[])",
)


async def run_origins_now(db: Database, ids: Sequence[int]) -> dict[int, tuple[int, RunOrigin]]:
    """The runs with these ids (of any namespace) with what they were started for, as of
    now: by id, each with its namespace."""
    rows = await db.rows(_ORIGINS_BY_IDS, list(ids))
    return {row[1]: (row[0], RunOrigin(*row[1:])) for row in rows}


async def run_origin_now(
    db: Database, namespace_id: int, ref: int | str, *, by_external_id: bool = False
) -> RunOrigin | None:
    """A run of the namespace by integer id (or by external id), with what it was started
    for, as of now."""
    query = _POINT_ORIGIN_BY_EXTERNAL_ID if by_external_id else _POINT_ORIGIN_BY_ID
    row = await db.point(query, ref, namespace_id)
    return None if row is None else RunOrigin(*row)


async def find_head(conn: AsyncConnection, namespace_id: int, ref: int | str) -> RunHead | None:
    """A run of the namespace by integer id or UUID; None for another tenant's run."""
    query = _HEAD_BY_ID if isinstance(ref, int) else _HEAD_BY_UUID
    row = (await conn.execute(query, {"ns": namespace_id, "ref": ref})).first()
    return None if row is None else RunHead(row[0], row[1], row[2], int(row[3]), row[4])


async def find_heads(
    conn: AsyncConnection, namespace_id: int, refs: Sequence[int | str]
) -> dict[int | str, RunHead]:
    """The namespace's runs among integer ids and UUIDs, by each of the two."""
    ids = [r for r in refs if isinstance(r, int)] or [-1]
    uuids = [r for r in refs if isinstance(r, str)] or [""]
    out: dict[int | str, RunHead] = {}
    for r in await conn.execute(_HEADS, {"ns": namespace_id, "ids": ids, "uuids": uuids}):
        head = RunHead(r[0], r[1], r[2], int(r[3]), r[4])
        out[head.id] = out[r[4]] = head
    return out


async def read_run(conn: AsyncConnection, run_id: int) -> RunRecord | None:
    row = (await conn.execute(_RUN, {"run_id": run_id})).first()
    return None if row is None else RunRecord(*row)


def _step(row: Any) -> StepRecord:
    values = list(row)
    values[8] = tuple(values[8] or ())  # needs
    return StepRecord(*values)


async def read_steps(
    conn: AsyncConnection, run_id: int, *, parent: int | None = None, all_levels: bool = False
) -> list[StepRecord]:
    """One level of a run's step tree (the top level, or the children of ``parent``)."""
    if all_levels:
        query, params = _ALL_STEPS, {"run_id": run_id}
    elif parent is None:
        query, params = _TOP_STEPS, {"run_id": run_id}
    else:
        query, params = _LEVEL_STEPS, {"run_id": run_id, "parent": parent}
    return [_step(r) for r in await conn.execute(query, params)]


async def read_step_args(conn: AsyncConnection, run_id: int) -> dict[int, Any]:
    """The resolved ``with:`` of each top-level step of the run, by step id (None until the
    step is released)."""
    return {r[0]: r[1] for r in await conn.execute(_TOP_STEP_ARGS, {"run_id": run_id})}


async def read_subtree_counts(
    conn: AsyncConnection, run_id: int, child_runs: dict[int, int]
) -> dict[int, dict[str, int]]:
    """Counts by status under every step that has children, keyed by step id, from one
    aggregate statement (no listing): nested steps (foreach items, group members) and the
    top-level steps of each sub-workflow step's child run (``child_runs``: run id -> step
    id)."""
    out: dict[int, dict[str, int]] = {}
    params = {"run_id": run_id, "child_ids": sorted(child_runs) or [-1]}
    for parent, child, status, n in await conn.execute(_COUNTS, params):
        step_id = parent if parent is not None else child_runs[child]
        out.setdefault(step_id, {})[status] = n
    return out


def _value(row: Any) -> ValueRecord:
    return ValueRecord(*row)


async def read_values(conn: AsyncConnection, run_id: int) -> list[ValueRecord]:
    """Inputs, carried values, step outputs and run outputs, in the order they were written."""
    return [_value(r) for r in await conn.execute(_RUN_VALUES, {"run_id": run_id})]


async def read_value(
    conn: AsyncConnection, namespace_id: int, value_id: int
) -> tuple[ValueRecord, RunHead] | None:
    """A value of the namespace by id, with the head of its run; None for another tenant's."""
    row = (await conn.execute(_VALUE, {"value_id": value_id, "ns": namespace_id})).first()
    if row is None:
        return None
    value = _value(row)
    head = await find_head(conn, namespace_id, value.run_id)
    return None if head is None else (value, head)


async def read_events(conn: AsyncConnection, run_id: int) -> list[EventRecord]:
    return [EventRecord(*r) for r in await conn.execute(_EVENTS, {"run_id": run_id})]


async def read_errors(conn: AsyncConnection, run_id: int) -> list[ErrorRecord]:
    return [ErrorRecord(*r) for r in await conn.execute(_ERRORS, {"run_id": run_id})]


async def read_resources(conn: AsyncConnection, run_id: int) -> list[ResourceRecord]:
    out = []
    for r in await conn.execute(_RESOURCES, {"run_id": run_id}):
        values = list(r)
        values[5] = values[5] if values[5] is not None else {}  # metadata
        out.append(ResourceRecord(*values))
    return out


async def read_logs(
    conn: AsyncConnection,
    run_id: int,
    *,
    after: int = 0,
    step_key: str | None = None,
    limit: int = 1000,
) -> list[LogRecord]:
    query = select(
        logs.c.id, logs.c.time, logs.c.level, logs.c.step_key, logs.c.attempt, logs.c.message
    ).where(logs.c.run_id == run_id, logs.c.id > after)
    if step_key is not None:
        query = query.where(logs.c.step_key == step_key)
    rows = await conn.execute(query.order_by(logs.c.id).limit(limit))
    return [LogRecord(*r) for r in rows]


_HEARTBEATS = select(workers.c.heartbeat_at, workers.c.namespaces)
_NAMESPACE_LOAD_SQL = (
    "SELECT n.max_concurrent_runs, (SELECT count(*) FROM runs r WHERE r.namespace_id = n.id"
    " AND r.status IN ('RUNNING', 'CANCELING')) FROM namespaces n WHERE n.id = {p}"
)
_POINT_NAMESPACE_LOAD = PointQuery(
    _NAMESPACE_LOAD_SQL.format(p="?"), _NAMESPACE_LOAD_SQL.format(p="$1::bigint")
)


async def worker_heartbeats(conn: AsyncConnection) -> list[tuple[float, tuple[str, ...]]]:
    """When each registered worker last beat, and the namespaces it serves (empty: all)."""
    rows = await conn.execute(_HEARTBEATS)
    return [(float(beat), tuple(serves or ())) for beat, serves in rows]


async def namespace_full(db: Database, namespace_id: int) -> bool:
    """Whether the namespace has as many active runs as its concurrent-run limit allows."""
    row = await db.point(_POINT_NAMESPACE_LOAD, namespace_id)
    return row is not None and row[0] is not None and row[1] >= row[0]
