"""Namespaces and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import api_keys, namespaces

__all__ = [
    "find_key",
    "find_namespace",
    "insert_key",
    "insert_namespace",
    "list_namespaces",
    "namespace_step_modules",
    "update_namespace",
]


async def find_namespace(conn: AsyncConnection, name: str) -> Row[Any] | None:
    return (await conn.execute(select(namespaces).where(namespaces.c.name == name))).first()


async def namespace_by_id(conn: AsyncConnection, namespace_id: int) -> Row[Any] | None:
    return (await conn.execute(select(namespaces).where(namespaces.c.id == namespace_id))).first()


async def list_namespaces(conn: AsyncConnection) -> list[Row[Any]]:
    return list(await conn.execute(select(namespaces).order_by(namespaces.c.name)))


async def insert_namespace(conn: AsyncConnection, name: str, now: float) -> Row[Any]:
    return (
        await conn.execute(
            insert(namespaces).returning(*namespaces.c),
            {"name": name, "created_at": now, "settings": {}},
        )
    ).one()


async def update_namespace(
    conn: AsyncConnection, namespace_id: int, values: dict[str, Any]
) -> None:
    """Sets the namespace's limits (``max_queued_runs``, ``max_concurrent_runs``,
    ``retention_days``) and ``step_modules`` named in ``values``."""
    await conn.execute(update(namespaces).where(namespaces.c.id == namespace_id).values(**values))


async def namespace_step_modules(conn: AsyncConnection, namespace_id: int) -> list[str]:
    """The module prefixes the namespace's python steps may call besides the installation's."""
    query = select(namespaces.c.step_modules).where(namespaces.c.id == namespace_id)
    return list((await conn.execute(query)).scalar() or [])


async def insert_key(
    conn: AsyncConnection, namespace_id: int, name: str, role: str, secret_hash: str, now: float
) -> Row[Any]:
    return (
        await conn.execute(
            insert(api_keys).returning(*api_keys.c),
            {
                "namespace_id": namespace_id,
                "name": name,
                "role": role,
                "secret_hash": secret_hash,
                "created_at": now,
            },
        )
    ).one()


async def find_key(conn: AsyncConnection, secret_hash: str) -> Row[Any] | None:
    return (
        await conn.execute(
            select(api_keys, namespaces.c.name.label("namespace"))
            .join(namespaces, namespaces.c.id == api_keys.c.namespace_id)
            .where(api_keys.c.secret_hash == secret_hash, api_keys.c.revoked_at.is_(None))
        )
    ).first()


async def count_keys(conn: AsyncConnection) -> int:
    return len((await conn.execute(select(api_keys.c.id).limit(1))).all())
