"""The planner driven through random interleavings of claims, successes, failures, timeouts,
lost leases, stale reports, cancels, approvals and retries, with no database; after every
change the rules every face relies on are checked."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legato.model.records import RUN_SET_AT_START, STEP_SET_AT_START, RunState, StepState
from legato.model.states import (
    RUN_TERMINAL,
    STEP_TERMINAL,
    RunStatus,
    StepStatus,
    check_run_transition,
    check_step_transition,
)
from legato.service.views import progress
from tests.unit.run_simulation import Simulation

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

#: groups, conditions, sleep and approval
NESTED = """
name: nested
timeout: 1h
steps:
  - id: nap
    uses: sleep
    with: {duration: 2s}
  - id: prepare
    uses: group
    steps:
      - id: fetch
        uses: python
        with: {function: "demo_steps:noop"}
        retry: {attempts: 3, backoff: exponential, initial: 1s}
      - id: check
        needs: [fetch]
        foreach: [x, y]
        uses: python
        with: {function: "demo_steps:noop", v: "${{ item }}"}
  - id: never
    if: false
    uses: python
    with: {function: "demo_steps:noop"}
  - id: approve
    needs: [nap, prepare, never]
    uses: approval
    with: {message: "go?"}
  - id: last
    needs: [approve]
    uses: python
    with: {function: "demo_steps:noop"}
