"""The transactional outbox of webhooks: every event that reaches ``events`` queues one row per
destination (the run's ``notify_url``, each matching subscription of its namespace) in the
same transaction, so a change and its notifications commit together or not at all.

Cheap when nothing listens: subscriptions are cached per store (reloaded when the webhooks
service wakes topic ``webhooks``, or after a few seconds), and what a run can notify (its
namespace, workflow and ``notify_url`` never change) is remembered per run, so a transaction
of runs without a destination costs no statement at all.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import secrets
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from legato.model.times import iso_time
from legato.store.database import Database, Tx
from legato.store.tables import namespaces, outbox, runs, webhook_deliveries, webhooks

__all__ = [
    "OUTBOX_TOPIC",
    "WEBHOOKS_TOPIC",
    "Subscription",
    "claim_due",
    "enqueue",
    "enqueue_event",
    "matches",
    "namespace_secret",
    "purge_settled",
    "recently_enqueued",
    "record_attempt",
    "watch",
]

WEBHOOKS_TOPIC = "webhooks"  # woken on every subscription change
OUTBOX_TOPIC = "outbox"  # woken when rows are queued outside the transition path
SUBSCRIPTIONS_TTL = 5.0
_RUN_MEMORY = 50_000  # runs whose destinations are remembered


@dataclass(frozen=True)
class Subscription:
    id: int
    namespace_id: int
    url: str
    secret: str
    event_types: tuple[str, ...]
    workflows: tuple[str, ...]

    def wants(self, event_type: str, workflow: str) -> bool:
        return (not self.workflows or workflow in self.workflows) and (
            not self.event_types or any(matches(p, event_type) for p in self.event_types)
        )


def matches(pattern: str, event_type: str) -> bool:
    """``run.*`` matches every run event; ``*`` every event; otherwise exact."""
    return fnmatch.fnmatchcase(event_type, pattern)


#: What webhooks need of a run, fixed for its life: namespace id, workflow, notify_url.
RunFacts = tuple[int, str, str | None]


@dataclass
class _StoreState:
    """What one store's outbox remembers in this process."""

    changed: asyncio.Event | None = None  # set by a ``webhooks`` wake-up
    subscriptions: dict[int, list[Subscription]] = field(default_factory=dict)
    loaded_at: float = -1e9
    # run id -> (namespace id, workflow, notify_url): fixed for the life of a run
    runs: dict[int, RunFacts] = field(default_factory=dict)
    secrets: dict[int, str] = field(default_factory=dict)  # committed namespace secrets
    last_enqueue: float = -1e9

    async def load(self, conn: AsyncConnection) -> dict[int, list[Subscription]]:
        now = time.monotonic()
        stale = self.changed is not None and self.changed.is_set()
        if not stale and now - self.loaded_at < SUBSCRIPTIONS_TTL:
            return self.subscriptions
        if self.changed is not None:
            self.changed.clear()
        by_ns: dict[int, list[Subscription]] = {}
        rows = await conn.execute(
            select(webhooks).where(webhooks.c.active.is_(True)).order_by(webhooks.c.id)
        )
        for r in rows:
            by_ns.setdefault(r.namespace_id, []).append(
                Subscription(
                    r.id,
                    r.namespace_id,
                    r.url,
                    r.secret,
                    tuple(r.event_types or ()),
                    tuple(r.workflows or ()),
                )
            )
        self.subscriptions, self.loaded_at = by_ns, now
        return by_ns

    def remember(self, run_id: int, info: RunFacts) -> None:
        if len(self.runs) >= _RUN_MEMORY:
            del self.runs[next(iter(self.runs))]
        self.runs[run_id] = info


_states: weakref.WeakKeyDictionary[Engine, _StoreState] = weakref.WeakKeyDictionary()


def _state(engine: Engine) -> _StoreState:
    state = _states.get(engine)
    if state is None:
        state = _states[engine] = _StoreState()
    return state


def remember_runs(conn: AsyncConnection, facts: Mapping[int, RunFacts]) -> None:
    """Keep the facts of committed runs, so that their later events need no look-up."""
    state = _state(conn.sync_engine)
    for run_id, info in facts.items():
        state.remember(run_id, info)


