"""A worker: claims ready steps, runs them, reports results in batches, renews its leases.

One loop claims as many steps as it has free slots (one statement), each step runs as a task,
and finished results are committed together (group commit): while one batch is being written,
the next one gathers. Logs and progress ride along or are flushed a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass

from legato.engine.context import StepContext, StepReportSink
from legato.engine.kinds import StepFailure, runner_for
from legato.engine.kinds.python import set_thread_pool
from legato.engine.metrics import CLAIM_SECONDS, COMPLETE_SECONDS, STEP_RESULTS, STEP_SECONDS
from legato.engine.outbound import OutboundGuard
from legato.engine.step_modules import StepModules
from legato.engine.step_threads import StepThreads
from legato.engine.transitions import CANCEL_TOPIC, READY_TOPIC, Continuation, Transitions
from legato.model.durations import format_duration
from legato.model.json_values import json_problems
from legato.model.records import ClaimedStep, StepResult
from legato.model.states import StepStatus
from legato.store.database import Database, wait_set
from legato.store.leases import heartbeat
from legato.store.step_reports import write_step_reports
from legato.store.workers import beat, register_worker, unregister_worker

__all__ = ["CANCEL_TOPIC", "Worker", "WorkerConfig"]

log = logging.getLogger("legato.worker")


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 32
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    flush_interval: float = 0.25
    cancel_grace: float = 5.0
    #: the namespaces whose steps this worker runs (empty: every namespace)
    namespaces: tuple[str, ...] = ()


class Worker:
    def __init__(
        self,
        db: Database,
        transitions: Transitions,
        config: WorkerConfig | None = None,
        name: str | None = None,
        *,
        modules: StepModules | None = None,
        outbound: OutboundGuard | None = None,
    ) -> None:
        self.db = db
        self.transitions = transitions
        self.config = config or WorkerConfig()
        self.modules = modules or StepModules()
        self.outbound = outbound or OutboundGuard()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sink = StepReportSink()
        self._inflight: dict[int, tuple[StepContext, asyncio.Task[None]]] = {}
        self._done: list[tuple[StepResult, int]] = []
        self._done_event = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._pool = StepThreads(self.config.concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        set_thread_pool(self._pool)
        await register_worker(self.db, self.name, self.config.concurrency, self.config.namespaces)
        self.transitions.attach(self)
        loops = [
            asyncio.create_task(self._claim_loop(stop), name="claim"),
            asyncio.create_task(self._flush_loop(stop), name="flush"),
            asyncio.create_task(self._lease_loop(stop), name="lease"),
        ]
        try:
            await stop.wait()
        finally:
            self.transitions.detach(self)
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()
            await unregister_worker(self.db, self.name)
            self._pool.shutdown()

    async def _drain(self) -> None:
        """On shutdown: stop running steps; their results go back to the queue via the lease."""
        for ctx, task in list(self._inflight.values()):
            ctx.cancel()
            task.cancel()
        if self._inflight:
            await asyncio.gather(*(t for _c, t in self._inflight.values()), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush()

    # -- claiming -----------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        async with self.db.watching(READY_TOPIC) as ready:
            while not stop.is_set():
                free = self.config.concurrency - len(self._inflight)
                if free <= 0:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    continue
                ready.look()
                try:
                    with CLAIM_SECONDS.time():
                        claimed = await self.transitions.claim(
                            self.name,
                            free,
                            self.config.lease_seconds,
                            self.config.namespaces,
                        )
                except Exception:
                    log.exception("claim failed; retrying")
                    await asyncio.sleep(self.config.poll_interval)
                    continue
                for step in claimed:
                    self._start(step)
                if len(claimed) < free:
                    await ready.wait(self.config.poll_interval)

    # -- steps handed over by transactions of this process -------------------------------

    def continuation(self) -> Continuation | None:
        free = self.config.concurrency - len(self._inflight)
        if free <= 0:
            return None
        return Continuation(self.name, free, self.config.lease_seconds, self.config.namespaces)

    def take(self, steps: list[ClaimedStep]) -> None:
        for step in steps:
            self._start(step)

    # -- running ------------------------------------------------------------------------

    def _start(self, step: ClaimedStep) -> None:
        ctx = StepContext(
            self.sink,
            run_id=step.run_id,
            step_id=step.id,
            step_key=step.key,
            attempt=step.attempt,
            item=step.item,
            outbound=self.outbound,
        )
        task = asyncio.create_task(self._execute(step, ctx))
        self._inflight[step.id] = (ctx, task)

    async def _execute(self, step: ClaimedStep, ctx: StepContext) -> None:
        started = time.monotonic()
        result = await self._outcome(step, ctx)
        STEP_SECONDS.labels(step.kind).observe(time.monotonic() - started)
        STEP_RESULTS.labels(result.status).inc()
        self._done.append((result, step.run_id))
        self._done_event.set()

    async def _outcome(self, step: ClaimedStep, ctx: StepContext) -> StepResult:
        def failed(status: str, code: str, message: str, retryable: bool = True) -> StepResult:
            return StepResult(
                step.id,
                step.attempt,
                status,
                error={"code": code, "message": message},
                worker=self.name,
                retryable=retryable,
            )

        runner = runner_for(step.kind)
        if runner is None:
            return failed(
                StepStatus.FAILED,
                "unknown_kind",
                f"no runner for kind {step.kind!r}",
                retryable=False,
            )
        try:
            ctx.modules = await self.modules.for_namespace(self.db, step.namespace_id)
            async with asyncio.timeout(step.timeout_s):
                outputs = await runner(ctx, step.args)
        except TimeoutError:
            ctx.cancel()
            assert step.timeout_s is not None
            message = f"step exceeded its timeout of {format_duration(step.timeout_s)}"
            ctx.log.error(message)
            return failed(StepStatus.TIMED_OUT, "step_timeout", message)
        except StepFailure as exc:
            if exc.code == "canceled" or ctx.cancelled.is_set():
                return failed(StepStatus.CANCELED, "canceled", exc.message, retryable=False)
            ctx.log.error(exc.message)
            return failed(StepStatus.FAILED, exc.code, exc.message, exc.retryable)
        except asyncio.CancelledError:
            if ctx.cancelled.is_set():
                return failed(StepStatus.CANCELED, "canceled", "canceled while running", False)
            raise
        except Exception as exc:
            if ctx.cancelled.is_set():  # the step gave up because it was asked to
                return failed(StepStatus.CANCELED, "canceled", f"canceled: {exc}", False)
            ctx.log.error("".join(traceback.format_exception(exc)).rstrip())
            return failed(StepStatus.FAILED, "exception", f"{type(exc).__name__}: {exc}")
        if not isinstance(outputs, dict):
            return failed(StepStatus.FAILED, "bad_outputs", "outputs must be a JSON object")
        problems = json_problems(outputs, "outputs")
        if problems:  # refused here: the store could not write them
            first = problems[0]
            message = f"{first['path']}: {first['message']}"
            return failed(StepStatus.FAILED, "bad_outputs", message, retryable=False)
        return StepResult(
            step.id, step.attempt, StepStatus.SUCCEEDED, outputs=outputs, worker=self.name
        )

    # -- reporting ----------------------------------------------------------------------

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_set(self._done_event, self.config.flush_interval)
            try:
                await self._flush()
            except Exception:
                log.exception("could not record results; will retry")
                await asyncio.sleep(self.config.poll_interval)

    async def _flush(self) -> None:
        self._done_event.clear()
        batch, self._done = self._done, []
        reports = self.sink.take()
        try:
            if batch:
                slots = self.config.concurrency - len(self._inflight) + len(batch)
                with COMPLETE_SECONDS.time():
                    _applied, claimed = await self.transitions.complete_and_claim(
                        [r for r, _ in batch],
                        [rid for _, rid in batch],
                        Continuation(
                            self.name, slots, self.config.lease_seconds, self.config.namespaces
                        ),
                        reports,
                    )
            elif reports:
                claimed = []
                await self.db.write(lambda tx: write_step_reports(tx, reports))
            else:
                return
        except BaseException:
            self._done[:0] = batch  # nothing acknowledged is dropped: try again next round
            raise
        for result, _run in batch:
            self._inflight.pop(result.step_id, None)
        for step in claimed:
            self._start(step)
        if batch:
            self._slot_free.set()

    # -- leases -------------------------------------------------------------------------

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        interval = self.config.lease_seconds / 3
        last_beat = 0.0
        async with self.db.watching(CANCEL_TOPIC) as cancels:
            while not stop.is_set():
                await cancels.wait(interval)
                cancels.look()
                try:
                    if time.monotonic() - last_beat > interval:
                        last_beat = time.monotonic()
                        await beat(self.db, self.name)  # "a worker is alive", even when idle
                    if not self._inflight:
                        continue
                    cancel_ids = await heartbeat(self.db, self.name, self.config.lease_seconds)
                except Exception:
                    log.exception("heartbeat failed")
                    continue
                for step_id in cancel_ids:
                    entry = self._inflight.get(step_id)
                    if entry and not entry[0].cancelled.is_set():
                        entry[0].cancel()
                        asyncio.get_running_loop().call_later(
                            self.config.cancel_grace, self._force_cancel, step_id
                        )

    def _force_cancel(self, step_id: int) -> None:
        """An async step that ignored ``ctx.cancelled`` for the grace period is cancelled."""
        entry = self._inflight.get(step_id)
        if entry and not entry[1].done():
            entry[1].cancel()
