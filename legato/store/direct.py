"""The hot statements of write transactions, sent through the driver of the transaction's own
connection.

SQLAlchemy's work per statement (cache keys, compiled-cache look-ups, building parameters,
the greenlet hop, result objects) cost the engine more than SQLite itself. A
:class:`DirectStatement` is written once as Core (one source for both stores' SQL), compiled
once per dialect, and its parameters are bound by position with the types' own bind and
result processors, taken once. It runs inside the transaction SQLAlchemy opened, on the same
connection, so it sees and is seen by every other statement of that transaction; errors
come out as SQLAlchemy's (``IntegrityError``, ``OperationalError``…), so the callers' retry
and error handling stay the same, and statement listeners (``before_cursor_execute``) still
hear each one.

Only statements without expanding parameters can be direct: a list of ids goes as one array
(:func:`ids_in`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, Select, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import JSON, BigInteger, TypeEngine

__all__ = ["DirectStatement", "fetch", "ids_in", "in_list_sql", "list_type", "run", "run_many"]

Row = tuple[Any, ...]
_Processor = Callable[[Any], Any] | None


class _Compiled:
    """A statement as one dialect sends it: its SQL, how a row of named parameters becomes
    positional values, and how the driver's result rows become Python values."""

    __slots__ = ("_defaults", "_names", "_processed", "postgresql", "results", "sql")

    def __init__(
        self,
        sql: str,
        slots: Sequence[tuple[str, Any, _Processor]],
        results: tuple[_Processor, ...],
        postgresql: bool,
    ) -> None:
        self.sql = sql
        #: each positional parameter's name, and its value when a row does not give it
        self._names = tuple(name for name, _, _ in slots)
        self._defaults = tuple(default for _, default, _ in slots)
        #: the positions whose type has a bind processor (JSON, mostly)
        self._processed = tuple((i, proc) for i, (_, _, proc) in enumerate(slots) if proc)
        #: each result column's processor (None: the driver's value as it is)
        self.results = results
        self.postgresql = postgresql

    def bind(self, params: Mapping[str, Any]) -> list[Any]:
        get = params.get
        values = [get(n, d) for n, d in zip(self._names, self._defaults, strict=True)]
        for i, proc in self._processed:
            values[i] = proc(values[i])
        return values

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Row]:
        procs = self.results
        if not any(procs):
            return [tuple(r) for r in raw]
        return [tuple(v if p is None else p(v) for v, p in zip(r, procs, strict=True)) for r in raw]


class DirectStatement:
    """A statement built with ``build(dialect_name)`` (or given as it is) and compiled once
    for each dialect it runs on; ``many``: for many rows of parameters at once (an insert
    then returns nothing)."""

    def __init__(
        self,
        build: ClauseElement | Callable[[str], ClauseElement],
        *,
        many: bool = False,
        result_types: Sequence[TypeEngine[Any] | None] | None = None,
    ) -> None:
        self._build = build
        self._many = many
        # a text statement's columns by position (its own typing is by name)
        self._result_types = result_types
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        stmt = self._build(dialect.name) if callable(self._build) else self._build
        compiled = stmt.compile(dialect=dialect, for_executemany=self._many)
        assert isinstance(compiled, SQLCompiler)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name} binds by name: a direct statement needs positions")
        slots = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"expanding parameter {name!r}: pass the list as one array")
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            # a literal of the statement (a CASE's constant) binds its own value
            slots.append((name, None if bind.required else bind.effective_value, proc))
        types = self._result_types
        if types is None:
            types = [c.type for c in getattr(compiled, "_result_columns", ())]
        # asyncpg answers Python values already (JSON through the codecs SQLAlchemy set on
        # the connection); SQLite answers JSON as text and booleans as integers
        postgresql = dialect.name == "postgresql"
        results = tuple(
            None
            if t is None or postgresql
            else t.dialect_impl(dialect).result_processor(dialect, None)
            for t in types
        )
        return _Compiled(compiled.string, tuple(slots), results, postgresql)