def watch(db: Database) -> None:
    """Reload this store's subscriptions as soon as they change (on PostgreSQL also when
    another process changed them), not only after the cache's few seconds."""
    state = _state(db.writer.sync_engine)
    if state.changed is None:
        state.changed = db.subscribe(WEBHOOKS_TOPIC)


def recently_enqueued(db: Database, within: float = 2.0) -> bool:
    """Whether this process queued outbox rows on ``db`` in the last ``within`` seconds."""
    return time.monotonic() - _state(db.writer.sync_engine).last_enqueue < within


async def enqueue(
    conn: AsyncConnection,
    event_rows: Sequence[dict[str, Any]],
    known: Mapping[int, RunFacts] | None = None,
) -> None:
    """Queue the webhook deliveries of ``event_rows`` (about to be inserted into ``events``)
    in the caller's transaction. ``known`` holds the facts of runs the transaction itself
    holds (read or created in it), which need no look-up."""
    if not event_rows:
        return
    state = _state(conn.sync_engine)
    subs = await state.load(conn)
    run_ids = {e["run_id"] for e in event_rows}
    known = known or {}
    # a new run (run.queued) is looked up unless the transaction knows it: SQLite may reuse
    # a deleted run's id, so what this process remembers of that id may be another run's
    fresh = {e["run_id"] for e in event_rows if e["type"] == "run.queued"}
    facts = {r: known.get(r) or (None if r in fresh else state.runs.get(r)) for r in run_ids}
    # runs known to have no notify_url, in a namespace without subscriptions, cost nothing
    wanted = sorted(r for r, f in facts.items() if f is None or f[2] is not None or f[0] in subs)
    if not wanted:
        return
    info = {
        r.id: r
        for r in await conn.execute(
            select(
                runs.c.id,
                runs.c.uuid,
                runs.c.namespace_id,
                runs.c.workflow_name,
                runs.c.notify_url,
                runs.c.status,
                namespaces.c.name.label("namespace"),
            )
            .join(namespaces, namespaces.c.id == runs.c.namespace_id)
            .where(runs.c.id.in_(wanted))
        )
    }
    now = time.time()
    rows: list[dict[str, Any]] = []
    for event in event_rows:
        run = info.get(event["run_id"])
        if run is None:
            continue
        state.remember(run.id, (run.namespace_id, run.workflow_name, run.notify_url))
        targets: list[tuple[str, int | None, str]] = [
            (s.url, s.id, s.secret)
            for s in subs.get(run.namespace_id, ())
            if s.wants(event["type"], run.workflow_name)
        ]
        if run.notify_url:
            secret = await namespace_secret(conn, run.namespace_id, state)
            targets.insert(0, (run.notify_url, None, secret))
        if not targets:
            continue
        payload = _payload(event, run)
        for url, webhook_id, secret in targets:
            rows.append(
                {
                    "namespace_id": run.namespace_id,
                    "run_id": run.id,
                    "url": url,
                    "payload": payload,
                    "status": "PENDING",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "webhook_id": webhook_id,
                    "event_type": event["type"],
                    "secret": secret,
                    "created_at": now,
                }
            )
    if rows:
        await conn.execute(insert(outbox), rows)
        state.last_enqueue = time.monotonic()


async def enqueue_event(
    conn: AsyncConnection,
    namespace_id: int,
    workflow: str,
    event_type: str,
    payload: dict[str, Any],
    run_id: int | None = None,
) -> None:
    """Queue an event that is not a run's transition (a schedule's) for the namespace's
    subscriptions that want it, in the caller's transaction."""
    state = _state(conn.sync_engine)
    subs = (await state.load(conn)).get(namespace_id, ())
    now = time.time()
    rows = [
        {
            "namespace_id": namespace_id,
            "run_id": run_id,
            "url": s.url,
            "payload": payload,
            "status": "PENDING",
            "attempts": 0,
            "next_attempt_at": now,
            "webhook_id": s.id,
            "event_type": event_type,
            "secret": s.secret,
            "created_at": now,
        }
        for s in subs
        if s.wants(event_type, workflow)
    ]
    if rows:
        await conn.execute(insert(outbox), rows)
        state.last_enqueue = time.monotonic()


