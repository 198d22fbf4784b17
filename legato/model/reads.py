"""The read model: what a status read of a run shows, as typed records.

One reader (``store/reads.py``) builds these from the database in one read transaction;
every face renders from them (the native API's JSON, XML and text, the CLI through the API,
the dialects). A :class:`RunRead` is keyed by the run's :attr:`RunHead.version`, which rises
on every committed change of the run or of one of its sub-workflow runs, so a reader may keep
it until the version moves. What depends on the clock (time left, elapsed, waiting until…) is
not in it: :class:`ReadFacts` brings the clock and the live facts at read time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from legato.model.estimates import StepHistory
from legato.model.states import RUN_TERMINAL

__all__ = [
    "ErrorRecord",
    "EventRecord",
    "LogRecord",
    "ReadFacts",
    "ResourceRecord",
    "RunHead",
    "RunOrigin",
    "RunRead",
    "RunRecord",
    "RunSummary",
    "StepRecord",
    "ValueRecord",
]


@dataclass(frozen=True, slots=True)
class RunHead:
    """What names a run and says whether it changed: one indexed row, read on every request."""

    id: int
    namespace_id: int
    status: str
    #: the run's change counter plus its sub-workflow runs' (their steps show in its counts)
    version: int
    #: which run the id names: SQLite gives a deleted newest run's id to the next one, so
    #: what is kept by id and version is kept for this run only
    uuid: str = ""

    @property
    def finished(self) -> bool:
        return self.status in RUN_TERMINAL


@dataclass(frozen=True, slots=True)
class RunOrigin:
    """A run's status with what it was started for and by whom: one indexed row."""

    id: int
    status: str
    held_until: float | None
    requestor: str | None
    external_id: str | None
    parent_run_id: int | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as lists show it: no inputs, outputs or carried values, no steps."""

    id: int
    uuid: str
    namespace_id: int
    workflow_name: str
    workflow_version: int
    status: str
    status_message: str
    labels: dict[str, str]
    priority: int
    operation_type: str
    requestor: str | None
    external_id: str | None
    parent_run_id: int | None
    parent_step_id: int | None
    total_steps: int
    finished_steps: int
    error: dict[str, Any] | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    change_seq: int
    start_at: float | None
    held_until: float | None
    schedule_id: int | None
    fire_time: float | None


@dataclass(frozen=True, slots=True)
class RunRecord(RunSummary):
    """A run whole: as lists show it, with its inputs, outputs and carried values."""

    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    vars: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StepRecord:
    id: int
    run_id: int
    key: str
    name: str
    kind: str
    type_label: str | None
    rank: int
    parent_step_id: int | None
    needs: tuple[str, ...]
    status: str
    status_message: str
    attempt: int
    max_attempts: int
    not_before: float
    lease_owner: str | None
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    progress: float | None
    child_run_id: int | None
    item: Any
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class ValueRecord:
    id: int
    run_id: int
    scope: str  # input | var | output | run_output
    name: str
    type: str
    value: Any
    step_id: int | None
    created_at: float
    step_key: str | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    run_id: int
    time: float
    type: str
    step_id: int | None
    step_key: str | None
    status: str | None
    message: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    id: int
    run_id: int
    code: str
    message: str
    time: float
    step_id: int | None
    step_key: str | None


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    id: int
    run_id: int
    type: str
    resource_id: str
    action_result: str | None
    metadata: dict[str, Any]
    time: float
    step_key: str | None


@dataclass(frozen=True, slots=True)
class LogRecord:
    id: int
    time: float
    level: str
    step_key: str | None
    attempt: int | None
    message: str


@dataclass(frozen=True, slots=True)
class RunRead:
    """A run as of :attr:`version`: its row, its top-level steps, the counts under every step
    that has children (foreach items, group members, a sub-workflow's steps), and the duration
    history of its workflow's steps."""

    version: int
    run: RunRecord
    steps: tuple[StepRecord, ...]
    subtree_counts: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    histories: Mapping[str, StepHistory] = field(default_factory=dict)  # by step key

    @property
    def finished(self) -> bool:
        return self.run.status in RUN_TERMINAL


@dataclass(frozen=True, slots=True)
class ReadFacts:
    """What a read adds at the moment it answers: the clock, whether any worker is alive,
    whether the run's namespace is at its concurrent-run limit."""

    now: float
    workers_alive: bool = True
    namespace_full: bool = False
