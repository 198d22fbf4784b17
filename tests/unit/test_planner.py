"""The pure planner on its own, without a database: runs driven through random interleavings
of claims, successes, failures, lost leases, cancels and retries, checked against the rules
every face relies on."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legato.model.advance import (
    Effects,
    RunGraph,
    apply_result,
    cancel_run,
    new_steps,
    retry_run,
    start_run,
)
from legato.model.definition_loading import load_definition
from legato.model.records import RunState, StepResult, StepState
from legato.model.states import RUN_TERMINAL, STEP_TERMINAL, RunStatus, StepStatus
from legato.service.views import progress

DIAMOND = """
name: diamond
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
  - id: b
    needs: [a]
    uses: python
    with: {function: "demo_steps:noop"}
    retry: {attempts: 2, backoff: fixed, initial: 1s}
  - id: c
    needs: [a]
    uses: python
    with: {function: "demo_steps:noop"}
  - id: each
    needs: [a]
    foreach: [1, 2, 3]
    max_parallel: 2
    uses: python
    with: {function: "demo_steps:noop", n: "${{ item }}"}
  - id: d
    needs: [b, c, each]
    uses: python
    with: {function: "demo_steps:noop"}
"""


class Simulation:
    """One run as the engine moves it: claims as the store makes them (a READY step whose
    time has come turns RUNNING under a lease, its run RUNNING), results as workers report
    them, and the planner deciding the rest."""

    def __init__(self, source: str) -> None:
        definition = load_definition(source)
        self.ids = itertools.count(1)
        self.now = 1000.0
        self.run = RunState(
            id=1,
            uuid="00000000-0000-4000-8000-000000000001",
            namespace_id=1,
            workflow_id=1,
            workflow_name=definition.name,
            workflow_version=1,
            status=RunStatus.QUEUED,
            inputs={},
            vars={},
            labels={},
            priority=0,
            operation_type=definition.name,
            created_at=self.now,
            updated_at=self.now,
        )
        self.graph = RunGraph(self.run, definition, new_steps(definition, self.run, self.now))
        self.succeeded: Counter[int] = Counter()
        self.applied: set[tuple[int, int]] = set()
        self._effects(lambda fx: start_run(self.graph, self.now, fx))

    def _effects(self, change: Any) -> Any:
        fx = Effects()
        answer = change(fx)
        for step in self.graph.steps:
            if step.id == 0:  # the store gives new rows their ids
                step.id = next(self.ids)
        for step in self.graph.steps:
            if step.parent is not None and step.parent_step_id is None:
                step.parent_step_id = step.parent.id
        for event in fx.events:
            if event["type"] == "step.succeeded" and event["step"] is not None:
                self.succeeded[event["step"].id] += 1
        return answer

    # -- what can happen ---------------------------------------------------------------

    def claimable(self) -> list[StepState]:
        return [
            s
            for s in self.graph.steps
            if s.status == StepStatus.READY
            and s.not_before <= self.now
            and self.run.status not in RUN_TERMINAL
        ]

    def running(self) -> list[StepState]:
        return [s for s in self.graph.steps if s.status == StepStatus.RUNNING and s.lease_owner]

    def claim(self, step: StepState) -> None:
        step.status, step.attempt = StepStatus.RUNNING, step.attempt + 1
        step.lease_owner, step.started_at, step.progress = "w1", self.now, None
        if self.run.status == RunStatus.QUEUED:
            self.run.status, self.run.started_at = RunStatus.RUNNING, self.now

    def report(self, step: StepState, status: str, **extra: Any) -> bool:
        result = StepResult(step.id, step.attempt, status, worker="w1", **extra)
        applied: bool = self._effects(lambda fx: apply_result(self.graph, result, self.now, fx))
        if applied:
            assert (step.id, step.attempt) not in self.applied, "a result recorded twice"
            self.applied.add((step.id, step.attempt))
        return applied

    def cancel(self) -> bool:
        return bool(self._effects(lambda fx: cancel_run(self.graph, self.now, fx)))

    def retry(self) -> bool:
        again = bool(self._effects(lambda fx: retry_run(self.graph, self.now, fx)))
        if again:  # what runs again counts its attempts anew
            live = {s.id for s in self.graph.steps if s.status in STEP_TERMINAL}
            self.applied = {(i, n) for i, n in self.applied if i in live}
        return again

    def top(self) -> list[StepState]:
        return self.graph.top()


MOVES = st.lists(
    st.tuples(
        st.sampled_from(["claim", "succeed", "fail", "lose", "wait", "cancel", "retry", "again"]),
        st.integers(min_value=0, max_value=7),
    ),
    max_size=80,
)


def _check(sim: Simulation, last_percent: float) -> float:
    top = sim.top()
    statuses = [s.status for s in top]
    # a run has ended exactly when every one of its steps has
    if sim.run.status in RUN_TERMINAL:
        assert all(s.status in STEP_TERMINAL for s in sim.graph.steps), statuses
    elif sim.run.status != RunStatus.CANCELING:
        assert not all(s.status in STEP_TERMINAL for s in top), (sim.run.status, statuses)
    # counts by status add up, and the run's own count agrees with its steps
    counts = Counter(statuses)
    assert sum(counts.values()) == sim.run.total_steps == len(top)
    assert sim.run.finished_steps == sum(1 for s in top if s.status in STEP_TERMINAL)
    # a step succeeds once
    assert all(n == 1 for n in sim.succeeded.values()), sim.succeeded
    percent = float(progress(sim.run, list(sim.graph.steps))["percent"])
    return percent


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MOVES)
def test_random_interleavings_keep_the_rules(moves: list[tuple[str, int]]) -> None:
    sim = Simulation(DIAMOND)
    percent = _check(sim, 0.0)
    for move, pick in moves:
        if move == "claim" and sim.claimable():
            sim.claim(sim.claimable()[pick % len(sim.claimable())])
        elif move in ("succeed", "fail", "lose") and sim.running():
            step = sim.running()[pick % len(sim.running())]
            if move == "succeed":
                assert sim.report(step, StepStatus.SUCCEEDED, outputs={"n": pick})
            elif move == "fail":
                sim.report(step, StepStatus.FAILED, error={"code": "boom", "message": "boom"})
            else:  # its worker died: the reaper reports the lost lease
                sim.report(
                    step,
                    StepStatus.FAILED,
                    max_takeovers=2,
                    error={"code": "lease_expired", "message": "worker stopped responding"},
                )
        elif move == "again" and sim.applied:
            # a result delivered twice (a worker retrying its report) is fenced off
            step_id, attempt = sorted(sim.applied)[pick % len(sim.applied)]
            step = sim.graph.by_id(step_id)
            if step is not None:
                stale = StepResult(step_id, attempt, StepStatus.SUCCEEDED, worker="w1")
                before = (step.status, step.attempt)
                if (step.status, step.attempt) != (StepStatus.RUNNING, attempt):
                    assert not sim._effects(
                        lambda fx, r=stale: apply_result(sim.graph, r, sim.now, fx)
                    )
                    assert (step.status, step.attempt) == before
        elif move == "wait":
            sim.now += 1.5
        elif move == "cancel":
            was = sim.run.status
            assert sim.cancel() == (was not in RUN_TERMINAL and was != RunStatus.CANCELING)
        elif move == "retry":
            if sim.retry():
                sim.succeeded.clear()  # the failed part runs again; what succeeded is kept
                percent = 0.0
        new = _check(sim, percent)
        assert new >= percent or sim.run.status == RunStatus.CANCELED, (percent, new)
        percent = new


def _drive_to_the_end(sim: Simulation) -> None:
    for _ in range(200):
        if sim.run.status in RUN_TERMINAL:
            return
        for step in sim.claimable():
            sim.claim(step)
        for step in sim.running():
            assert sim.report(step, StepStatus.SUCCEEDED, outputs={})
        sim.now += 1.0
    raise AssertionError(f"the run never ended: {sim.run.status}")


def test_a_run_whose_steps_all_succeed_succeeds() -> None:
    sim = Simulation(DIAMOND)
    _drive_to_the_end(sim)
    assert sim.run.status == RunStatus.SUCCEEDED
    assert progress(sim.run, list(sim.graph.steps))["percent"] == 100.0
    assert sum(sim.succeeded.values()) == len(sim.graph.steps)  # foreach items included


def test_a_failure_past_its_retries_fails_the_run_and_skips_what_depends_on_it() -> None:
    sim = Simulation(DIAMOND)
    [a] = sim.claimable()
    sim.claim(a)
    sim.report(a, StepStatus.SUCCEEDED, outputs={})
    b = next(s for s in sim.top() if s.key == "b")
    for attempt in (1, 2):
        sim.now += 2.0
        assert b in sim.claimable()
        sim.claim(b)
        assert b.attempt == attempt
        sim.report(b, StepStatus.FAILED, error={"code": "boom", "message": "boom"})
    assert b.status == StepStatus.FAILED
    _drive_to_the_end(sim)
    statuses = {s.key: s.status for s in sim.top()}
    assert sim.run.status == RunStatus.FAILED
    assert statuses == {
        "a": "SUCCEEDED",
        "b": "FAILED",
        "c": "SUCCEEDED",
        "each": "SUCCEEDED",
        "d": "SKIPPED",
    }
    assert sim.retry()
    assert {s.key: s.status for s in sim.top()}["b"] in (StepStatus.READY, StepStatus.PENDING)
    _drive_to_the_end(sim)
    assert sim.run.status == RunStatus.SUCCEEDED


def test_a_result_for_an_attempt_that_is_not_running_is_fenced_off() -> None:
    sim = Simulation(DIAMOND)
    [a] = sim.claimable()
    sim.claim(a)
    wrong_owner = StepResult(a.id, a.attempt, StepStatus.SUCCEEDED, worker="w2")
    assert not sim._effects(lambda fx: apply_result(sim.graph, wrong_owner, sim.now, fx))
    old_attempt = StepResult(a.id, a.attempt - 1, StepStatus.SUCCEEDED, worker="w1")
    assert not sim._effects(lambda fx: apply_result(sim.graph, old_attempt, sim.now, fx))
    assert a.status == StepStatus.RUNNING
    assert sim.report(a, StepStatus.SUCCEEDED, outputs={})
    assert not sim.report(a, StepStatus.SUCCEEDED, outputs={})  # the same report again


def test_cancel_ends_waiting_steps_at_once_and_running_ones_when_they_stop() -> None:
    sim = Simulation(DIAMOND)
    [a] = sim.claimable()
    sim.claim(a)
    assert sim.cancel()
    assert sim.run.status == RunStatus.CANCELING
    assert a.cancel_requested
    assert all(s.status == StepStatus.CANCELED for s in sim.top() if s is not a)
    sim.report(a, StepStatus.CANCELED, error={"code": "canceled", "message": "canceled"})
    assert sim.run.status == RunStatus.CANCELED
    assert not sim.cancel()
    assert not sim.retry()
