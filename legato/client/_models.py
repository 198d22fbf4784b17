"""Typed results parsed from the API's JSON; every one keeps the full answer in ``raw``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "TERMINAL_STATUSES",
    "ApiKey",
    "Event",
    "LogLine",
    "Progress",
    "Run",
    "RunPage",
    "Step",
    "Workflow",
    "parse_datetime",
]

TERMINAL_STATUSES: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"})


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset) as an aware datetime; ``None`` if absent/invalid."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    return default if value is None else str(value)


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    try:
        return default if value is None else int(value)
    except (TypeError, ValueError):
        return default


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _dict(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _opt_dict(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return dict(value) if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class Workflow:
    name: str
    version: int
    uuid: str | None
    description: str | None
    operation_type: str | None
    created_at: datetime | None
    definition: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workflow:
        return cls(
            name=_str(data, "name"),
            version=_int(data, "version"),
            uuid=_opt_str(data, "uuid"),
            description=_opt_str(data, "description"),
            operation_type=_opt_str(data, "operation_type"),
            created_at=parse_datetime(data.get("created_at")),
            definition=_opt_dict(data, "definition"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Progress:
    percent: float
    finished_steps: int
    total_steps: int

    @classmethod
    def from_json(cls, data: Any) -> Progress:
        if not isinstance(data, Mapping):
            return cls(percent=0.0, finished_steps=0, total_steps=0)
        return cls(
            percent=_opt_float(data, "percent") or 0.0,
            finished_steps=_int(data, "finished_steps"),
            total_steps=_int(data, "total_steps"),
        )


@dataclass(frozen=True)
class Step:
    id: int
    key: str
    name: str | None
    kind: str | None
    type: str | None
    rank: int
    parent_step_id: int | None
    needs: list[str]
    status: str
    status_message: str | None
    attempt: int
    max_attempts: int
    not_before: datetime | None
    outputs: dict[str, Any]
    error: dict[str, Any] | None
    progress: float | None
    child_run_id: int | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES or self.status == "SKIPPED"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        needs = data.get("needs")
        return cls(
            id=_int(data, "id"),
            key=_str(data, "key"),
            name=_opt_str(data, "name"),
            kind=_opt_str(data, "kind"),
            type=_opt_str(data, "type"),
            rank=_int(data, "rank"),
            parent_step_id=_opt_int(data, "parent_step_id"),
            needs=[str(n) for n in needs] if isinstance(needs, list) else [],
            status=_str(data, "status"),
            status_message=_opt_str(data, "status_message"),
            attempt=_int(data, "attempt"),
            max_attempts=_int(data, "max_attempts", 1),
            not_before=parse_datetime(data.get("not_before")),
            outputs=_dict(data, "outputs"),
            error=_opt_dict(data, "error"),
            progress=_opt_float(data, "progress"),
            child_run_id=_opt_int(data, "child_run_id"),
            created_at=parse_datetime(data.get("created_at")),
            started_at=parse_datetime(data.get("started_at")),
            finished_at=parse_datetime(data.get("finished_at")),
            duration_ms=_opt_int(data, "duration_ms"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Run:
    id: int
    uuid: str | None
    namespace: str | None
    workflow: str
    workflow_version: int | None
    status: str
    status_message: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    labels: dict[str, Any]
    priority: int
    operation_type: str | None
    requestor: str | None
    external_id: str | None
    parent_run_id: int | None
    parent_step_id: int | None
    progress: Progress
    counts_by_status: dict[str, int]
    error: dict[str, Any] | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    duration_ms: int | None
    steps: list[Step] | None
    """Top-level steps; ``None`` when the answer left them out (run lists)."""
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        steps = data.get("steps")
        counts = _dict(data, "counts_by_status")
        return cls(
            id=_int(data, "id"),
            uuid=_opt_str(data, "uuid"),
            namespace=_opt_str(data, "namespace"),
            workflow=_str(data, "workflow"),
            workflow_version=_opt_int(data, "workflow_version"),
            status=_str(data, "status"),
            status_message=_opt_str(data, "status_message"),
            inputs=_dict(data, "inputs"),
            outputs=_dict(data, "outputs"),
            labels=_dict(data, "labels"),
            priority=_int(data, "priority"),
            operation_type=_opt_str(data, "operation_type"),
            requestor=_opt_str(data, "requestor"),
            external_id=_opt_str(data, "external_id"),
            parent_run_id=_opt_int(data, "parent_run_id"),
            parent_step_id=_opt_int(data, "parent_step_id"),
            progress=Progress.from_json(data.get("progress")),
            counts_by_status={str(k): _int(counts, k) for k in counts},
            error=_opt_dict(data, "error"),
            created_at=parse_datetime(data.get("created_at")),
            started_at=parse_datetime(data.get("started_at")),
            finished_at=parse_datetime(data.get("finished_at")),
            updated_at=parse_datetime(data.get("updated_at")),
            duration_ms=_opt_int(data, "duration_ms"),
            steps=(
                [Step.from_json(s) for s in steps if isinstance(s, Mapping)]
                if isinstance(steps, list)
                else None
            ),
            raw=dict(data),
        )


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_page_token: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunPage:
        runs = data.get("runs")
        token = data.get("next_page_token")
        return cls(
            runs=[Run.from_json(r) for r in runs if isinstance(r, Mapping)]
            if isinstance(runs, list)
            else [],
            next_page_token=str(token) if token else None,
            raw=dict(data),
        )


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: datetime | None
    level: str
    step: str | None
    attempt: int | None
    message: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogLine:
        return cls(
            seq=_int(data, "seq"),
            time=parse_datetime(data.get("time")),
            level=_str(data, "level", "INFO"),
            step=_opt_str(data, "step"),
            attempt=_opt_int(data, "attempt"),
            message=_str(data, "message"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Event:
    seq: int
    time: datetime | None
    type: str
    step: str | None
    status: str | None
    message: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            seq=_int(data, "seq"),
            time=parse_datetime(data.get("time")),
            type=_str(data, "type"),
            step=_opt_str(data, "step"),
            status=_opt_str(data, "status"),
            message=_opt_str(data, "message"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class ApiKey:
    id: int | str | None
    name: str
    role: str
    namespace: str | None
    key: str | None
    """The secret; only present in the answer that created the key."""
    created_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    prefix: str | None = None
    """The secret's first characters, to recognise the key by (never enough to use it)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApiKey:
        return cls(
            id=_opt_int(data, "id") if isinstance(data.get("id"), int) else _opt_str(data, "id"),
            name=_str(data, "name"),
            role=_str(data, "role"),
            namespace=_opt_str(data, "namespace"),
            key=_opt_str(data, "key"),
            created_at=parse_datetime(data.get("created_at")),
            raw=dict(data),
            prefix=_opt_str(data, "prefix"),
        )
