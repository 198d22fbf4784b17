"""The one door of every run and step state change: start, complete-and-advance, cancel,
resume, retry. The planner (``model/advance.py``) decides; the store loads and writes.

Each public call is one transaction. Work spreads through a work list inside it: a child run
that ends completes its parent step, a cancel reaches child runs, a sub-workflow step starts its
child run; everything commits together or not at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from legato.engine.claims import claim_in, claim_released, started_events
from legato.engine.limits import take_queue_room
from legato.model.advance import (
    ChildRequest,
    Effects,
    RunGraph,
    apply_result,
    cancel_run,
    hold_run,
    new_steps,
    release_held,
    resume,
    retry_run,
    start_run,
)
from legato.model.definition import WorkflowDefinition
from legato.model.errors import InvalidInput, LegatoError, NotFound
from legato.model.inputs import InputError, resolve_inputs
from legato.model.records import ClaimedStep, RunState, StepResult
from legato.model.starts import StartRun
from legato.model.states import RunStatus, StepStatus
from legato.store.claims import mirror_claim
from legato.store.database import Database, Tx
from legato.store.limits import any_limits
from legato.store.run_graphs import (
    DefinitionCache,
    GraphCache,
    insert_runs,
    insert_steps,
    load_graphs,
    persist,
)
from legato.store.step_reports import StepReports, write_step_reports
from legato.store.workflows import PinnedVersion, pinned_version

__all__ = [
    "SCHEDULES_TOPIC",
    "SCHEDULE_RUNS_TOPIC",
    "Continuation",
    "LocalWorker",
    "NewRun",
    "RunRequest",
    "Transitions",
    "lease_lost",
]

READY_TOPIC = "steps"
CANCEL_TOPIC = "cancel"
SCHEDULES_TOPIC = "schedules"  # schedules changed, or a run is held until a later time
SCHEDULE_RUNS_TOPIC = "schedule-runs"  # a run a schedule started has ended


@dataclass(frozen=True)
class RunRequest:
    """A run a face asks for in a namespace, before the engine resolved its workflow and
    inputs."""

    namespace_id: int
    namespace: str
    start: StartRun


@dataclass
class _StartScope:
    """What one start transaction looked up once for all its runs."""

    workflows: dict[tuple[int, str, int | None], Any] = field(default_factory=dict)
    queues: dict[int, list[int] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class NewRun:
    namespace_id: int
    workflow_id: int
    definition: WorkflowDefinition
    workflow_version: int
    inputs: dict[str, Any]
    labels: dict[str, str]
    priority: int = 0
    operation_type: str | None = None
    requestor: str | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    notify_url: str | None = None
    parent_run_id: int | None = None
    parent_step_id: int | None = None
    start_at: float | None = None  # a delayed start: held QUEUED until then
    schedule_id: int | None = None  # started by this schedule, for this fire time
    fire_time: float | None = None


class _DurationBuffer:
    """Step durations feed estimates, not correctness: they are written every few seconds
    with whatever transaction comes along, rather than one upsert per completion."""

    EVERY_SECONDS = 2.0

    def __init__(self) -> None:
        self._pending: list[tuple[RunState, str, float]] = []
        self._last = 0.0

    def add_and_take_if_due(
        self, items: list[tuple[RunState, str, float]]
    ) -> list[tuple[RunState, str, float]]:
        self._pending.extend(items)
        if not self._pending or time.monotonic() - self._last < self.EVERY_SECONDS:
            return []
        self._last = time.monotonic()
        taken, self._pending = self._pending, []
        return taken


@dataclass(frozen=True)
class Continuation:
    """A worker reporting results, ready to take more steps in the same transaction."""

    worker: str
    slots: int
    lease_seconds: float
    namespaces: tuple[str, ...] = ()  # a worker bound to namespaces takes only theirs


@dataclass
class _Item:
    run_id: int
    kind: str  # result | cancel | resume | retry | release | hold
    result: StepResult | None = None
    reason: str = ""
    code: str = "canceled"
    step_id: int = 0
    payload: dict[str, Any] | None = None
    until: float = 0.0


class LocalWorker(Protocol):
    """A worker in this process, which takes the first steps of runs started here straight
    from the starting transaction (no wake-up, no claim of its own)."""

    def continuation(self) -> Continuation | None:
        """Its name, lease and free slots now; None when it takes nothing."""

    def take(self, steps: list[ClaimedStep]) -> None:
        """Run steps claimed for it (after the claiming transaction committed)."""


class Transitions:
    def __init__(self, db: Database, definitions: DefinitionCache) -> None:
        self.db = db
        self.definitions = definitions
        self._durations = _DurationBuffer()
        self._local: list[LocalWorker] = []
        self._graphs = GraphCache()

    async def claim(
        self, worker: str, limit: int, lease_seconds: float, namespaces: Sequence[str] = ()
    ) -> list[ClaimedStep]:
        """Claim up to ``limit`` ready steps for ``worker`` (of ``namespaces`` only, if
        given); the graphs this process keeps take in what the claim wrote."""

        async def tx_fn(tx: Tx) -> list[ClaimedStep]:
            counters: dict[int, int | None] = {}
            claimed = await claim_in(
                tx, worker, limit, lease_seconds, namespaces=namespaces, counters_into=counters
            )
            tx.after_commit(lambda: self._graphs.claimed(claimed, counters, worker))
            return claimed

        return await self.db.write(tx_fn)

    def attach(self, worker: LocalWorker) -> None:
        self._local.append(worker)

    def detach(self, worker: LocalWorker) -> None:
        if worker in self._local:
            self._local.remove(worker)

    def _local_taker(self) -> tuple[LocalWorker, Continuation] | None:
        offers = [(w, c) for w in self._local if (c := w.continuation()) is not None]
        return max(offers, key=lambda o: o[1].slots, default=None)

    # -- public operations (one transaction each) ---------------------------------------

    async def complete(self, results: Sequence[StepResult], run_ids: Sequence[int]) -> int:
        """Record step results (fenced on the lease) and advance their runs."""
        applied, _ = await self.complete_and_claim(results, run_ids, None)
        return applied

    async def complete_and_claim(
        self,
        results: Sequence[StepResult],
        run_ids: Sequence[int],
        claim_for: Continuation | None,
        reports: StepReports | None = None,
    ) -> tuple[int, list[ClaimedStep]]:
        """Record results and, in the same transaction, let the reporting worker take the
        steps those results released (up to its free slots): the next step of a run starts
        without another round trip through the queue."""
        items = [
            _Item(run_id, "result", result=r) for r, run_id in zip(results, run_ids, strict=True)
        ]

        async def tx_fn(tx: Tx) -> tuple[int, list[ClaimedStep]]:
            if reports:  # logs and progress first, so they precede the step's end
                await write_step_reports(tx, reports)
            return await self._drain(tx, {}, Effects(), items, time.time(), claim_for=claim_for)

        return await self.db.write(tx_fn)

    async def cancel(
        self, run_id: int, reason: str = "Canceled by request", code: str = "canceled"
    ) -> int:
        return await self.db.write(
            lambda tx: self._process(tx, [_Item(run_id, "cancel", reason=reason, code=code)])
        )

    async def resume(self, run_id: int, step_id: int, payload: dict[str, Any]) -> int:
        return await self.db.write(
            lambda tx: self._process(
                tx, [_Item(run_id, "resume", step_id=step_id, payload=payload)]
            )
        )

    async def retry(self, run_id: int) -> int:
        return await self.db.write(lambda tx: self._process(tx, [_Item(run_id, "retry")]))

    async def hold(self, run_id: int, until: float) -> int:
        """Move the start of a run that has not started yet to ``until``."""
        return await self.db.write(
            lambda tx: self._process(tx, [_Item(run_id, "hold", until=until)])
        )

    async def release_in(self, tx: Tx, run_ids: Sequence[int]) -> int:
        """Release held runs whose start time has come, in the caller's transaction."""
        return await self._process(tx, [_Item(r, "release") for r in run_ids])

    async def cancel_in(self, tx: Tx, run_ids: Sequence[int], reason: str) -> int:
        """Cancel runs in the caller's transaction."""
        return await self._process(tx, [_Item(r, "cancel", reason=reason) for r in run_ids])

    async def start_runs(
        self, tx: Tx, requests: Sequence[RunRequest]
    ) -> list[RunGraph | LegatoError]:
        """Admit each request (its workflow version, checked inputs, the namespace's queue
        limit) and start the admitted ones together; a refused request answers its error and
        leaves the others alone. A run whose first steps built values past a bound refuses
        the whole transaction (``InvalidInput``), for the caller to try the others again."""
        scope = _StartScope()
        outcomes: list[RunGraph | LegatoError] = []
        admitted: list[tuple[int, NewRun]] = []
        for index, req in enumerate(requests):
            try:
                admitted.append((index, await self._admit(tx, req, scope)))
                outcomes.append(LegatoError("not started"))
            except LegatoError as exc:
                outcomes.append(exc)
        graphs = await self.create_runs(tx, [new for _, new in admitted], local=True)
        refuse_bounded_values(graphs)
        for (index, _new), graph in zip(admitted, graphs, strict=True):
            outcomes[index] = graph
        return outcomes

    async def _admit(self, tx: Tx, req: RunRequest, scope: _StartScope) -> NewRun:
        start = req.start
        row, definition, inputs = await self.resolve(
            tx, req.namespace_id, start.workflow, start.version, dict(start.inputs), scope.workflows
        )
        await take_queue_room(tx, req.namespace_id, req.namespace, scope.queues, row.queue_limit)
        return NewRun(
            namespace_id=req.namespace_id,
            workflow_id=row.id,
            definition=definition,
            workflow_version=row.version,
            inputs=inputs,
            labels={**definition.labels, **start.labels},
            priority=start.priority,
            operation_type=start.operation_type,
            requestor=start.requestor,
            external_id=start.external_id,
            idempotency_key=start.idempotency_key,
            notify_url=start.notify_url,
            start_at=start.start_at,
        )

    async def create_runs(
        self, tx: Tx, news: Sequence[NewRun], *, local: bool = False
    ) -> list[RunGraph]:
        """Many runs in one go: a fixed handful of statements, however many runs. With
        ``local``, a worker of this process with free slots takes their first steps in the
        same transaction; the graphs answered show the runs as admitted until it commits
        (then they take in the claim, for the next completion to use)."""
        if not news:
            return []
        fx = Effects()
        now = time.time()
        graphs = await self._insert_runs(tx, news, now, fx)
        by_id = {g.run.id: g for g in graphs}
        worker, continuation = (self._local_taker() if local else None) or (None, None)
        _, claimed = await self._drain(tx, by_id, fx, [], now, claim_for=continuation)
        if worker is not None and claimed:
            tx.after_commit(lambda: worker.take(claimed))
        return graphs

    def _taker(
        self,
        tx: Tx,
        fx: Effects,
        graphs: dict[int, RunGraph],
        now: float,
        claim_for: Continuation | None,
        claimed: list[ClaimedStep],
        restarted: set[int],
        counters: dict[int, int | None],
    ) -> Callable[[], Awaitable[None]]:
        """Claims, for ``claim_for``, the due steps the transaction released (into
        ``claimed``): those of running runs at once, in their graphs (written with the
        transaction's other step updates); the others by the claim statement the function
        answered, for once its runs and steps are written and before its events are. The
        claims of runs it started are mirrored into their graphs only after the commit (the
        answer to a start shows the run as admitted); ``counters`` gets their new change
        counters for that."""

        due = [s for s in fx.ready_steps if s.status == StepStatus.READY and s.not_before <= now]
        if claim_for is not None and claim_for.slots > 0 and due and not claim_for.namespaces:
            held, due = claim_released(
                graphs, due, claim_for.worker, claim_for.slots, claim_for.lease_seconds, now
            )
            claimed.extend(held)
            fx.raw_events.extend(started_events([], held, claim_for.worker, now))

        async def take() -> None:
            slots = 0 if claim_for is None else claim_for.slots - len(claimed)
            if claim_for is None or slots <= 0 or not due:
                return
            run_ids = sorted({s.run_id for s in due})
            queued = {r for r in run_ids if graphs[r].run.status == RunStatus.QUEUED}
            taken = await claim_in(
                tx,
                claim_for.worker,
                slots,
                claim_for.lease_seconds,
                run_ids=run_ids,
                queued_runs=queued,
                events_into=fx.raw_events,
                namespaces=claim_for.namespaces,
                counters_into=counters,
            )
            claimed.extend(taken)
            # what the claim wrote, in the graphs the cache keeps
            for c in taken:
                if c.run_id in queued:
                    continue
                step = graphs[c.run_id].by_id(c.id)
                if step is None:
                    restarted.add(c.run_id)
                    continue
                mirror_claim(step, c, claim_for.worker)

        return take

    # -- the work list ------------------------------------------------------------------

    async def _process(self, tx: Tx, items: list[_Item]) -> int:
        applied, _ = await self._drain(tx, {}, Effects(), items, time.time())
        return applied

    async def _drain(
        self,
        tx: Tx,
        graphs: dict[int, RunGraph],
        fx: Effects,
        items: list[_Item],
        now: float,
        *,
        claim_for: Continuation | None = None,
    ) -> tuple[int, list[ClaimedStep]]:
        """Apply ``items`` and all they lead to and write the result, ``claim_for`` taking
        the steps it released; answers how many items applied and the steps claimed. Once
        committed, the graphs go to the cache (but for runs a claim started meanwhile)."""
        applied = 0
        children_done = notices_done = cancels_done = 0
        while True:
            missing = {it.run_id for it in items} - graphs.keys()
            if missing:
                graphs.update(
                    await load_graphs(
                        tx.conn, missing, self.definitions, lock=True, cache=self._graphs
                    )
                )
            for it in items:
                graph = graphs.get(it.run_id)
                if graph is not None and self._apply(graph, it, now, fx):
                    applied += 1
            items = []
            if len(fx.children) > children_done:
                await insert_steps(tx.conn, [s for s in fx.new_steps if s.is_new])
                for req in fx.children[children_done:]:
                    outcome = await self._start_child(tx, req, now, fx)
                    if isinstance(outcome, RunGraph):
                        graphs[outcome.run.id] = outcome
                    else:
                        items.append(outcome)
                children_done = len(fx.children)
            for notice in fx.parent_notices[notices_done:]:
                items.append(_Item(notice.parent_run_id, "result", result=notice.result))
            notices_done = len(fx.parent_notices)
            for run_id, reason in fx.cancel_runs[cancels_done:]:
                items.append(_Item(run_id, "cancel", reason=reason))
            cancels_done = len(fx.cancel_runs)
            if not items:
                break
        fx.durations = self._durations.add_and_take_if_due(fx.durations)
        claimed: list[ClaimedStep] = []
        restarted: set[int] = set()
        counters: dict[int, int | None] = {}
        take = self._taker(tx, fx, graphs, now, claim_for, claimed, restarted, counters)
        written_steps = await persist(tx, graphs.values(), fx, now, take)
        written = [g for g in graphs.values() if g.run.id not in restarted]

        def keep() -> None:
            self._graphs.keep(written)
            if counters and claim_for is not None:  # runs the claim started
                self._graphs.claimed(claimed, counters, claim_for.worker)

        tx.after_commit(keep)
        # work left for other workers (or a backoff to time); a run that ended may free a
        # slot in a limited namespace
        if len(claimed) < len(fx.ready_steps) or (fx.finished_runs and any_limits(tx.shared)):
            tx.wake(READY_TOPIC)
        if any(r.schedule_id is not None for r in fx.finished_runs):
            tx.wake(SCHEDULE_RUNS_TOPIC)  # a buffered fire may wait for it
        if any(g.run.held_until is not None for g in graphs.values()):
            tx.wake(SCHEDULES_TOPIC)  # the scheduler releases held runs
        # a cancel asked of a running step marks it changed: its worker is told (later
        # looks at the same step come with the workers' heartbeats)
        if any(s.cancel_requested and s.status == "RUNNING" for s in written_steps):
            tx.wake(CANCEL_TOPIC)
        for g in graphs.values():
            tx.wake(f"run:{g.run.id}")
            if g.run.parent_run_id is not None:  # its steps show in the parent's counts
                tx.wake(f"run:{g.run.parent_run_id}")
        return applied, claimed

    def _apply(self, graph: RunGraph, it: _Item, now: float, fx: Effects) -> bool:
        if it.kind == "result":
            assert it.result is not None
            return apply_result(graph, it.result, now, fx)
        if it.kind == "cancel":
            return cancel_run(graph, now, fx, reason=it.reason, code=it.code)
        if it.kind == "resume":
            return resume(graph, it.step_id, it.payload or {}, now, fx)
        if it.kind == "retry":
            return retry_run(graph, now, fx)
        if it.kind == "release":
            return release_held(graph, now, fx)
        if it.kind == "hold":
            return hold_run(graph, it.until, now, fx)
        raise ValueError(it.kind)

    # -- creating runs ------------------------------------------------------------------

    async def _insert_runs(
        self, tx: Tx, news: Sequence[NewRun], now: float, fx: Effects
    ) -> list[RunGraph]:
        """Plan each new run in memory (first steps released), then insert all runs and all
        their steps with one statement each."""
        graphs = []
        for new in news:
            d = new.definition
            run = RunState(
                id=0,
                uuid=str(uuid.uuid4()),
                namespace_id=new.namespace_id,
                workflow_id=new.workflow_id,
                workflow_name=d.name,
                workflow_version=new.workflow_version,
                status=RunStatus.QUEUED,
                inputs=new.inputs,
                vars={},
                labels=new.labels,
                priority=new.priority,
                operation_type=new.operation_type or d.operation_type or d.name,
                created_at=now,
                updated_at=now,
                requestor=new.requestor,
                external_id=new.external_id,
                idempotency_key=new.idempotency_key,
                notify_url=new.notify_url,
                parent_run_id=new.parent_run_id,
                parent_step_id=new.parent_step_id,
                total_steps=len(d.steps),
                start_at=new.start_at,
                schedule_id=new.schedule_id,
                fire_time=new.fire_time,
            )
            self.definitions.put(new.workflow_id, d)
            graph = RunGraph(run, d, new_steps(d, run, now))
            start_run(graph, now, fx)
            graphs.append(graph)
        await insert_runs(tx.conn, graphs)
        return graphs

    async def resolve(
        self,
        tx: Tx,
        namespace_id: int,
        workflow: str,
        version: int | None,
        given: dict[str, Any],
        cache: dict[tuple[int, str, int | None], Any] | None = None,
    ) -> tuple[PinnedVersion, WorkflowDefinition, dict[str, Any]]:
        """The workflow version a new run pins, and its checked inputs."""
        key = (namespace_id, workflow, version)
        if cache is not None and key in cache:
            row = cache[key]
        else:
            row = await pinned_version(tx.conn, namespace_id, workflow, version)
            if cache is not None:
                cache[key] = row
        if row is None:
            which = f"version {version} of " if version else ""
            raise NotFound(
                f"{which}workflow '{workflow}' does not exist", code="workflow_not_found"
            )
        definition = (await self.definitions.get_many(tx.conn, [row.id]))[row.id]
        try:
            inputs = resolve_inputs(definition, given)
        except InputError as exc:
            raise InvalidInput(str(exc), code="invalid_inputs", errors=exc.problems) from exc
        return row, definition, inputs

    async def _start_child(
        self, tx: Tx, req: ChildRequest, now: float, fx: Effects
    ) -> RunGraph | _Item:
        parent = req.run
        try:
            row, definition, inputs = await self.resolve(
                tx, parent.namespace_id, req.workflow, req.version, req.inputs
            )
        except LegatoError as exc:
            failure = StepResult(
                req.step.id,
                req.step.attempt,
                StepStatus.FAILED,
                error={"code": exc.code, "message": exc.detail},
                retryable=False,
            )
            return _Item(parent.id, "result", result=failure)
        [graph] = await self._insert_runs(
            tx,
            [
                NewRun(
                    namespace_id=parent.namespace_id,
                    workflow_id=row.id,
                    definition=definition,
                    workflow_version=row.version,
                    inputs=inputs,
                    labels=dict(parent.labels),
                    priority=parent.priority,
                    requestor=parent.requestor,
                    parent_run_id=parent.id,
                    parent_step_id=req.step.id,
                )
            ],
            now,
            fx,
        )
        req.step.child_run_id = graph.run.id
        req.step.dirty = True
        return graph


def refuse_bounded_values(graphs: Sequence[RunGraph]) -> None:
    """A run whose first steps built values past a bound is answered, not kept: the whole
    transaction rolls back."""
    for graph in graphs:
        if graph.refused_expressions:
            first = graph.refused_expressions[0]
            raise InvalidInput(
                f"{first['path']}: {first['message']}",
                code="bad_expression",
                errors=[
                    {**refused, "code": "bad_expression"} for refused in graph.refused_expressions
                ],
            )


def lease_lost(step_id: int, attempt: int, worker: str, max_takeovers: int) -> StepResult:
    """The result the reaper records for a step whose worker stopped renewing its lease."""
    return StepResult(
        step_id,
        attempt,
        StepStatus.FAILED,
        worker=worker,
        error={"code": "lease_expired", "message": f"worker {worker} stopped responding"},
        max_takeovers=max_takeovers,
    )
