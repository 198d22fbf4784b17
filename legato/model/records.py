"""In-memory records of a run and its steps, as the planner and the engine see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from legato.model.states import check_run_transition, check_step_transition

__all__ = [
    "RUN_SET_AT_START",
    "STEP_SET_AT_START",
    "ClaimedStep",
    "RunState",
    "StepResult",
    "StepState",
    "value_type",
]


def value_type(value: Any) -> str:
    """The type word a value carries everywhere (API, dialects, XML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


@dataclass(eq=False)
class StepState:
    run_id: int
    key: str
    name: str
    kind: str
    rank: int
    needs: list[str]
    status: str
    id: int = 0  # 0 until inserted
    parent_step_id: int | None = None
    type_label: str | None = None
    status_message: str = ""
    attempt: int = 0
    max_attempts: int = 1
    priority: int = 0
    not_before: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    args: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress: float | None = None
    child_run_id: int | None = None
    timeout_s: float | None = None
    item: Any = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    lease_losses: int = 0  # crash take-overs so far
    # Bookkeeping, not columns.
    dirty: bool = field(default=False, repr=False)
    parent: StepState | None = field(default=None, repr=False)

    def move(self, status: str, message: str | None = None) -> None:
        check_step_transition(self.status, status)
        moved = self.__dict__.get("_moved")  # the step's graph keeps counts of statuses
        if moved is not None:
            moved(self, self.status, status)
        self.status = status
        if message is not None:
            self.status_message = message
        self.dirty = True

    @property
    def is_new(self) -> bool:
        return self.id == 0


def _step_dirty(step: StepState) -> bool:
    return step.__dict__["_dirty"]  # type: ignore[no-any-return]


def _mark_step(step: StepState, value: bool) -> None:
    """A step marked dirty tells the journal of its graph (``RunGraph.changed``), so that
    writing a graph back looks at the steps that changed rather than at all of them."""
    step.__dict__["_dirty"] = value
    if value:
        journal = step.__dict__.get("_journal")
        if journal is not None:
            journal.append(step)


# ``dirty`` stays a constructor argument and a field; reading and setting it go through here
StepState.dirty = property(_step_dirty, _mark_step)  # type: ignore[assignment]


@dataclass(eq=False)
class RunState:
    id: int
    uuid: str
    namespace_id: int
    workflow_id: int
    workflow_name: str
    workflow_version: int
    status: str
    inputs: dict[str, Any]
    vars: dict[str, Any]
    labels: dict[str, str]
    priority: int
    operation_type: str
    created_at: float
    updated_at: float
    status_message: str = ""
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    requestor: str | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    notify_url: str | None = None
    parent_run_id: int | None = None
    parent_step_id: int | None = None
    total_steps: int = 0
    finished_steps: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    deadline_at: float | None = None
    change_seq: int = 0
    start_at: float | None = None  # a delayed start: the time asked for
    held_until: float | None = None  # set while a delayed run waits for its start time
    schedule_id: int | None = None  # the schedule that started it, and for which fire time
    fire_time: float | None = None
    dirty: bool = field(default=False, repr=False)

    def move(self, status: str, message: str | None = None) -> None:
        check_run_transition(self.status, status)
        self.status = status
        if message is not None:
            self.status_message = message
        self.dirty = True


@dataclass(frozen=True)
class StepResult:
    """What happened to one attempt of a step, as reported by a worker or the engine."""

    step_id: int
    attempt: int
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | CANCELED
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    worker: str | None = None  # the lease owner, for fencing; None for engine-made results
    retryable: bool = True
    #: set when the step's worker was lost (its lease lapsed): how many take-overs the step
    #: may have in all, beyond (and apart from) the attempts of its retry policy
    max_takeovers: int | None = None


@dataclass(frozen=True)
class ClaimedStep:
    """A step a worker has taken under a lease, with what it needs to run it."""

    id: int
    run_id: int
    key: str
    name: str
    kind: str
    attempt: int
    max_attempts: int
    args: dict[str, Any]
    timeout_s: float | None
    item: Any
    lease_expires_at: float
    namespace_id: int
    started_at: float = 0.0


#: What a run or step is given when it is created, and no transition changes afterwards.
RUN_SET_AT_START = (
    "id",
    "uuid",
    "namespace_id",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "inputs",
    "vars",  # carried values: step reports write them, in the store
    "labels",
    "priority",
    "operation_type",
    "requestor",
    "external_id",
    "idempotency_key",
    "notify_url",
    "parent_run_id",
    "parent_step_id",
    "created_at",
    "schedule_id",
    "fire_time",
)
STEP_SET_AT_START = (
    "id",
    "run_id",
    "key",
    "created_at",
    "parent_step_id",
    "name",
    "kind",
    "type_label",
    "rank",
    "needs",
    "max_attempts",
    "priority",
    "timeout_s",
    "item",
)
