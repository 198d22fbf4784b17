"""Webhook subscriptions and the delivery log (outbox rows with their attempts)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.store.tables import outbox, webhook_deliveries, webhooks

__all__ = [
    "attempts_of",
    "delete_webhook",
    "find_delivery",
    "insert_webhook",
    "list_deliveries",
    "list_webhooks",
    "requeue",
]


async def insert_webhook(
    conn: AsyncConnection,
    namespace_id: int,
    url: str,
    secret: str,
    event_types: list[str],
    workflows: list[str],
    active: bool,
    now: float,
) -> Row[Any]:
    return (
        await conn.execute(
            insert(webhooks).returning(*webhooks.c),
            {
                "namespace_id": namespace_id,
                "url": url,
                "secret": secret,
                "event_types": event_types,
                "workflows": workflows,
                "active": active,
                "created_at": now,
            },
        )
    ).one()


async def list_webhooks(conn: AsyncConnection, namespace_id: int) -> list[Row[Any]]:
    return list(
        await conn.execute(
            select(webhooks).where(webhooks.c.namespace_id == namespace_id).order_by(webhooks.c.id)
        )
    )


async def delete_webhook(conn: AsyncConnection, namespace_id: int, webhook_id: int) -> bool:
    """Remove a subscription; its deliveries not yet made are given up."""
    result = await conn.execute(
        delete(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.namespace_id == namespace_id)
    )
    if not result.rowcount:
        return False
    await conn.execute(
        update(outbox)
        .where(outbox.c.webhook_id == webhook_id, outbox.c.status == "PENDING")
        .values(status="FAILED", last_error="subscription deleted")
    )
    return True


async def list_deliveries(
    conn: AsyncConnection,
    namespace_id: int,
    *,
    run_id: int | None,
    status: str | None,
    webhook_id: int | None,
    before: int | None,
    limit: int,
) -> list[Row[Any]]:
    """Newest first."""
    query = select(outbox).where(outbox.c.namespace_id == namespace_id)
    if run_id is not None:
        query = query.where(outbox.c.run_id == run_id)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if webhook_id is not None:
        query = query.where(outbox.c.webhook_id == webhook_id)
    if before is not None:
        query = query.where(outbox.c.id < before)
    return list(await conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)))


async def attempts_of(conn: AsyncConnection, outbox_ids: Sequence[int]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {i: [] for i in outbox_ids}
    if not outbox_ids:
        return out
    rows = await conn.execute(
        select(webhook_deliveries)
        .where(webhook_deliveries.c.outbox_id.in_(list(outbox_ids)))
        .order_by(webhook_deliveries.c.outbox_id, webhook_deliveries.c.id)
    )
    for r in rows:
        out[r.outbox_id].append(r)
    return out


async def find_delivery(
    conn: AsyncConnection, namespace_id: int, outbox_id: int
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(outbox).where(outbox.c.id == outbox_id, outbox.c.namespace_id == namespace_id)
        )
    ).first()


async def requeue(conn: AsyncConnection, row: Row[Any]) -> Row[Any]:
    """Queue a delivery again as a new row (same payload, destination and signing secret);
    the original keeps its log. It goes after what its run queued meanwhile."""
    now = time.time()
    return (
        await conn.execute(
            insert(outbox).returning(*outbox.c),
            {
                "namespace_id": row.namespace_id,
                "run_id": row.run_id,
                "url": row.url,
                "payload": row.payload,
                "status": "PENDING",
                "attempts": 0,
                "next_attempt_at": now,
                "webhook_id": row.webhook_id,
                "event_type": row.event_type,
                "secret": row.secret,
                "created_at": now,
            },
        )
    ).one()