def _payload(event: dict[str, Any], run: Any) -> dict[str, Any]:
    is_run_event = event["step_id"] is None and event["step_key"] is None
    return {
        "id": str(uuid.uuid4()),
        "type": event["type"],
        "time": iso_time(event["time"]),
        "run": {
            "id": run.id,
            "uuid": run.uuid,
            "workflow": run.workflow_name,
            # a run event carries the status it announces; a step event the run's status as
            # of the transaction that made it
            "status": event["status"] if is_run_event and event["status"] else run.status,
            "namespace": run.namespace,
        },
        "step": None
        if is_run_event
        else {"id": event["step_id"], "key": event["step_key"], "status": event["status"]},
        "message": event["message"],
        "data": event["data"],
    }


async def namespace_secret(
    conn: AsyncConnection, namespace_id: int, state: _StoreState | None = None
) -> str:
    """The namespace's signing secret for ``notify_url`` deliveries, made on first use."""
    state = state or _state(conn.sync_engine)
    known = state.secrets.get(namespace_id)
    if known:
        return known
    query = select(namespaces.c.settings).where(namespaces.c.id == namespace_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # two first uses must not make two secrets
    settings = dict((await conn.execute(query)).scalar_one() or {})
    secret = settings.get("webhook_secret")
    if isinstance(secret, str) and secret:
        state.secrets[namespace_id] = secret  # committed: safe to remember
        return secret
    secret = "whsec_" + secrets.token_urlsafe(32)
    await conn.execute(
        update(namespaces)
        .where(namespaces.c.id == namespace_id)
        .values(settings={**settings, "webhook_secret": secret})
    )
    return secret


# -- delivery -----------------------------------------------------------------------------

_PENDING = outbox.c.status == "PENDING"
_SENT_COLUMNS = (
    outbox.c.id,
    outbox.c.run_id,
    outbox.c.url,
    outbox.c.webhook_id,
    outbox.c.payload,
    outbox.c.secret,
    outbox.c.event_type,
    outbox.c.attempts,
)
_postpone = (
    update(outbox)
    # only as it was read: a concurrent release (the row before it settled) wins
    .where(
        outbox.c.id == bindparam("b_id"),
        _PENDING,
        outbox.c.next_attempt_at == bindparam("b_seen"),
    )
    .values(next_attempt_at=bindparam("b_next"))
)


@functools.cache
def _due_query(limit: int) -> Select[Any]:
    """Built once: senders ask twice a second, and building it cost more than running it."""
    return (
        select(
            outbox.c.id,
            outbox.c.run_id,
            outbox.c.url,
            outbox.c.webhook_id,
            outbox.c.next_attempt_at,
        )
        .where(_PENDING, outbox.c.next_attempt_at <= bindparam("now"))
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )


async def claim_due(db: Database, limit: int, lease_seconds: float) -> list[Row[Any]]:
    """Take up to ``limit`` due rows, each the oldest undelivered one of its run and
    destination (so a run's deliveries arrive in order), and lease them: their
    ``next_attempt_at`` moves past the lease, so no other sender takes them meanwhile and a
    sender that dies leaves them due again when the lease ends."""
    now = time.time()
    async with db.read() as conn:  # idle cost: one read on the partial index
        due = list(await conn.execute(_due_query(limit * 4), {"now": now}))
    if not due:
        return []

    async def tx_fn(tx: Tx) -> list[Row[Any]]:
        conn = tx.conn
        groups = {
            (row[0], row[1], row[2]): row[3]
            for row in await conn.execute(
                select(outbox.c.run_id, outbox.c.url, outbox.c.webhook_id, func.min(outbox.c.id))
                .where(
                    _PENDING,
                    outbox.c.run_id.in_(sorted({r.run_id for r in due if r.run_id is not None})),
                )
                .group_by(outbox.c.run_id, outbox.c.url, outbox.c.webhook_id)
            )
        }
        # an event of no run (a schedule's) waits behind nothing
        heads = set(groups.values()) | {r.id for r in due if r.run_id is None}
        head_due = {
            row.id: row.next_attempt_at
            for row in await conn.execute(
                select(outbox.c.id, outbox.c.next_attempt_at).where(outbox.c.id.in_(sorted(heads)))
            )
        }
        # The first rows of the runs seen, when due, whether or not they are in the window:
        # a run's later rows wait with the time they were queued while its first row becomes
        # due when the one before it settles, so in time order the later rows can fill the
        # window while their first rows, due, lie beyond it (nothing would be claimed again).
        ids = sorted(head for head, at in head_due.items() if at <= now)[:limit]
        claimed: list[Row[Any]] = []
        if ids:
            inner = select(outbox.c.id).where(
                outbox.c.id.in_(ids), _PENDING, outbox.c.next_attempt_at <= now
            )
            if conn.dialect.name == "postgresql":
                inner = inner.with_for_update(skip_locked=True)
            claimed = sorted(
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(inner.scalar_subquery()))
                    .values(attempts=outbox.c.attempts + 1, next_attempt_at=now + lease_seconds)
                    .returning(*_SENT_COLUMNS)
                ),
                key=lambda r: r.id,
            )
        # a row waiting behind an earlier one of its run and destination is not due before
        # that one settles (which makes its successor due at once): it leaves the window
        blocked = [r for r in due if r.id not in heads]
        bumps = [
            {"b_id": r.id, "b_next": until, "b_seen": r.next_attempt_at}
            for r in blocked
            if (until := head_due.get(groups[(r.run_id, r.url, r.webhook_id)], 0.0)) > now
        ]
        if bumps:
            await conn.execute(_postpone, bumps)
        return claimed

    return await db.write(tx_fn)


