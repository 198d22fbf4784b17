"""One run moved the way the engine moves it, with no database: claims as the store's claim
makes them, results as workers and the reaper report them, the planner deciding the rest.

Every status change is recorded (the planner's through ``move``, the claim's by hand) so
that tests can hold each one against the state table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from legato.model.advance import (
    Effects,
    RunGraph,
    apply_result,
    cancel_run,
    new_steps,
    resume,
    retry_run,
    start_run,
)
from legato.model.definition_loading import load_definition
from legato.model.inputs import resolve_inputs
from legato.model.records import RunState, StepResult, StepState
from legato.model.states import RunStatus, StepStatus

__all__ = ["Move", "Simulation", "lease_lost", "recording_moves"]

#: (the step or run, old status, new status)
Move = tuple[StepState | RunState, str, str]


def lease_lost(step_id: int, attempt: int, worker: str, max_takeovers: int) -> StepResult:
    """What the reaper records for a step whose worker stopped renewing its lease (as the
    store's ``lease_lost`` builds it)."""
    return StepResult(
        step_id,
        attempt,
        StepStatus.FAILED,
        worker=worker,
        error={"code": "lease_expired", "message": f"worker {worker} stopped responding"},
        max_takeovers=max_takeovers,
    )


@contextmanager
def recording_moves(moves: list[Move]) -> Iterator[None]:
    """Every ``move`` of a step or a run made in the block, appended to ``moves``."""
    step_move, run_move = StepState.move, RunState.move

    def record_step(self: StepState, status: str, message: str | None = None) -> None:
        moves.append((self, self.status, status))
        step_move(self, status, message)

    def record_run(self: RunState, status: str, message: str | None = None) -> None:
        moves.append((self, self.status, status))
        run_move(self, status, message)

    StepState.move = record_step  # type: ignore[method-assign]
    RunState.move = record_run  # type: ignore[method-assign]
    try:
        yield
    finally:
        StepState.move = step_move  # type: ignore[method-assign]
        RunState.move = run_move  # type: ignore[method-assign]


def new_run(
    name: str, *, run_id: int = 1, inputs: dict[str, Any] | None = None, now: float = 1000.0
) -> RunState:
    return RunState(
        id=run_id,
        uuid=f"00000000-0000-4000-8000-{run_id:012d}",
        namespace_id=1,
        workflow_id=1,
        workflow_name=name,
        workflow_version=1,
        status=RunStatus.QUEUED,
        inputs=dict(inputs or {}),
        vars={},
        labels={},
        priority=0,
        operation_type=name,
        created_at=now,
        updated_at=now,
    )


class Simulation:
    """One run, its graph kept in memory as the store would keep it between transactions."""

    LEASE_SECONDS = 30.0

    def __init__(
        self, source: str, *, inputs: dict[str, Any] | None = None, run_id: int = 1
    ) -> None:
        self.definition = load_definition(source)
        self.ids = itertools.count(run_id * 1000 + 1)
        self.now = 1000.0
        given = resolve_inputs(self.definition, inputs or {})  # as the store does at start
        self.run = new_run(self.definition.name, run_id=run_id, inputs=given, now=self.now)
        self.graph = RunGraph(
            self.run, self.definition, new_steps(self.definition, self.run, self.now)
        )
        #: every status change so far, in order
        self.moves: list[Move] = []
        #: the effects of the last change
        self.fx = Effects()
        self.change(lambda fx: start_run(self.graph, self.now, fx))

    # -- the store's part ------------------------------------------------------------------

    def change(self, plan: Callable[[Effects], Any]) -> Any:
        """Run one planner call as one transaction: new rows get their ids after it."""
        fx = Effects()
        with recording_moves(self.moves):
            answer = plan(fx)
        for step in self.graph.steps:
            if step.id == 0:
                step.id = next(self.ids)
        for step in self.graph.steps:
            if step.parent is not None and step.parent_step_id is None:
                step.parent_step_id = step.parent.id
        self.fx = fx
        return answer

    def claimable(self) -> list[StepState]:
        return [
            s for s in self.graph.steps if s.status == StepStatus.READY and s.not_before <= self.now
        ]

    def claim(self, step: StepState, worker: str = "w1") -> None:
        """As the store's claim: READY to RUNNING under a lease, ``attempt + 1``, and the run
        RUNNING if it was QUEUED."""
        assert step.status == StepStatus.READY and step.not_before <= self.now
        self.moves.append((step, step.status, StepStatus.RUNNING))
        step.status, step.attempt = StepStatus.RUNNING, step.attempt + 1
        step.lease_owner, step.lease_expires_at = worker, self.now + self.LEASE_SECONDS
        step.started_at, step.progress, step.status_message = self.now, None, "Running"
        if self.run.status == RunStatus.QUEUED:
            self.moves.append((self.run, self.run.status, RunStatus.RUNNING))
            self.run.status, self.run.started_at = RunStatus.RUNNING, self.now
            self.run.status_message = "Running"

    def running(self) -> list[StepState]:
        """Steps a worker holds (not the ones waiting on a child run or an approval)."""
        return [s for s in self.graph.steps if s.status == StepStatus.RUNNING and s.lease_owner]

    # -- what workers, the reaper and clients do -------------------------------------------

    def report(self, step: StepState, status: str, **extra: Any) -> bool:
        worker = extra.pop("worker", step.lease_owner)
        attempt = extra.pop("attempt", step.attempt)
        result = StepResult(step.id, attempt, status, worker=worker, **extra)
        return bool(self.change(lambda fx: apply_result(self.graph, result, self.now, fx)))

    def succeed(self, step: StepState, outputs: dict[str, Any] | None = None) -> bool:
        return self.report(step, StepStatus.SUCCEEDED, outputs=outputs or {})

    def fail(self, step: StepState, message: str = "boom", **extra: Any) -> bool:
        error = {"code": "boom", "message": message}
        return self.report(step, StepStatus.FAILED, error=error, **extra)

    def lose_lease(self, step: StepState, max_takeovers: int = 2) -> bool:
        """The lease lapsed: the reaper records ``lease_lost`` for the holder."""
        assert step.lease_owner is not None
        result = lease_lost(step.id, step.attempt, step.lease_owner, max_takeovers)
        return bool(self.change(lambda fx: apply_result(self.graph, result, self.now, fx)))

    def time_out(self, step: StepState) -> bool:
        """The step ran past its timeout (as the worker or the reaper reports it)."""
        error = {"code": "step_timeout", "message": "step exceeded its timeout"}
        return self.report(step, StepStatus.TIMED_OUT, error=error)

    def cancel(self, **how: Any) -> bool:
        return bool(self.change(lambda fx: cancel_run(self.graph, self.now, fx, **how)))

    def retry(self) -> bool:
        return bool(self.change(lambda fx: retry_run(self.graph, self.now, fx)))

    def resume(self, step: StepState, payload: dict[str, Any]) -> bool:
        return bool(self.change(lambda fx: resume(self.graph, step.id, payload, self.now, fx)))

    # -- reading ---------------------------------------------------------------------------

    def top(self) -> list[StepState]:
        return self.graph.top()

    def step(self, key: str) -> StepState:
        return next(s for s in self.graph.steps if s.key == key)

    def statuses(self) -> dict[str, str]:
        """Every step's status by key, items and the steps of groups included."""
        return {s.key: str(s.status) for s in self.graph.steps}

    def drive(
        self,
        *,
        fail: frozenset[str] = frozenset(),
        outputs: dict[str, dict[str, Any]] | None = None,
        limit: int = 200,
    ) -> None:
        """Claim and finish everything claimable until the run has ended: the steps named in
        ``fail`` fail for good, the others succeed with their ``outputs`` (by key)."""
        for _ in range(limit):
            if self.run.status not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELING):
                return
            for step in self.claimable():
                self.claim(step)
            for step in self.running():
                if step.key in fail:
                    self.fail(step, retryable=False)
                else:
                    assert self.succeed(step, (outputs or {}).get(step.key))
            self.now += 60.0
        raise AssertionError(f"the run never ended: {self.run.status} {self.statuses()}")
