"""The state tables, estimates (progress, time left, baselines) and waiting reasons, with no
database: the pure parts a run's status is built from."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from legato.model.estimates import StepHistory, baseline, estimate, slower_than_usual
from legato.model.states import (
    RUN_TERMINAL,
    STEP_TERMINAL,
    IllegalTransition,
    RunStatus,
    StepStatus,
    check_run_transition,
    check_step_transition,
)
from legato.model.waiting import waiting_reason

R, S = RunStatus, StepStatus

# -- the state tables ------------------------------------------------------------------------

RUN_MOVES = {
    R.QUEUED: {R.RUNNING, R.CANCELING, R.CANCELED, R.FAILED, R.TIMED_OUT, R.SUCCEEDED},
    R.RUNNING: {R.QUEUED, R.SUCCEEDED, R.FAILED, R.CANCELING, R.CANCELED, R.TIMED_OUT},
    R.CANCELING: {R.CANCELED, R.TIMED_OUT},
    R.FAILED: {R.RUNNING},
    R.TIMED_OUT: {R.RUNNING},
    R.SUCCEEDED: set(),
    R.CANCELED: set(),
}
STEP_MOVES = {
    S.PENDING: {S.READY, S.RUNNING, S.SKIPPED, S.CANCELED, S.FAILED},
    S.READY: {S.RUNNING, S.CANCELED, S.SKIPPED, S.SUCCEEDED, S.TIMED_OUT},
    S.RUNNING: {S.SUCCEEDED, S.FAILED, S.READY, S.CANCELED, S.TIMED_OUT},
    S.FAILED: {S.PENDING, S.READY},
    S.TIMED_OUT: {S.PENDING, S.READY},
    S.CANCELED: {S.PENDING, S.READY},
    S.SKIPPED: {S.PENDING, S.READY},
    S.SUCCEEDED: set(),
}


def _allowed(check: Any, old: str, new: str) -> bool:
    try:
        check(old, new)
    except IllegalTransition:
        return False
    return True


@pytest.mark.parametrize("old,new", list(itertools.product(RunStatus, RunStatus)))
def test_run_table(old: RunStatus, new: RunStatus) -> None:
    assert _allowed(check_run_transition, old, new) == (old == new or new in RUN_MOVES[old])


@pytest.mark.parametrize("old,new", list(itertools.product(StepStatus, StepStatus)))
def test_step_table(old: StepStatus, new: StepStatus) -> None:
    assert _allowed(check_step_transition, old, new) == (old == new or new in STEP_MOVES[old])


def test_terminal_sets() -> None:
    assert {R.SUCCEEDED, R.FAILED, R.CANCELED, R.TIMED_OUT} == RUN_TERMINAL
    assert {S.SUCCEEDED, S.FAILED, S.CANCELED, S.TIMED_OUT, S.SKIPPED} == STEP_TERMINAL
    # only the retry of a failed run leaves an ended state, and never a success
    assert all(not RUN_MOVES[s] - {R.RUNNING} for s in RUN_TERMINAL)
    assert not RUN_MOVES[R.SUCCEEDED] and not STEP_MOVES[S.SUCCEEDED]


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        check_step_transition("PENDING", "DONE")


# -- estimates ---------------------------------------------------------------------------------


@dataclass
class Step:
    key: str
    status: str
    needs: list[str] = field(default_factory=list)
    kind: str = "python"
    progress: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    not_before: float = 0.0
    parent_step_id: int | None = None
    lease_owner: str | None = None
    child_run_id: int | None = None


def history(*samples: float) -> StepHistory:
    return StepHistory(len(samples), sum(samples) / len(samples), list(samples))


def test_baseline_is_p50_and_p95_in_milliseconds() -> None:
    assert baseline(None) is None
    assert baseline(StepHistory(0, 0.0)) is None
    assert baseline(history(*[float(n) for n in range(1, 21)])) == {
        "p50_ms": 10500,
        "p95_ms": 19000,
        "samples": 20,
    }


def test_slower_than_usual_needs_enough_samples_and_a_long_run() -> None:
    usual = history(1.0, 1.0, 1.0, 1.0, 2.0)  # p95 2s
    running = Step("a", S.RUNNING, started_at=100.0)
    assert not slower_than_usual(running, usual, now=101.5)
    assert slower_than_usual(running, usual, now=102.5)
    assert not slower_than_usual(running, history(1.0, 1.0, 1.0, 2.0), now=150.0)  # 4 samples
    done = Step("a", S.SUCCEEDED, started_at=100.0, finished_at=103.0)
    assert slower_than_usual(done, usual, now=500.0)
    assert not slower_than_usual(Step("a", S.FAILED, started_at=100.0), usual, now=500.0)


def test_estimate_weights_steps_by_history_and_follows_the_longest_path() -> None:
    steps = [
        Step("a", S.SUCCEEDED),
        Step("b", S.PENDING, needs=["a"]),
        Step("c", S.PENDING, needs=["a"]),
        Step("d", S.PENDING, needs=["b", "c"]),
    ]
    histories = {
        "a": StepHistory(6, 10.0, [10.0] * 6),
        "b": StepHistory(6, 30.0, [30.0] * 6),
        "c": StepHistory(6, 20.0, [20.0] * 6),
        "d": StepHistory(6, 40.0, [40.0] * 6),
    }
    guess = estimate(R.RUNNING, steps, histories, now=0.0)
    assert guess.percent == 10.0  # 10 of 100 expected seconds done
    assert guess.time_left_s == 70.0  # b (30) then d (40); c runs beside b
    assert (guess.low_s, guess.high_s) == (56.0, 87.5)
    assert guess.confidence == "high"  # 6 samples of every step


def test_estimate_of_a_running_step_uses_its_reported_rate() -> None:
    steps = [Step("a", S.RUNNING, progress=0.25, started_at=90.0)]
    guess = estimate(R.RUNNING, steps, {}, now=100.0)
    assert guess.percent == 25.0
    assert guess.time_left_s == 30.0  # 10s for a quarter: 30s for the rest
    assert guess.confidence == "low"


def test_estimate_of_an_ended_run_and_of_an_approval() -> None:
    steps = [Step("a", S.SUCCEEDED)]
    assert estimate(R.SUCCEEDED, steps, {}, now=0.0).percent == 100.0
    failed = estimate(R.FAILED, [Step("a", S.FAILED), Step("b", S.SKIPPED)], {}, now=0.0)
    assert (failed.percent, failed.time_left_s) == (100.0, 0.0)
    waiting = estimate(R.RUNNING, [Step("a", S.RUNNING, kind="approval")], {}, now=0.0)
    assert (waiting.time_left_s, waiting.confidence) == (None, "low")


# -- waiting reasons ---------------------------------------------------------------------------


def reason(step: Step, *others: Step, **how: Any) -> dict[str, Any] | None:
    by_key = {s.key: s for s in (step, *others)}
    how.setdefault("workers_alive", True)
    return waiting_reason(step, by_key, now=100.0, **how)


def test_waiting_reasons() -> None:
    a_running = Step("a", S.RUNNING, lease_owner="w1")
    assert reason(a_running) is None
    assert reason(Step("a", S.SUCCEEDED)) is None
    assert reason(Step("b", S.PENDING, needs=["a", "z"]), a_running, Step("z", S.SKIPPED)) == {
        "reason": "upstream",
        "on": ["a"],
    }
    assert reason(Step("b[3]", S.PENDING, parent_step_id=7)) == {
        "reason": "concurrency_limit",
        "on": "max_parallel",
    }
    assert reason(Step("a", S.READY, not_before=101.5)) == {
        "reason": "backoff_until",
        "until": "1970-01-01T00:01:41.500Z",
    }
    assert reason(Step("a", S.READY, kind="sleep", not_before=160.0)) == {
        "reason": "sleep_until",
        "until": "1970-01-01T00:02:40.000Z",
    }
    ready = Step("a", S.READY, not_before=50.0)
    assert reason(ready, run_queued_by_limit=True) == {
        "reason": "concurrency_limit",
        "on": "namespace",
    }
    assert reason(ready, workers_alive=False) == {"reason": "no_worker"}
    assert reason(ready) == {"reason": "concurrency_limit", "on": "workers"}
    assert reason(Step("a", S.RUNNING, kind="workflow", child_run_id=9)) == {
        "reason": "child_run",
        "run_id": 9,
    }
    assert reason(Step("a", S.RUNNING, kind="approval")) == {"reason": "approval"}
