"""An aiosqlite-shaped connection that runs SQLite calls inline, on the event loop's thread.

SQLite statements on a local file take microseconds; aiosqlite moves each call (execute,
fetch, close) to a helper thread and back, and those hops cost more than the statements and
made them the engine's bottleneck. SQLAlchemy's aiosqlite dialect accepts any connection with
aiosqlite's shape through ``async_creator``, so this one keeps SQLAlchemy's async API while
the calls stay on the loop. Lock waits are kept short (``busy_timeout``) and retried with
async sleeps by :class:`legato.store.database.Database`, so another process holding the
write lock never blocks the loop for long.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["InlineConnection", "inline_connector"]


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue: runs the request at once."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # SQLAlchemy checks it to know the connection is open
        self._tx = _ImmediateQueue()

    @property
    def raw(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for statements sent past SQLAlchemy (direct.py)."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    def begin(self, statement: str) -> None:
        """Open a transaction (``BEGIN`` or ``BEGIN IMMEDIATE``), at once."""
        self._conn.execute(statement)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)


def inline_connector(path: str) -> Callable[[], Any]:
    """The ``async_creator`` for ``create_async_engine``."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: SQLAlchemy may close pooled connections from a finalizer
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        return InlineConnection(conn)

    return connect
