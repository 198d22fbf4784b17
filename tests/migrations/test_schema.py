"""A database migrated by the Alembic chain equals the table metadata, on both stores."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from legato.store.database import normalize_url
from legato.store.tables import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        d
        for d in compare_metadata(context, metadata)
        # expression indexes cannot be reflected on SQLite; the chain creates ix_steps_claim
        if not (isinstance(d, tuple) and getattr(d[1], "name", "") == "ix_steps_claim")
    ]


async def test_migrated_schema_matches_metadata(database_url: str) -> None:
    engine = create_async_engine(normalize_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
