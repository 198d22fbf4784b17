"""What browser sessions need from the store: the installation's signing secret (kept in the
``default`` namespace's settings) and whether the key or user a session was opened with is
still valid."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import api_keys, namespaces, users

__all__ = ["active_key", "active_user", "read_setting", "write_setting"]


async def read_setting(conn: AsyncConnection, namespace: str, name: str) -> Any:
    row = (
        await conn.execute(select(namespaces.c.settings).where(namespaces.c.name == namespace))
    ).first()
    return None if row is None else (row.settings or {}).get(name)


async def write_setting(conn: AsyncConnection, namespace: str, name: str, value: Any) -> bool:
    """Sets one entry of the namespace's settings; False when the namespace does not exist."""
    row = (
        await conn.execute(select(namespaces.c.settings).where(namespaces.c.name == namespace))
    ).first()
    if row is None:
        return False
    settings = {**(row.settings or {}), name: value}
    await conn.execute(
        update(namespaces).where(namespaces.c.name == namespace).values(settings=settings)
    )
    return True


async def active_key(conn: AsyncConnection, key_id: int) -> Row[Any] | None:
    """The key (with its namespace's name) unless it was revoked."""
    return (
        await conn.execute(
            select(api_keys, namespaces.c.name.label("namespace"))
            .join(namespaces, namespaces.c.id == api_keys.c.namespace_id)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        )
    ).first()


async def active_user(conn: AsyncConnection, user_id: int) -> Row[Any] | None:
    """The user (with its namespace's name) unless disabled."""
    return (
        await conn.execute(
            select(users, namespaces.c.name.label("namespace"))
            .join(namespaces, namespaces.c.id == users.c.namespace_id)
            .where(users.c.id == user_id, users.c.disabled_at.is_(None))
        )
    ).first()
