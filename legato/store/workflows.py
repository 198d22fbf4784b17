"""Workflow definitions: immutable versions per namespace and name."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.definition import WorkflowDefinition
from legato.store.direct import DirectStatement, fetch
from legato.store.tables import namespaces, workflows

__all__ = ["PinnedVersion", "find_workflow", "insert_version", "list_latest", "pinned_version"]


async def find_workflow(
    conn: AsyncConnection, namespace_id: int, name: str, version: int | None = None
) -> Row[Any] | None:
    """The version asked for, or the latest."""
    params: dict[str, Any] = {"namespace_id": namespace_id, "name": name}
    if version is None:
        return (await conn.execute(_LATEST, params)).first()
    return (await conn.execute(_VERSION, {**params, "version": version})).first()


@dataclass(frozen=True)
class PinnedVersion:
    """The workflow version a new run pins: its row id and number, and its namespace's
    ``max_queued_runs`` (read with it: a start needs both)."""

    id: int
    version: int
    queue_limit: int | None = None


async def pinned_version(
    conn: AsyncConnection, namespace_id: int, name: str, version: int | None
) -> PinnedVersion | None:
    """The version asked for, or the latest: what a start needs of it (one statement through
    the driver, as every start sends it)."""
    params: dict[str, Any] = {"namespace_id": namespace_id, "name": name, "version": version}
    rows = await fetch(conn, _PINNED_LATEST if version is None else _PINNED, params)
    return PinnedVersion(*rows[0]) if rows else None


def _pinned(latest: bool) -> Select[tuple[int, int, int | None]]:
    queue_limit = (
        select(namespaces.c.max_queued_runs)
        .where(namespaces.c.id == bindparam("namespace_id"))
        .scalar_subquery()
    )
    query = select(workflows.c.id, workflows.c.version, queue_limit).where(
        workflows.c.namespace_id == bindparam("namespace_id"),
        workflows.c.name == bindparam("name"),
    )
    if latest:
        return query.order_by(workflows.c.version.desc()).limit(1)
    return query.where(workflows.c.version == bindparam("version"))


_PINNED_LATEST = DirectStatement(_pinned(latest=True))
_PINNED = DirectStatement(_pinned(latest=False))

_NAMED = select(workflows).where(
    workflows.c.namespace_id == bindparam("namespace_id"), workflows.c.name == bindparam("name")
)
# built once: each start looks one up, and building the statement cost more than running it
_LATEST = _NAMED.order_by(workflows.c.version.desc()).limit(1)
_VERSION = _NAMED.where(workflows.c.version == bindparam("version"))


async def list_latest(conn: AsyncConnection, namespace_id: int) -> list[Row[Any]]:
    latest = (
        select(workflows.c.name, func.max(workflows.c.version).label("version"))
        .where(workflows.c.namespace_id == namespace_id)
        .group_by(workflows.c.name)
        .subquery()
    )
    query = (
        select(workflows)
        .join(
            latest, (workflows.c.name == latest.c.name) & (workflows.c.version == latest.c.version)
        )
        .where(workflows.c.namespace_id == namespace_id)
        .order_by(workflows.c.name)
    )
    return list(await conn.execute(query))


def _lock_key(namespace_id: int, name: str) -> int:
    digest = hashlib.blake2b(f"{namespace_id}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def insert_version(
    conn: AsyncConnection,
    namespace_id: int,
    definition: WorkflowDefinition,
    source: str,
    now: float,
) -> tuple[Row[Any], bool]:
    """Store ``definition`` as version n+1 unless it equals the latest version."""
    content_hash = definition.content_hash()
    if conn.dialect.name == "postgresql":
        # concurrent applies of one workflow take turns, so version numbers never collide
        await conn.execute(
            select(func.pg_advisory_xact_lock(_lock_key(namespace_id, definition.name)))
        )
    latest = await find_workflow(conn, namespace_id, definition.name)
    if latest is not None and latest.content_hash == content_hash:
        return latest, False
    version = 1 if latest is None else latest.version + 1
    row = (
        await conn.execute(
            insert(workflows).returning(*workflows.c),
            {
                "uuid": str(uuid.uuid4()),
                "namespace_id": namespace_id,
                "name": definition.name,
                "version": version,
                "description": definition.description,
                "operation_type": definition.operation_type,
                "definition": definition.canonical(),
                "source": source,
                "content_hash": content_hash,
                "created_at": now,
            },
        )
    ).one()
    return row, True