def list_type(dialect: str, element: TypeEngine[Any] | None = None) -> TypeEngine[Any]:
    """How a list goes as one parameter: an array on PostgreSQL, JSON text on SQLite."""
    if dialect == "postgresql":
        return ARRAY(element if element is not None else BigInteger())
    return JSON()


def in_list_sql(param: str, dialect: str) -> str:
    """``IN`` the list given as the one parameter ``:param``, for text statements."""
    if dialect == "postgresql":
        return f"= ANY(:{param})"
    return f"IN (SELECT value FROM json_each(:{param}))"


def ids_in(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the ids given as the one parameter ``name`` (a list of ints), so
    one statement serves any number of them."""
    param = bindparam(name, type_=list_type(dialect))
    if dialect == "postgresql":
        return column == func.any(param)
    each: Select[tuple[Any]] = select(literal_column("value")).select_from(func.json_each(param))
    return column.in_(each.scalar_subquery())


async def run(conn: AsyncConnection, statement: DirectStatement, params: Mapping[str, Any]) -> None:
    """Execute once, answering nothing."""
    await _execute(conn, statement, [params], many=False)


async def run_many(
    conn: AsyncConnection, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Execute once per row of parameters (an ``executemany``)."""
    if len(rows) == 1:
        await _execute(conn, statement, rows, many=False)
    elif rows:
        await _execute(conn, statement, rows, many=True)


async def fetch(
    conn: AsyncConnection, statement: DirectStatement, params: Mapping[str, Any]
) -> list[Row]:
    """Execute once, answering the rows (each a tuple, JSON decoded)."""
    return await _execute(conn, statement, [params], many=False)


async def _execute(
    conn: AsyncConnection,
    statement: DirectStatement,
    rows: Sequence[Mapping[str, Any]],
    *,
    many: bool,
) -> list[Row]:
    sync = conn.sync_connection
    assert sync is not None, "a direct statement runs in an open transaction"
    dialect = sync.dialect
    c = statement.compiled(dialect)
    bound: Any = [c.bind(r) for r in rows] if many else c.bind(rows[0])
    if sync._has_events or sync.engine._has_events:  # statement counters, tracing
        sync.dispatch.before_cursor_execute(sync, None, c.sql, bound, None, many)
    fairy = sync.connection
    if not c.postgresql:
        raw: sqlite3.Connection = fairy.driver_connection.raw  # type: ignore[union-attr]
        try:
            if many:
                raw.executemany(c.sql, bound)
                return []
            return c.rows(raw.execute(c.sql, bound).fetchall())
        except sqlite3.Error as exc:
            _raise_as_sqlalchemy(sync, exc, c.sql, bound)
    adapter: Any = fairy.dbapi_connection
    async with adapter._execute_mutex:
        try:
            if adapter._transaction is None:  # SQLAlchemy begins at the first statement
                await adapter._start_transaction()
            if many:
                await adapter._connection.executemany(c.sql, bound)
                return []
            return c.rows(await adapter._connection.fetch(c.sql, *bound))
        except Exception as exc:
            try:
                adapter._handle_exception(exc)  # the DB-API error SQLAlchemy's cursor raises
            except Exception as dbapi_error:
                _raise_as_sqlalchemy(sync, dbapi_error, c.sql, bound)
            raise  # pragma: no cover - _handle_exception always raises


def _raise_as_sqlalchemy(sync: Connection, error: Exception, sql: str, params: Any) -> NoReturn:
    """Raise ``error`` as SQLAlchemy raises a statement's: wrapped (``IntegrityError``,
    ``OperationalError``…, the driver's error as ``orig``), and a lost connection invalidated,
    so the pool replaces it and callers see the database as unreachable."""
    sync._handle_dbapi_exception(error, sql, params, None, None)
