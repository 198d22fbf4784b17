"""The keyset list of runs (newest first, paged on ``(created_at, id)``) as one statement.

A filter's values go in as parameters and its shape (which filters it has, how many statuses
and labels) picks the statement, so each shape is built and compiled once per process. The
same statement serves two ways of reading: through SQLAlchemy (:func:`list_runs`) and through
the driver itself (:func:`list_rows`, as :meth:`Database.rows`), which answers raw rows whose
JSON columns are still text, for a reader that keeps what it rendered of each run's version
and decodes only the runs that changed (:func:`summary`).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, desc, select, tuple_
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from legato.model.filters import RunFilter
from legato.model.reads import RunSummary
from legato.store.database import Database, PointQuery, decode_json
from legato.store.tables import run_labels, runs

__all__ = [
    "ID",
    "SUMMARY_COLUMNS",
    "UUID",
    "VERSION",
    "list_rows",
    "list_runs",
    "summary",
]

SUMMARY_COLUMNS = tuple(RunSummary.__dataclass_fields__)
#: Where a raw row holds the run's id, UUID and change counter (what names its version).
ID = SUMMARY_COLUMNS.index("id")
UUID = SUMMARY_COLUMNS.index("uuid")
VERSION = SUMMARY_COLUMNS.index("change_seq")
_CREATED = SUMMARY_COLUMNS.index("created_at")
_JSON = tuple(SUMMARY_COLUMNS.index(name) for name in ("labels", "error"))

Shape = tuple[Hashable, ...]
_DIALECTS = {
    "sqlite": sqlite_dialect(),
    "postgresql": asyncpg_dialect(),  # type: ignore[no-untyped-call]
}


def _plan(
    flt: RunFilter, limit: int, after: tuple[float, int] | None
) -> tuple[Shape, dict[str, Any]]:
    """The filter's shape and its values, by parameter name."""
    values: dict[str, Any] = {"ns": flt.namespace_id, "limit": limit}
    values.update({f"status_{i}": s for i, s in enumerate(flt.statuses)})
    optional = {
        "workflow": flt.workflow or None,
        "requestor": flt.requestor or None,
        "created_after": flt.created_after,
        "created_before": flt.created_before,
        "parent": flt.parent_run_id,
        "schedule": flt.schedule_id,
        "fire_time": flt.fire_time if flt.schedule_id is not None else None,
    }
    values.update({k: v for k, v in optional.items() if v is not None})
    if "fire_time" in values:  # as shown: to the millisecond
        values["fire_time_end"] = values["fire_time"] + 0.001
    labels = sorted((flt.labels or {}).items())
    for i, (key, value) in enumerate(labels):
        values[f"label_key_{i}"], values[f"label_value_{i}"] = key, value
    if after is not None:
        values["after_created"], values["after_id"] = after
    top_level = flt.parent_run_id is None and flt.top_level_only
    shape = (
        len(flt.statuses),
        tuple(k for k, v in optional.items() if v is not None),
        top_level,
        len(labels),
        after is not None,
    )
    return shape, values


@functools.lru_cache(maxsize=256)
def _statement(shape: Shape) -> Select[Any]:
    statuses, present, top_level, labels, paged = shape
    assert isinstance(statuses, int) and isinstance(present, tuple)
    assert isinstance(labels, int)
    query = select(*(runs.c[name] for name in SUMMARY_COLUMNS)).where(
        runs.c.namespace_id == bindparam("ns")
    )
    if statuses:
        query = query.where(runs.c.status.in_([bindparam(f"status_{i}") for i in range(statuses)]))
    conditions = {
        "workflow": runs.c.workflow_name == bindparam("workflow"),
        "requestor": runs.c.requestor == bindparam("requestor"),
        "created_after": runs.c.created_at >= bindparam("created_after"),
        "created_before": runs.c.created_at < bindparam("created_before"),
        "parent": runs.c.parent_run_id == bindparam("parent"),
        "schedule": runs.c.schedule_id == bindparam("schedule"),
        "fire_time": and_(
            runs.c.fire_time >= bindparam("fire_time"),
            runs.c.fire_time < bindparam("fire_time_end"),
        ),
    }
    for name in present:
        query = query.where(conditions[str(name)])
    if top_level:
        query = query.where(runs.c.parent_run_id.is_(None))
    if labels:
        # Walk the first label's index entries newest first; the rest are checked per run.
        first = run_labels.alias("first_label")
        query = query.join(first, first.c.run_id == runs.c.id).where(
            first.c.namespace_id == bindparam("ns"),
            first.c.key == bindparam("label_key_0"),
            first.c.value == bindparam("label_value_0"),
        )
        for i in range(1, labels):
            query = query.where(
                select(run_labels.c.run_id)
                .where(
                    run_labels.c.run_id == runs.c.id,
                    run_labels.c.key == bindparam(f"label_key_{i}"),
                    run_labels.c.value == bindparam(f"label_value_{i}"),
                )
                .exists()
            )
        order = (first.c.created_at, first.c.run_id)
    else:
        order = (runs.c.created_at, runs.c.id)
    if paged:
        # a row value, so both stores use the token as the index bound, not as a filter
        query = query.where(
            tuple_(*order) < tuple_(bindparam("after_created"), bindparam("after_id"))
        )
    return query.order_by(desc(order[0]), desc(order[1])).limit(bindparam("limit"))


class _Compiled:
    """A shape's statement as plain SQL for each store, with its parameters' order."""

    def __init__(self, statement: Select[Any]) -> None:
        kw = {"render_postcompile": True}
        compiled = {
            name: statement.compile(dialect=dialect, compile_kwargs=kw)
            for name, dialect in _DIALECTS.items()
        }
        self.query = PointQuery(compiled["sqlite"].string, compiled["postgresql"].string)
        #: each store's parameter names in order, and the values of those the statement
        #: fixes itself (SQLite's ``OFFSET 0``)
        self.order = {
            name: (
                tuple(c.positiontup or ()),
                {key: bind.value for key, bind in c.binds.items() if not bind.required},
            )
            for name, c in compiled.items()
        }

    def params(self, dialect: str, values: dict[str, Any]) -> list[Any]:
        names, defaults = self.order[dialect]
        return [values[n] if n in values else defaults[n] for n in names]


@functools.lru_cache(maxsize=256)
def _compiled(shape: Shape) -> _Compiled:
    return _Compiled(_statement(shape))


async def list_rows(
    db: Database, flt: RunFilter, *, limit: int, after: tuple[float, int] | None
) -> list[Sequence[Any]]:
    """The page as raw rows (columns as :data:`SUMMARY_COLUMNS`, JSON as the store gives it),
    read as of now, outside any transaction; :func:`summary` makes a row typed."""
    shape, values = _plan(flt, limit, after)
    compiled = _compiled(shape)
    return await db.rows(compiled.query, *compiled.params(db.dialect, values))


def summary(row: Sequence[Any]) -> RunSummary:
    """A raw row of :func:`list_rows` as the typed summary SQLAlchemy would have given."""
    values = list(row)
    for i in _JSON:
        if values[i] is not None:
            values[i] = decode_json(values[i])
    return RunSummary(*values)


def created_at(row: Sequence[Any]) -> float:
    return float(row[_CREATED])


async def list_runs(
    conn: AsyncConnection, flt: RunFilter, *, limit: int, after: tuple[float, int] | None
) -> list[RunSummary]:
    """The same page through SQLAlchemy, typed, on a connection the caller holds."""
    shape, values = _plan(flt, limit, after)
    return [RunSummary(*row) for row in await conn.execute(_statement(shape), values)]
