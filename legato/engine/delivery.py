"""Webhook delivery from the outbox: claim due rows, POST them signed, log every attempt,
retry with exponential backoff.

Any number of processes may deliver: a claimed row is leased (its next attempt moves past the
lease), so no two senders post it at once, and a sender that dies leaves it due again when
the lease ends. A run's deliveries to one destination go one at a time, oldest first, so they
arrive in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from legato import __version__
from legato.engine.outbound import OutboundGuard, OutboundRefused
from legato.store.database import Database
from legato.store.outbox import (
    OUTBOX_TOPIC,
    claim_due,
    purge_settled,
    recently_enqueued,
    record_attempt,
)

__all__ = ["Deliverer", "DeliveryConfig", "sign"]

log = logging.getLogger("legato.webhooks")
_PURGE_EVERY = 3600.0


@dataclass(frozen=True)
class DeliveryConfig:
    initial_backoff: float = 1.0  # seconds before the 2nd attempt; doubles each time
    max_backoff: float = 600.0
    max_attempts: int = 12
    timeout: float = 10.0
    poll_interval: float = 0.5
    concurrency: int = 16
    lease_seconds: float = 60.0  # well past ``timeout``
    keep_days: float = 7.0  # delivered and failed rows (and their attempts) are kept this long

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.initial_backoff * 2 ** (attempt - 1), self.max_backoff))


_FIELDS = ("id", "type", "time", "run", "step", "message", "data")


def _in_order(payload: dict[str, Any]) -> dict[str, Any]:
    """The documented field order (PostgreSQL's JSONB keeps its own)."""
    head = {k: payload[k] for k in _FIELDS if k in payload}
    if isinstance(head.get("run"), dict):
        run = head["run"]
        head["run"] = {k: run[k] for k in ("id", "uuid", "workflow", "status", "namespace")}
    if isinstance(head.get("step"), dict):
        step = head["step"]
        head["step"] = {k: step[k] for k in ("id", "key", "status")}
    return {**head, **payload}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Legato-Signature`` value: HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Deliverer:
    def __init__(
        self,
        db: Database,
        config: DeliveryConfig | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,  # (tests: instead of the guard's)
        guard: OutboundGuard | None = None,
    ) -> None:
        self.db = db
        self.config = config or DeliveryConfig()
        self._transport = transport or (guard or OutboundGuard()).transport()
        self._sending: set[asyncio.Task[None]] = set()
        self._kick = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        async with (
            self.db.watching("run:*") as changes,  # after commits that may have queued rows
            self.db.watching(OUTBOX_TOPIC) as queued,
            httpx.AsyncClient(
                timeout=cfg.timeout,
                transport=self._transport,
                trust_env=False,  # no proxy from the environment: it would connect unchecked
                follow_redirects=False,
                headers={"User-Agent": f"legato-webhooks/{__version__}"},
            ) as client,
        ):
            try:
                next_purge = time.monotonic() + 60.0
                while not stop.is_set():
                    if time.monotonic() > next_purge:
                        next_purge = time.monotonic() + _PURGE_EVERY
                        try:
                            await purge_settled(self.db, time.time() - cfg.keep_days * 86400)
                        except Exception:
                            log.exception("purging old webhook deliveries failed")
                    free = cfg.concurrency - len(self._sending)
                    if free > 0:
                        try:
                            for row in await claim_due(self.db, free, cfg.lease_seconds):
                                task = asyncio.create_task(self._deliver(client, row))
                                self._sending.add(task)
                                task.add_done_callback(self._done)
                        except Exception:
                            log.exception("claiming webhook deliveries failed")
                    await self._wait(stop, changes.woken, queued.woken)
            finally:
                await self._drain()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._kick.set()  # a free slot, and maybe the next delivery of that run

    async def _wait(
        self, stop: asyncio.Event, changes: asyncio.Event, queued: asyncio.Event
    ) -> None:
        deadline = time.monotonic() + self.config.poll_interval
        while not stop.is_set():
            if self._kick.is_set() or queued.is_set():
                break
            if changes.is_set():
                changes.clear()
                if recently_enqueued(self.db):  # else: a change with nothing to deliver
                    break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, changes, queued, self._kick)]
            try:
                await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        self._kick.clear()
        queued.clear()
        changes.clear()

    async def _drain(self) -> None:
        """On stop: let sends in progress finish briefly; the rest are retried (lease)."""
        if self._sending:
            _, pending = await asyncio.wait(set(self._sending), timeout=2.0)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)

    async def _deliver(self, client: httpx.AsyncClient, row: Any) -> None:
        cfg = self.config
        body = orjson.dumps(_in_order(row.payload))
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Legato-Event": row.event_type or row.payload.get("type", ""),
            "X-Legato-Delivery": str(row.id),
            "X-Legato-Timestamp": str(timestamp),
            "X-Legato-Signature": sign(row.secret or "", timestamp, body),
        }
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        refused = False
        try:
            response = await client.post(row.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except OutboundRefused as exc:  # nothing was sent: the log says so, and no more
            refused, error = True, f"{exc.code}: {exc.message}"[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        duration_ms = 0 if refused else round((time.monotonic() - started) * 1000)
        if error is None:
            outcome, next_at = "DELIVERED", 0.0
        elif refused or row.attempts >= cfg.max_attempts:
            outcome, next_at = "FAILED", 0.0
            log.warning("webhook %s to %s failed for good: %s", row.id, row.url, error)
        else:
            outcome, next_at = "PENDING", time.time() + cfg.backoff(row.attempts)
        try:
            await record_attempt(
                self.db,
                row,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                outcome=outcome,
                next_attempt_at=next_at,
            )
        except Exception:  # the lease runs out and the row is tried again
            log.exception("recording webhook delivery %s failed", row.id)
