"""Users with passwords and the JWKS registered per namespace."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import jwks, namespaces, users

__all__ = [
    "delete_jwks",
    "delete_user",
    "find_jwks",
    "find_jwks_by_audience",
    "find_jwks_by_issuer",
    "find_user",
    "find_users",
    "insert_jwks",
    "insert_user",
    "list_jwks",
    "list_users",
]


def _users() -> Any:
    return select(users, namespaces.c.name.label("namespace")).join(
        namespaces, namespaces.c.id == users.c.namespace_id
    )


def _jwks() -> Any:
    return select(jwks, namespaces.c.name.label("namespace")).join(
        namespaces, namespaces.c.id == jwks.c.namespace_id
    )


async def insert_user(
    conn: AsyncConnection,
    namespace_id: int,
    username: str,
    password_hash: str,
    role: str,
    now: float,
) -> Row[Any]:
    return (
        await conn.execute(
            insert(users).returning(*users.c),
            {
                "namespace_id": namespace_id,
                "username": username,
                "password_hash": password_hash,
                "role": role,
                "created_at": now,
            },
        )
    ).one()


async def find_users(conn: AsyncConnection, username: str) -> list[Row[Any]]:
    """Enabled users of that name, in any namespace (with the namespace's name)."""
    query = _users().where(users.c.username == username, users.c.disabled_at.is_(None))
    return list(await conn.execute(query.order_by(users.c.id)))


async def find_user(conn: AsyncConnection, user_id: int) -> Row[Any] | None:
    """The enabled user with this id."""
    query = select(users).where(users.c.id == user_id, users.c.disabled_at.is_(None))
    return (await conn.execute(query)).first()


async def list_users(conn: AsyncConnection, namespace_id: int | None = None) -> list[Row[Any]]:
    query = _users()
    if namespace_id is not None:
        query = query.where(users.c.namespace_id == namespace_id)
    return list(await conn.execute(query.order_by(users.c.id)))


async def delete_user(conn: AsyncConnection, user_id: int, namespace_id: int | None) -> bool:
    query = delete(users).where(users.c.id == user_id)
    if namespace_id is not None:
        query = query.where(users.c.namespace_id == namespace_id)
    result = await conn.execute(query)
    return bool(result.rowcount)


async def insert_jwks(conn: AsyncConnection, namespace_id: int, values: dict[str, Any]) -> Row[Any]:
    return (
        await conn.execute(
            insert(jwks).returning(*jwks.c), {**values, "namespace_id": namespace_id}
        )
    ).one()


async def find_jwks(conn: AsyncConnection, identifier: str) -> Row[Any] | None:
    return (await conn.execute(_jwks().where(jwks.c.identifier == identifier))).first()


async def find_jwks_by_audience(
    conn: AsyncConnection, issuer: str | None, audience: str
) -> list[Row[Any]]:
    """Registrations that would accept the same tokens: same issuer (or none), same audience."""
    query = _jwks().where(jwks.c.audience == audience)
    if issuer is None:
        query = query.where(jwks.c.issuer.is_(None))
    else:
        query = query.where(jwks.c.issuer == issuer)
    return list(await conn.execute(query))


async def find_jwks_by_issuer(conn: AsyncConnection, issuer: str) -> list[Row[Any]]:
    return list(await conn.execute(_jwks().where(jwks.c.issuer == issuer).limit(2)))


async def list_jwks(conn: AsyncConnection, namespace_id: int | None = None) -> list[Row[Any]]:
    query = _jwks()
    if namespace_id is not None:
        query = query.where(jwks.c.namespace_id == namespace_id)
    return list(await conn.execute(query.order_by(jwks.c.id)))


async def delete_jwks(conn: AsyncConnection, identifier: str, namespace_id: int | None) -> bool:
    query = delete(jwks).where(jwks.c.identifier == identifier)
    if namespace_id is not None:
        query = query.where(jwks.c.namespace_id == namespace_id)
    result = await conn.execute(query)
    return bool(result.rowcount)
