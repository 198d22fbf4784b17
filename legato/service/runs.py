"""Use cases on runs: start, read, list, cancel, delete, retry, signal, logs and history."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from legato.engine.outbound import OutboundGuard
from legato.engine.transitions import RunRequest, Transitions
from legato.model.errors import Conflict, InvalidInput, LegatoError, NotFound
from legato.model.filters import RunFilter
from legato.model.ids import MAX_ID
from legato.model.json_values import json_problems
from legato.model.reads import RunHead
from legato.model.starts import StartRun
from legato.model.states import RUN_TERMINAL, RunStatus, StepStatus
from legato.model.times import iso
from legato.service.batching import GroupCommit
from legato.service.principal import Principal
from legato.service.reads import RunReads
from legato.service.run_lists import Page, SummaryBodies
from legato.service.status import StatusService
from legato.service.views import (
    event_view,
    level_view,
    log_view,
    run_detail_view,
    run_view,
)
from legato.service.webhooks import check_destination
from legato.store import reads as reader
from legato.store import run_lists
from legato.store import runs as run_store
from legato.store.database import Database, Tx
from legato.store.errors import DuplicateKey
from legato.store.run_graphs import DefinitionCache
from legato.store.step_reports import read_progress

__all__ = ["RunService"]

MAX_PAGE_SIZE = 500
#: What the store's ``runs.idempotency_key`` column holds.
MAX_IDEMPOTENCY_KEY = 200


class RunService:
    def __init__(
        self,
        db: Database,
        transitions: Transitions,
        definitions: DefinitionCache,
        reads: RunReads,
        status: StatusService,
        outbound: OutboundGuard | None = None,
    ):
        self.db = db
        self.reads = reads
        self.status = status
        self.transitions = transitions
        self.definitions = definitions
        self.outbound = outbound or OutboundGuard()
        self.summaries = SummaryBodies()
        self._starts: GroupCommit[tuple[Principal, StartRun], dict[str, Any]] = GroupCommit(
            self._start_batch
        )

    # -- start ---------------------------------------------------------------------------

    async def start(self, p: Principal, req: StartRun) -> tuple[dict[str, Any], bool]:
        """Answers the run and whether it is new (False: an earlier request with the same
        idempotency key or external id made it). Concurrent plain starts share one
        transaction (group commit); keyed ones go alone, to settle who was first."""
        p.require("operator")
        if req.notify_url:
            await check_destination(self.outbound, req.notify_url, "notify_url")
        _check_idempotency_key(req.idempotency_key)
        _check_texts(req)
        if not (req.idempotency_key or req.external_id):
            return await self._starts.submit((p, req)), True
        if req.idempotency_key:
            existing = await self._existing(p, req)
            if existing is not None:
                return existing, False
        try:
            [answer] = await self._start_batch([(p, req)])
        except DuplicateKey:
            existing = await self._existing(p, req)
            if existing is None:
                raise
            if req.idempotency_key is None:
                raise Conflict(
                    f"a run with external_id '{req.external_id}' exists already",
                    code="duplicate_external_id",
                ) from None
            return existing, False
        if isinstance(answer, BaseException):
            raise answer
        return answer, True

    async def _start_batch(
        self, items: Sequence[tuple[Principal, StartRun]]
    ) -> list[dict[str, Any] | BaseException]:
        requests = [_run_request(p, req) for p, req in items]

        async def tx_fn(tx: Tx) -> list[dict[str, Any] | BaseException]:
            outcomes = await self.transitions.start_runs(tx, requests)
            return [
                outcome
                if isinstance(outcome, BaseException)
                else run_view(outcome.run, p.namespace, outcome.steps)
                for (p, _req), outcome in zip(items, outcomes, strict=True)
            ]

        return await self.db.write(tx_fn)

    async def _existing(self, p: Principal, req: StartRun) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = None
            if req.idempotency_key:
                row = await run_store.find_run_by_key(conn, p.namespace_id, req.idempotency_key)
            if row is None and req.external_id:
                row = await run_store.find_run_by_external_id(conn, p.namespace_id, req.external_id)
        return None if row is None else await self.get(p, row.id)

    # -- read ----------------------------------------------------------------------------

    async def _head(self, p: Principal, ref: int | str) -> RunHead:
        return await self.reads.head(p.namespace_id, ref)

    async def get(self, p: Principal, ref: int | str) -> dict[str, Any]:
        """The run with its top-level steps, progress, time left, waiting reasons and the
        counts of every subtree."""
        read = await self.reads.run(await self._head(p, ref))
        return run_detail_view(read, p.namespace, await self.reads.facts(read, p.namespace))

    async def steps(
        self, p: Principal, ref: int | str, parent: int | None = None
    ) -> list[dict[str, Any]]:
        """One level of the step tree (top level, or the items of ``parent``), in detail."""
        head = await self._head(p, ref)
        read = await self.reads.run(head)
        level = await self.reads.level(head, parent)
        return level_view(read, level, await self.reads.facts(read, p.namespace, level))

    async def step(self, p: Principal, ref: int | str, step_ref: str) -> dict[str, Any]:
        body = await self.status.step(p, step_ref)(await self._head(p, ref)).body()
        return body  # type: ignore[no-any-return]

    async def progress_history(self, p: Principal, ref: int | str, step_ref: str) -> dict[str, Any]:
        """Every progress point a step reported, and the rate it makes progress at."""
        step = await self.step(p, ref, step_ref)
        async with self.db.read() as conn:
            rows = await read_progress(conn, step["id"])
        points = [{"time": iso(r.time), "fraction": r.fraction, "message": r.message} for r in rows]
        rate = None
        if len(rows) >= 2 and rows[-1].time > rows[0].time:
            rate = (rows[-1].fraction - rows[0].fraction) / (rows[-1].time - rows[0].time)
        return {"step": step["key"], "points": points, "rate_per_second": rate}

    async def list_runs(
        self, p: Principal, flt: RunFilter, page_size: int | None, page_token: str | None
    ) -> dict[str, Any]:
        """``{"runs": [...], "next_page_token": ...}``: newest first, keyset-paged."""
        return (await self._page(flt, page_size, page_token)).native(p.namespace)

    async def list_page(
        self,
        p: Principal,
        flt: RunFilter,
        page_size: int | None,
        page_token: str | None,
        encode: Callable[[Any], bytes],
    ) -> bytes:
        """:meth:`list_runs` as ``encode`` writes it (it must write what ``orjson.dumps``
        writes when that can), re-rendering only the runs that changed since last shown."""
        page = await self._page(flt, page_size, page_token)
        return self.summaries.render(page, p.namespace, encode)

    async def _page(self, flt: RunFilter, page_size: int | None, page_token: str | None) -> Page:
        size = page_size or 50
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidInput(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}",
                errors=[{"path": "page_size", "message": "out of range"}],
            )
        after = _decode_token(page_token) if page_token else None
        rows = await run_lists.list_rows(self.db, flt, limit=size + 1, after=after)
        if len(rows) <= size:
            return Page(rows, None)
        last = rows[size - 1]
        return Page(rows[:size], _encode_token(run_lists.created_at(last), last[run_lists.ID]))

    async def events(self, p: Principal, ref: int | str) -> list[dict[str, Any]]:
        return [event_view(e) for e in await self.reads.events(await self._head(p, ref))]

    # -- logs ----------------------------------------------------------------------------

    async def logs(
        self,
        p: Principal,
        ref: int | str,
        *,
        after: int = 0,
        step: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        head = await self._head(p, ref)
        async with self.db.read() as conn:
            rows = await reader.read_logs(conn, head.id, after=after, step_key=step, limit=limit)
        return [log_view(r) for r in rows]

    async def follow_logs(
        self, p: Principal, ref: int | str, *, after: int = 0, step: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every log line from ``after`` on, live, until the run has ended."""
        run_id = (await self._head(p, ref)).id
        async with self.db.watching(f"run:{run_id}") as changes:
            while True:
                changes.look()
                async with self.db.read() as conn:
                    rows = await reader.read_logs(conn, run_id, after=after, step_key=step)
                    head = await reader.find_head(conn, p.namespace_id, run_id)
                for r in rows:
                    after = r.id
                    yield log_view(r)
                if rows:
                    continue
                if head is None or head.finished:
                    return
                await changes.wait(1.0)

    # -- control -------------------------------------------------------------------------

    async def cancel(self, p: Principal, ref: int | str) -> dict[str, Any]:
        p.require("operator")
        run = await self._head(p, ref)
        if run.status in RUN_TERMINAL:
            raise Conflict(f"run {run.id} has already ended ({run.status})", code="run_finished")
        await self.transitions.cancel(run.id)
        return await self.get(p, run.id)

    async def retry(self, p: Principal, ref: int | str) -> dict[str, Any]:
        p.require("operator")
        run = await self._head(p, ref)
        if run.status not in (RunStatus.FAILED, RunStatus.TIMED_OUT):
            raise Conflict(
                f"only a failed or timed-out run can be retried; run {run.id} is {run.status}",
                code="run_not_failed",
            )
        await self.transitions.retry(run.id)
        return await self.get(p, run.id)

    async def signal(
        self, p: Principal, ref: int | str, step_key: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        p.require("operator")
        run = await self._head(p, ref)
        steps = await self.reads.all_steps(run)
        step = next((s for s in steps if s.key == step_key), None)
        if step is None:
            raise NotFound(f"run {run.id} has no step '{step_key}'", code="step_not_found")
        if step.kind != "approval" or step.status != StepStatus.RUNNING:
            raise Conflict(
                f"step '{step_key}' is not waiting for a signal ({step.status})",
                code="step_not_waiting",
            )
        await self.transitions.resume(run.id, step.id, payload)
        return await self.get(p, run.id)

    async def delete(self, p: Principal, ref: int | str) -> None:
        p.require("operator")
        run = (await self.reads.run(await self._head(p, ref))).run
        if run.status not in RUN_TERMINAL:
            raise Conflict(
                f"run {run.id} is {run.status}; cancel it and wait for it to end "
                "before deleting it",
                code="run_not_finished",
            )
        if run.parent_run_id is not None:
            raise Conflict(
                f"run {run.id} is a sub-workflow of run {run.parent_run_id}; delete "
                "that run instead",
                code="child_run",
            )

        async def tx_fn(tx: Tx) -> None:
            await run_store.delete_run(tx.conn, run.id)
            tx.wake(f"run:{run.id}")

        await self.db.write(tx_fn)
        self.reads.forget(run.id)

    async def wait_for_change(self, run_id: int, timeout: float) -> None:
        """Returns when the run changed (or after ``timeout``): the base of long-polls."""
        async with self.db.watching(f"run:{run_id}") as changes:
            await changes.wait(timeout)


def _run_request(p: Principal, req: StartRun) -> RunRequest:
    return RunRequest(p.namespace_id, p.namespace, req)


def _check_texts(req: StartRun) -> None:
    """What a start names besides its inputs is text every store keeps (no NUL, no lone
    surrogate), whichever face it came through."""
    named = {
        "labels": dict(req.labels),
        "external_id": req.external_id,
        "requestor": req.requestor,
        "operation_type": req.operation_type,
        "idempotency_key": req.idempotency_key,
    }
    problems = [p for p in json_problems(named, "") if p["code"] == "invalid_text"]
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"{first['path'].lstrip('.')}: {first['message']}",
            code="invalid_text",
            errors=[{**p, "path": p["path"].lstrip(".")} for p in problems],
        )


def _check_idempotency_key(key: str | None) -> None:
    """A key names one start: it must be text the store keeps as given (an empty one would
    be stored as a key all the same, and clash with the next empty one)."""
    if key is None:
        return
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise LegatoError(
            f"an idempotency key holds 1 to {MAX_IDEMPOTENCY_KEY} characters, not only spaces",
            code="bad_idempotency_key",
            errors=[{"path": "Idempotency-Key", "message": "empty, blank or too long"}],
        )


def _encode_token(created_at: float, run_id: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}:{run_id}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, _, run_id = raw.partition(":")
        created_at, ident = float(created), int(run_id)
        if not math.isfinite(created_at) or not 0 < ident <= MAX_ID:
            raise ValueError(raw)
        return created_at, ident
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "page_token is not valid",
            code="bad_page_token",
            errors=[{"path": "page_token", "message": "not a token this server gave"}],
        ) from None