"""

MOVES = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "claim",
                "succeed",
                "fail",
                "fail_for_good",
                "time_out",
                "lose_lease",
                "stale_report",
                "wait",
                "approve",
                "cancel",
                "retry",
            ]
        ),
        st.integers(min_value=0, max_value=7),
    ),
    max_size=80,
)


def _apply(sim: Simulation, move: str, pick: int) -> bool:
    """Make ``move`` on the ``pick``-th candidate; True when the run was retried."""
    running = sim.running()
    if move == "claim" and sim.claimable():
        sim.claim(sim.claimable()[pick % len(sim.claimable())], worker=f"w{pick % 3}")
    elif move in ("succeed", "fail", "fail_for_good", "time_out", "lose_lease") and running:
        step = running[pick % len(running)]
        attempt = step.attempt
        if move == "succeed":
            assert sim.succeed(step, {"n": pick})
            assert step.status == StepStatus.SUCCEEDED
        elif move == "fail":
            assert sim.fail(step)
        elif move == "fail_for_good":
            assert sim.fail(step, retryable=False)
            assert step.status == StepStatus.FAILED
        elif move == "time_out":
            assert sim.time_out(step)
        else:  # its worker died: the reaper records the lost lease
            assert sim.lose_lease(step, max_takeovers=2)
        assert step.lease_owner is None
        if step.status == StepStatus.READY:  # retried: it may run again, once claimed
            assert step.attempt == attempt
        else:
            assert step.status in STEP_TERMINAL
    elif move == "stale_report":
        # a report for an attempt that is not running (delivered twice, or from a worker
        # whose lease was taken over) changes nothing
        steps = [s for s in sim.graph.steps if s.attempt > 0]
        if steps:
            step = steps[pick % len(steps)]
            before = (step.status, step.attempt, step.lease_owner, sim.run.status)
            attempt = (
                step.attempt - (pick % 2) if step.status == StepStatus.RUNNING else step.attempt
            )
            if step.status != StepStatus.RUNNING or attempt != step.attempt or step.lease_owner:
                # w9 never holds a lease: even the running attempt is not its to report
                assert not sim.report(step, StepStatus.SUCCEEDED, worker="w9", attempt=attempt)
                assert (step.status, step.attempt, step.lease_owner, sim.run.status) == before
    elif move == "wait":
        sim.now += 1.5
    elif move == "approve":
        waiting = [s for s in sim.graph.steps if s.kind == "approval"]
        for step in waiting:
            expected = step.status == StepStatus.RUNNING and step.lease_owner is None
            assert sim.resume(step, {"ok": True}) == expected
    elif move == "cancel":
        was = sim.run.status
        assert sim.cancel() == (was not in RUN_TERMINAL and was != RunStatus.CANCELING)
        assert sim.run.status in (RunStatus.CANCELING, *RUN_TERMINAL)
    elif move == "retry":
        was = sim.run.status
        again = sim.retry()
        assert again == (was in (RunStatus.FAILED, RunStatus.TIMED_OUT))
        return again
    return False


class Rules:
    """What must hold after every change, and across changes."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.seen_moves = 0
        self.succeeded: Counter[int] = Counter()
        self.status: dict[int, str] = {}  # by id(step or run): the status last seen
        self.finished_steps = 0
        self.percent = 0.0
        self.created: dict[int, tuple[Any, ...]] = {}  # by id(step or run): what it was given

    def check(self, retried: bool) -> None:
        sim = self.sim
        self._every_change_is_in_the_table()
        self._what_is_set_at_start_stays()
        top = sim.top()
        # a run has ended exactly when every one of its steps has
        top_ended = all(s.status in STEP_TERMINAL for s in top)
        assert (sim.run.status in RUN_TERMINAL) == top_ended, (sim.run.status, sim.statuses())
        if sim.run.status in RUN_TERMINAL:
            assert all(s.status in STEP_TERMINAL for s in sim.graph.steps), sim.statuses()
            assert sim.run.finished_at is not None
        # a cancel ends every waiting step at once; an ended run leaves none waiting
        if sim.run.status in (RunStatus.CANCELING, *RUN_TERMINAL):
            waiting = [
                s.key for s in sim.graph.steps if s.status in (StepStatus.PENDING, StepStatus.READY)
            ]
            assert not waiting, (sim.run.status, waiting)
        # a step completes once
        assert all(n == 1 for n in self.succeeded.values()), self.succeeded
        # counts by status add up, at the top and under every parent
        counts = Counter(s.status for s in top)
        assert sum(counts.values()) == sim.run.total_steps == len(top)
        assert sim.run.finished_steps == sum(n for s, n in counts.items() if s in STEP_TERMINAL)
        # the graph's kept count of ended top-level steps is a count of them
        assert sim.graph.ended_top_steps() == sim.run.finished_steps
        for parent in sim.graph.steps:
            kids = sim.graph.children(parent)
            if kids:
                by_status = Counter(k.status for k in kids)
                assert sum(by_status.values()) == len(kids)
                # the graph's kept counts of the items are counts of them
                assert sim.graph.kid_phases(parent) == (
                    sum(by_status[s] for s in STEP_TERMINAL),
                    by_status[StepStatus.READY] + by_status[StepStatus.RUNNING],
                    by_status[StepStatus.PENDING],
                ), (parent.key, by_status)
                if parent.status == StepStatus.SUCCEEDED:
                    assert by_status[StepStatus.SUCCEEDED] + by_status[StepStatus.SKIPPED] == len(
                        kids
                    )
        # nothing waits on a lease it does not have, nor holds one it should not
        for s in sim.graph.steps:
            if s.status != StepStatus.RUNNING:
                assert s.lease_owner is None, (s.key, s.status)
        # progress never goes back (but a retried run starts over from what it kept)
        percent = float(progress(sim.run, list(sim.graph.steps))["percent"])
        if not retried:
            assert sim.run.finished_steps >= self.finished_steps
            assert percent >= self.percent, (self.percent, percent)
        self.finished_steps, self.percent = sim.run.finished_steps, percent

    def _what_is_set_at_start_stays(self) -> None:
        """Updates leave these columns alone (the store writes only the others), so no
        transition may change them once the run or step exists."""
        sim = self.sim
        things: list[tuple[StepState | RunState, tuple[str, ...]]] = [
            (sim.run, RUN_SET_AT_START),
            *((s, STEP_SET_AT_START) for s in sim.graph.steps),
        ]
        for thing, names in things:
            given = tuple(copy.deepcopy(getattr(thing, n)) for n in names)
            first = self.created.setdefault(id(thing), given)
            assert given == first, (getattr(thing, "key", "run"), names, first, given)

    def _every_change_is_in_the_table(self) -> None:
        """Each recorded move is allowed by the state table, starts where the last one of the
        same step or run left off, and the records end where the objects are: no status
        changes outside the table."""
        sim = self.sim
        for thing, old, new in sim.moves[self.seen_moves :]:
            if isinstance(thing, RunState):
                check_run_transition(old, new)
            else:
                check_step_transition(old, new)
                if new == StepStatus.SUCCEEDED:
                    self.succeeded[thing.id] += 1
            known = self.status.get(id(thing))
            assert known is None or known == old, (getattr(thing, "key", "run"), known, old)
            self.status[id(thing)] = new
        self.seen_moves = len(sim.moves)
        things: list[StepState | RunState] = [sim.run, *sim.graph.steps]
        for thing in things:
            first = StepStatus.PENDING if isinstance(thing, StepState) else RunStatus.QUEUED
            # a foreach item starts READY when a slot is free
            starts = {first, StepStatus.READY} if isinstance(thing, StepState) else {first}
            known = self.status.get(id(thing))
            if known is None:
                assert thing.status in starts, (getattr(thing, "key", "run"), thing.status)
                self.status[id(thing)] = thing.status
            else:
                assert thing.status == known, (getattr(thing, "key", "run"), known, thing.status)


