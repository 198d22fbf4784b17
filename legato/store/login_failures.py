"""Failed logins counted per subject (a user name or a client address), shared by every API
process through the database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import login_failures

__all__ = ["clear_failures", "failure_rows", "purge_failures", "record_failure"]


async def failure_rows(conn: AsyncConnection, subjects: Iterable[str]) -> dict[str, Row[Any]]:
    query = select(login_failures).where(login_failures.c.subject.in_(list(subjects)))
    return {r.subject: r for r in await conn.execute(query)}


async def record_failure(
    conn: AsyncConnection,
    subject: str,
    now: float,
    *,
    window: float,
    limit: int,
    lockout: float,
    max_lockout: float,
) -> float | None:
    """Count one failure; failures older than ``window`` are forgotten. From the ``limit``-th
    on, the subject is locked out, twice as long with each further failure (up to
    ``max_lockout``). Answers the time the subject is locked until, if it is."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    stmt = upsert(login_failures).values(
        subject=subject, failures=1, last_failure_at=now, locked_until=None
    )
    count = stmt.on_conflict_do_update(
        index_elements=["subject"],
        set_={
            "failures": case(
                (login_failures.c.last_failure_at < now - window, 1),
                else_=login_failures.c.failures + 1,
            ),
            "last_failure_at": now,
        },
    ).returning(login_failures.c.failures)
    failures = int((await conn.execute(count)).scalar_one())
    if failures < limit:
        return None
    until: float = now + min(lockout * 2.0 ** min(failures - limit, 30), max_lockout)
    await conn.execute(
        update(login_failures).where(login_failures.c.subject == subject).values(locked_until=until)
    )
    return until


async def clear_failures(conn: AsyncConnection, subject: str) -> None:
    await conn.execute(delete(login_failures).where(login_failures.c.subject == subject))


async def purge_failures(conn: AsyncConnection, before: float) -> None:
    """Forget subjects whose last failure is older than ``before`` and that are not locked."""
    await conn.execute(
        delete(login_failures).where(
            login_failures.c.last_failure_at < before,
            (login_failures.c.locked_until.is_(None)) | (login_failures.c.locked_until < before),
        )
    )
