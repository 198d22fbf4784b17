"""Run and step state machines, as transition tables checked in one place."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "RUN_TERMINAL",
    "STEP_TERMINAL",
    "IllegalTransition",
    "RunStatus",
    "StepStatus",
    "check_run_transition",
    "check_step_transition",
]


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TIMED_OUT = "TIMED_OUT"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"


RUN_TERMINAL = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.TIMED_OUT}
)
STEP_TERMINAL = frozenset(
    {
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.CANCELED,
        StepStatus.TIMED_OUT,
        StepStatus.SKIPPED,
    }
)

_R = RunStatus
_RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _R.QUEUED: frozenset(
        {_R.RUNNING, _R.CANCELING, _R.CANCELED, _R.FAILED, _R.TIMED_OUT, _R.SUCCEEDED}
    ),
    # QUEUED: a claim started it beyond its namespace's concurrency limit (engine/limits.py)
    _R.RUNNING: frozenset(
        {_R.QUEUED, _R.SUCCEEDED, _R.FAILED, _R.CANCELING, _R.CANCELED, _R.TIMED_OUT}
    ),
    # TIMED_OUT: a run past its deadline is canceled, and ends timed out once its steps stop
    _R.CANCELING: frozenset({_R.CANCELED, _R.TIMED_OUT}),
    # A failed or timed-out run may be retried from its failed steps.
    _R.FAILED: frozenset({_R.RUNNING}),
    _R.TIMED_OUT: frozenset({_R.RUNNING}),
    _R.SUCCEEDED: frozenset(),
    _R.CANCELED: frozenset(),
}

_S = StepStatus
_STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    # FAILED: its inputs cannot be resolved (a bad expression), so it never runs.
    _S.PENDING: frozenset({_S.READY, _S.RUNNING, _S.SKIPPED, _S.CANCELED, _S.FAILED}),
    _S.READY: frozenset({_S.RUNNING, _S.CANCELED, _S.SKIPPED, _S.SUCCEEDED, _S.TIMED_OUT}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.READY, _S.CANCELED, _S.TIMED_OUT}),
    # Retry of a failed run puts its failed, canceled and skipped steps back.
    _S.FAILED: frozenset({_S.PENDING, _S.READY}),
    _S.TIMED_OUT: frozenset({_S.PENDING, _S.READY}),
    _S.CANCELED: frozenset({_S.PENDING, _S.READY}),
    _S.SKIPPED: frozenset({_S.PENDING, _S.READY}),
    _S.SUCCEEDED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the machine does not allow: always a bug in the caller."""


def check_run_transition(old: str, new: str) -> None:
    if old == new:
        return
    if RunStatus(new) not in _RUN_TRANSITIONS[RunStatus(old)]:
        raise IllegalTransition(f"run cannot go from {old} to {new}")


def check_step_transition(old: str, new: str) -> None:
    if old == new:
        return
    if StepStatus(new) not in _STEP_TRANSITIONS[StepStatus(old)]:
        raise IllegalTransition(f"step cannot go from {old} to {new}")