@pytest.mark.parametrize("source", [DIAMOND, NESTED], ids=["diamond", "nested"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves=MOVES)
def test_random_interleavings_keep_the_rules(source: str, moves: list[tuple[str, int]]) -> None:
    sim = Simulation(source)
    rules = Rules(sim)
    rules.check(retried=False)
    for move, pick in moves:
        retried = _apply(sim, move, pick)
        rules.check(retried)


@pytest.mark.parametrize("source", [DIAMOND, NESTED], ids=["diamond", "nested"])
@settings(max_examples=100, deadline=None)
@given(moves=MOVES)
def test_every_run_can_still_be_brought_to_an_end(
    source: str, moves: list[tuple[str, int]]
) -> None:
    """Whatever happened before, claiming and finishing what is claimable (and approving
    what waits) ends the run, and an ended run stays ended."""
    sim = Simulation(source)
    rules = Rules(sim)
    for move, pick in moves:
        if move not in ("cancel", "retry"):
            rules.check(_apply(sim, move, pick))
    for _ in range(100):
        if sim.run.status in RUN_TERMINAL:
            break
        _apply(sim, "approve", 0)
        for step in sim.claimable():
            sim.claim(step)
        for step in sim.running():
            assert sim.succeed(step)
        sim.now += 10.0
        rules.check(retried=False)
    assert sim.run.status in RUN_TERMINAL, sim.statuses()
    ended = sim.run.status
    assert not sim.cancel()
    assert sim.run.status == ended
    rules.check(retried=False)


def test_a_run_whose_steps_all_succeed_succeeds() -> None:
    sim = Simulation(DIAMOND)
    sim.drive()
    assert sim.run.status == RunStatus.SUCCEEDED
    assert progress(sim.run, list(sim.graph.steps))["percent"] == 100.0
    assert set(sim.statuses().values()) == {StepStatus.SUCCEEDED}
    assert len(sim.graph.steps) == 8  # five steps and three items


def test_a_failure_past_its_retries_fails_the_run_and_skips_what_depends_on_it() -> None:
    sim = Simulation(DIAMOND)
    [a] = sim.claimable()
    sim.claim(a)
    assert sim.succeed(a)
    b = sim.step("b")
    for attempt in (1, 2):
        sim.now += 2.0
        assert b in sim.claimable()
        sim.claim(b)
        assert b.attempt == attempt
        assert sim.fail(b)
    assert b.status == StepStatus.FAILED
    sim.drive()
    top = {s.key: s.status for s in sim.top()}
    assert sim.run.status == RunStatus.FAILED
    assert top == {
        "a": "SUCCEEDED",
        "b": "FAILED",
        "c": "SUCCEEDED",
        "each": "SUCCEEDED",
        "d": "SKIPPED",
    }
    assert sim.retry()
    assert sim.step("b").status == StepStatus.READY
    assert sim.step("d").status == StepStatus.PENDING
    sim.drive()
    assert sim.run.status == RunStatus.SUCCEEDED
