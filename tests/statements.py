"""Counting the SQL statements a piece of work sends, on either store: through SQLAlchemy
(every engine of the database) and through the point and row reads that bypass it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event

from legato.store.database import Database

#: How the statements of the reads that bypass SQLAlchemy are recorded: a point read of one
#: row, or a read of rows (on PostgreSQL, concurrent heads by id share one).
HEAD_READS = ("point:", "rows:")


class Statements:
    def __init__(self) -> None:
        self.sql: list[str] = []

    @property
    def count(self) -> int:
        return len(self.sql)

    def __repr__(self) -> str:
        return "\n".join(f"{i + 1}. {s[:160]}" for i, s in enumerate(self.sql))


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


@contextlib.contextmanager
def counting(db: Database) -> Iterator[Statements]:
    """Every statement ``db`` sends while the block runs (transaction control aside)."""
    seen = Statements()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            seen.sql.append(" ".join(statement.split()))

    engines = {id(e): e.sync_engine for e in (db.writer, db.reader)}.values()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_execute)
    point = db.point

    async def counted_point(query: Any, *params: Any) -> Any:
        seen.sql.append("point: " + " ".join((query.sqlite or query.postgresql).split()))
        return await point(query, *params)

    rows = db.rows

    async def counted_rows(query: Any, *params: Any) -> Any:
        seen.sql.append("rows: " + " ".join((query.sqlite or query.postgresql).split()))
        return await rows(query, *params)

    db.point = counted_point  # type: ignore[method-assign]
    db.rows = counted_rows  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del db.point
        del db.rows
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_execute)
