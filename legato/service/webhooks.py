"""Webhooks: subscriptions per namespace, the delivery log, redelivery, the signing secret."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from legato.engine.outbound import OutboundGuard
from legato.model.errors import InvalidInput, NotFound
from legato.model.ids import parse_id
from legato.model.times import iso
from legato.service.principal import Principal
from legato.store import outbox as outbox_store
from legato.store import webhooks as store
from legato.store.database import Database, Tx
from legato.store.runs import find_run

__all__ = ["DELIVERY_STATUSES", "WebhookService", "check_destination"]

DELIVERY_STATUSES = ("PENDING", "DELIVERED", "FAILED")
MAX_PAGE_SIZE = 500
# run.succeeded, step.*, run.*, schedule.fired, schedule.*, *
_EVENT_PATTERN = re.compile(r"^(\*|(run|step|schedule)\.(\*|[a-z_]{1,30}))$")


class WebhookService:
    def __init__(self, db: Database, outbound: OutboundGuard | None = None) -> None:
        self.db = db
        self.outbound = outbound or OutboundGuard()
        outbox_store.watch(db)

    # -- subscriptions -------------------------------------------------------------------

    async def create(
        self,
        p: Principal,
        url: str,
        event_types: Sequence[str] = (),
        workflows: Sequence[str] = (),
        secret: str | None = None,
        active: bool = True,
    ) -> dict[str, Any]:
        """A new subscription; the answer shows its secret (generated unless given) once."""
        p.require("admin")
        _check_url(url, "url")
        await check_destination(self.outbound, url, "url")
        errors = [
            {
                "path": f"event_types[{i}]",
                "message": "expected run.<type>, step.<type>, schedule.<type>, run.*, step.*, "
                "schedule.* or *",
            }
            for i, t in enumerate(event_types)
            if not _EVENT_PATTERN.match(t)
        ]
        errors += [
            {"path": f"workflows[{i}]", "message": "empty workflow name"}
            for i, w in enumerate(workflows)
            if not w.strip()
        ]
        if errors:
            raise InvalidInput("invalid webhook subscription", errors=errors)
        secret = secret or "whsec_" + secrets.token_urlsafe(32)

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            row = await store.insert_webhook(
                tx.conn,
                p.namespace_id,
                url,
                secret,
                list(dict.fromkeys(event_types)),
                list(dict.fromkeys(workflows)),
                active,
                time.time(),
            )
            tx.wake(outbox_store.WEBHOOKS_TOPIC)
            return {**_webhook_view(row), "secret": secret}

        return await self.db.write(tx_fn)

    async def list(self, p: Principal) -> list[dict[str, Any]]:
        p.require("viewer")
        async with self.db.read() as conn:
            return [_webhook_view(r) for r in await store.list_webhooks(conn, p.namespace_id)]

    async def delete(self, p: Principal, webhook_id: int) -> None:
        p.require("admin")

        async def tx_fn(tx: Tx) -> bool:
            gone = await store.delete_webhook(tx.conn, p.namespace_id, webhook_id)
            if gone:
                tx.wake(outbox_store.WEBHOOKS_TOPIC)
            return gone

        if not await self.db.write(tx_fn):
            raise NotFound(f"webhook {webhook_id} does not exist")

    async def signing_secret(self, p: Principal) -> dict[str, Any]:
        """The secret that signs ``notify_url`` deliveries of the namespace."""
        p.require("admin")

        async def tx_fn(tx: Tx) -> str:
            return await outbox_store.namespace_secret(tx.conn, p.namespace_id)

        return {"namespace": p.namespace, "secret": await self.db.write(tx_fn)}

    # -- the delivery log ----------------------------------------------------------------

    async def deliveries(
        self,
        p: Principal,
        *,
        run: int | str | None = None,
        status: str | None = None,
        webhook_id: int | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        p.require("viewer")
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(DELIVERY_STATUSES)}",
                errors=[{"path": "status", "message": f"unknown status {status!r}"}],
            )
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        before = None
        if page_token is not None:
            before = parse_id(page_token)
            if before is None:
                raise InvalidInput(
                    "invalid page_token", errors=[{"path": "page_token", "message": "invalid"}]
                )
        async with self.db.read() as conn:
            run_id = None
            if run is not None:
                row = await find_run(conn, p.namespace_id, run)
                if row is None:
                    raise NotFound(f"run {run} does not exist")
                run_id = row.id
            rows = await store.list_deliveries(
                conn,
                p.namespace_id,
                run_id=run_id,
                status=status,
                webhook_id=webhook_id,
                before=before,
                limit=page_size + 1,
            )
            more = len(rows) > page_size
            rows = rows[:page_size]
            attempts = await store.attempts_of(conn, [r.id for r in rows])
        return {
            "deliveries": [_delivery_view(r, attempts[r.id]) for r in rows],
            "next_page_token": str(rows[-1].id) if more and rows else None,
        }

    async def delivery(self, p: Principal, delivery_id: int) -> dict[str, Any]:
        p.require("viewer")
        async with self.db.read() as conn:
            row = await store.find_delivery(conn, p.namespace_id, delivery_id)
            if row is None:
                raise NotFound(f"delivery {delivery_id} does not exist")
            attempts = await store.attempts_of(conn, [row.id])
        return _delivery_view(row, attempts[row.id])

    async def redeliver(self, p: Principal, delivery_id: int) -> dict[str, Any]:
        """Send a delivery again (as a new delivery with the same payload)."""
        p.require("operator")

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            row = await store.find_delivery(tx.conn, p.namespace_id, delivery_id)
            if row is None:
                raise NotFound(f"delivery {delivery_id} does not exist")
            new = await store.requeue(tx.conn, row)
            tx.wake(outbox_store.OUTBOX_TOPIC)
            return {**_delivery_view(new, []), "redelivery_of": row.id}

        return await self.db.write(tx_fn)


async def check_destination(outbound: OutboundGuard, url: str, path: str) -> None:
    """Refuse (422 ``url_not_allowed``) a URL whose host is, or resolves to, an address the
    installation does not let outbound requests reach."""
    refusal = await outbound.check_url(url)
    if refusal is not None:
        raise InvalidInput(
            refusal,
            code="url_not_allowed",
            errors=[{"path": path, "message": refusal, "code": "url_not_allowed"}],
        )


def _check_url(url: str, path: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "webhook URLs must be absolute http(s) URLs",
            errors=[{"path": path, "message": "expected an http:// or https:// URL"}],
        )


def _webhook_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "event_types": list(row.event_types or []),
        "workflows": list(row.workflows or []),
        "active": bool(row.active),
        "created_at": iso(row.created_at),
    }


def _delivery_view(row: Any, attempts: Sequence[Any]) -> dict[str, Any]:
    pending = row.status == "PENDING"
    return {
        "id": row.id,
        "run_id": row.run_id,
        "webhook_id": row.webhook_id,  # null: the run's notify_url
        "url": row.url,
        "event_type": row.event_type,
        "status": row.status,
        # claimed by a sender whose attempt is not logged yet
        "in_flight": pending and row.attempts > len(attempts) and row.next_attempt_at > time.time(),
        "next_attempt_at": iso(row.next_attempt_at) if pending else None,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
        "payload": row.payload,
        "attempts": [
            {
                "attempt": a.attempt,
                "time": iso(a.time),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
    }