_finish = (
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.attempts == bindparam("b_attempt"), _PENDING)
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next"),
        last_error=bindparam("b_error"),
        delivered_at=bindparam("b_delivered"),
    )
)


async def record_attempt(
    db: Database,
    row: Row[Any],
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    outcome: str,
    next_attempt_at: float,
) -> None:
    """Log one attempt of a claimed row and settle the row (only if no other sender took it
    over since); a settled row lets the next one of its run and destination go at once."""
    now = time.time()

    async def tx_fn(tx: Tx) -> None:
        await tx.conn.execute(
            insert(webhook_deliveries),
            {
                "outbox_id": row.id,
                "attempt": row.attempts,
                "status_code": status_code,
                "error": error,
                "duration_ms": duration_ms,
                "time": now,
            },
        )
        await tx.conn.execute(
            _finish,
            {
                "b_id": row.id,
                "b_attempt": row.attempts,
                "b_status": outcome,
                "b_next": next_attempt_at,
                "b_error": error,
                "b_delivered": now if outcome == "DELIVERED" else None,
            },
        )
        if outcome in ("DELIVERED", "FAILED"):
            same_destination = (
                outbox.c.webhook_id.is_(None)
                if row.webhook_id is None
                else outbox.c.webhook_id == row.webhook_id
            )
            successor = (
                select(func.min(outbox.c.id))
                .where(
                    _PENDING,
                    outbox.c.run_id == row.run_id,
                    outbox.c.url == row.url,
                    same_destination,
                    outbox.c.id > row.id,
                )
                .scalar_subquery()
            )
            await tx.conn.execute(
                update(outbox)
                .where(outbox.c.id == successor)
                .values(next_attempt_at=now)  # a new value, so a claim's postponing misses
            )
            tx.wake(OUTBOX_TOPIC)

    await db.write(tx_fn)


async def purge_settled(db: Database, before: float, batch: int = 1000) -> int:
    """Delete delivered and failed rows created before ``before`` (their attempts cascade),
    a batch per transaction."""
    total = 0
    while True:

        async def tx_fn(tx: Tx) -> int:
            ids = (
                select(outbox.c.id)
                .where(outbox.c.status.in_(["DELIVERED", "FAILED"]), outbox.c.created_at < before)
                .limit(batch)
                .scalar_subquery()
            )
            result = await tx.conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))
            return int(result.rowcount or 0)

        gone = await db.write(tx_fn)
        total += gone
        if gone < batch:
            return total
