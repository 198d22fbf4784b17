"""Namespaces and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.database import Database, PointQuery, decode_json
from legato.store.direct import DirectStatement, fetch
from legato.store.tables import api_keys, namespaces

__all__ = [
    "count_admin_keys",
    "find_key_any",
    "find_namespace",
    "insert_key",
    "insert_namespace",
    "key_now",
    "list_keys",
    "list_namespaces",
    "namespace_step_modules",
    "queue_limit",
    "revoke_key",
    "step_modules_now",
    "update_namespace",
]


async def find_namespace(conn: AsyncConnection, name: str) -> Row[Any] | None:
    return (await conn.execute(select(namespaces).where(namespaces.c.name == name))).first()


async def namespace_by_id(conn: AsyncConnection, namespace_id: int) -> Row[Any] | None:
    return (await conn.execute(_BY_ID, {"id": namespace_id})).first()


_BY_ID = select(namespaces).where(namespaces.c.id == bindparam("id"))


async def queue_limit(conn: AsyncConnection, namespace_id: int) -> int | None:
    """The namespace's ``max_queued_runs`` (None: no limit, or no such namespace); every
    start asks, through the driver."""
    rows = await fetch(conn, _QUEUE_LIMIT, {"id": namespace_id})
    return rows[0][0] if rows else None


_QUEUE_LIMIT = DirectStatement(
    select(namespaces.c.max_queued_runs).where(namespaces.c.id == bindparam("id"))
)


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


_STEP_MODULES_SQL = "SELECT step_modules FROM namespaces WHERE id = {p}"
_STEP_MODULES = PointQuery(_STEP_MODULES_SQL.format(p="?"), _STEP_MODULES_SQL.format(p="$1"))


async def step_modules_now(db: Database, namespace_id: int) -> list[str]:
    """The namespace's own step modules, outside any transaction (the workers' check before
    they call a function; a point read, microseconds on SQLite)."""
    row = await db.point(_STEP_MODULES, namespace_id)
    return list(decode_json(row[0]) or []) if row is not None and row[0] is not None else []


async def namespace_step_modules(conn: AsyncConnection, namespace_id: int) -> list[str]:
    """The module prefixes the namespace's python steps may call besides the installation's."""
    query = select(namespaces.c.step_modules).where(namespaces.c.id == namespace_id)
    return list((await conn.execute(query)).scalar() or [])


async def insert_key(
    conn: AsyncConnection,
    namespace_id: int,
    name: str,
    role: str,
    secret_hash: str,
    now: float,
    prefix: str | None = None,
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
                "prefix": prefix,
            },
        )
    ).one()


def _keys() -> Any:
    return select(
        api_keys.c.id,
        api_keys.c.namespace_id,
        api_keys.c.name,
        api_keys.c.role,
        api_keys.c.prefix,
        api_keys.c.created_at,
        api_keys.c.last_used_at,
        namespaces.c.name.label("namespace"),
    ).join(namespaces, namespaces.c.id == api_keys.c.namespace_id)


async def list_keys(conn: AsyncConnection, namespace_id: int | None = None) -> list[Row[Any]]:
    """Keys not revoked (all namespaces, or one), without their hashes."""
    query = _keys().where(api_keys.c.revoked_at.is_(None))
    if namespace_id is not None:
        query = query.where(api_keys.c.namespace_id == namespace_id)
    return list(await conn.execute(query.order_by(api_keys.c.id)))


async def active_key(
    conn: AsyncConnection, key_id: int, namespace_id: int | None
) -> Row[Any] | None:
    query = _keys().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    if namespace_id is not None:
        query = query.where(api_keys.c.namespace_id == namespace_id)
    return (await conn.execute(query)).first()


async def revoke_key(conn: AsyncConnection, key_id: int, now: float) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


async def count_admin_keys(conn: AsyncConnection, namespace_id: int) -> int:
    """Admin keys of a namespace that are not revoked."""
    query = select(func.count()).where(
        api_keys.c.namespace_id == namespace_id,
        api_keys.c.role == "admin",
        api_keys.c.revoked_at.is_(None),
    )
    return int((await conn.execute(query)).scalar_one())


async def find_key_any(conn: AsyncConnection, secret_hash: str) -> Row[Any] | None:
    """The key with this hash, revoked or not."""
    query = select(api_keys).where(api_keys.c.secret_hash == secret_hash)
    return (await conn.execute(query)).first()


_KEY_SQL = (
    "SELECT k.id, k.namespace_id, n.name, k.role, k.name, k.secret_hash FROM api_keys k"
    " JOIN namespaces n ON n.id = k.namespace_id"
    " WHERE k.secret_hash = {p} AND k.revoked_at IS NULL"
)
_KEY_NOW = PointQuery(_KEY_SQL.format(p="?"), _KEY_SQL.format(p="$1::text"))


async def key_now(db: Database, secret_hash: str) -> tuple[Any, ...] | None:
    """A live key by its hash, outside any transaction (every request's authentication):
    ``(id, namespace_id, namespace, role, name, secret_hash)``."""
    return await db.point(_KEY_NOW, secret_hash)


async def count_keys(conn: AsyncConnection) -> int:
    return len((await conn.execute(select(api_keys.c.id).limit(1))).all())
