"""The native representation of runs, steps, workflows and their parts (plain dicts), built
from the typed read model (``model/reads.py``) or the engine's in-memory records alike (both
expose the same attribute names). JSON, XML and text are rendered from these by the faces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from legato.model.estimates import StepHistory, baseline, estimate, slower_than_usual
from legato.model.reads import (
    ErrorRecord,
    EventRecord,
    LogRecord,
    ReadFacts,
    ResourceRecord,
    RunRead,
    StepRecord,
    ValueRecord,
)
from legato.model.states import STEP_TERMINAL, StepStatus
from legato.model.times import iso
from legato.model.waiting import scheduled_reason, waiting_reason

__all__ = [
    "Detail",
    "error_view",
    "event_view",
    "level_view",
    "log_view",
    "progress",
    "resource_view",
    "run_detail_view",
    "run_view",
    "step_view",
    "value_view",
    "workflow_view",
]


def _duration_ms(start: float | None, end: float | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000)


@dataclass(frozen=True)
class Detail:
    """What a detail view adds to the stored state: estimates from history, why steps wait,
    and the counts of each subtree."""

    now: float
    histories: Mapping[str, StepHistory] = field(default_factory=dict)  # by step key
    subtree_counts: Mapping[int, Mapping[str, int]] = field(default_factory=dict)  # by step id
    workers_alive: bool = True
    namespace_full: bool = False  # a queued run waits for a run slot of its namespace
    held_until: float | None = None  # a delayed run waits for its start time

    @classmethod
    def of(cls, read: RunRead, facts: ReadFacts) -> Detail:
        return cls(
            now=facts.now,
            histories=read.histories,
            subtree_counts=read.subtree_counts,
            workers_alive=facts.workers_alive,
            namespace_full=facts.namespace_full,
            held_until=read.run.held_until,
        )


def step_view(
    s: Any, detail: Detail | None = None, siblings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    view = _step_fields(s)
    if detail is not None:
        history = detail.histories.get(s.key) if s.parent_step_id is None else None
        view["waiting_reason"] = waiting_reason(
            s,
            siblings or {},
            now=detail.now,
            workers_alive=detail.workers_alive,
            run_queued_by_limit=detail.namespace_full,
            held_until=detail.held_until,
        )
        view["counts_by_status"] = detail.subtree_counts.get(s.id)
        view["baseline"] = baseline(history)
        view["slower_than_usual"] = slower_than_usual(s, history, detail.now)
    return view


def _step_fields(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "key": s.key,
        "name": s.name,
        "kind": s.kind,
        "type": s.type_label,
        "rank": s.rank,
        "parent_step_id": s.parent_step_id,
        "needs": list(s.needs or []),
        "status": s.status,
        "status_message": s.status_message,
        "attempt": s.attempt,
        "max_attempts": s.max_attempts,
        "not_before": iso(s.not_before) if s.status == StepStatus.READY and s.not_before else None,
        "outputs": s.outputs if s.outputs is not None else {},
        "error": s.error,
        "progress": s.progress,
        "child_run_id": s.child_run_id,
        "created_at": iso(s.created_at),
        "started_at": iso(s.started_at),
        "finished_at": iso(s.finished_at),
        "duration_ms": _duration_ms(s.started_at, s.finished_at),
    }


def progress(run: Any, steps: list[Any] | None) -> dict[str, Any]:
    """Percent complete from the top-level steps: finished ones count whole, running ones by
    what they reported."""
    total = run.total_steps or 0
    finished = run.finished_steps or 0
    if steps is not None:
        top = [s for s in steps if s.parent_step_id is None]
        total = len(top)
        done = sum(1.0 for s in top if s.status in STEP_TERMINAL)
        finished = int(done)
        partial = sum(
            s.progress or 0.0 for s in top if s.status == StepStatus.RUNNING and s.progress
        )
        percent = 100.0 * (done + partial) / total if total else 100.0
    else:
        percent = 100.0 * finished / total if total else 100.0
    if run.status == "SUCCEEDED":
        percent = 100.0
    return {"percent": round(percent, 1), "finished_steps": finished, "total_steps": total}


def run_view(
    run: Any,
    namespace: str,
    steps: list[Any] | None = None,
    counts: dict[str, int] | None = None,
    detail: Detail | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": run.id,
        "uuid": run.uuid,
        "namespace": namespace,
        "workflow": run.workflow_name,
        "workflow_version": run.workflow_version,
        "status": run.status,
        "status_message": run.status_message,
    }
    if hasattr(run, "inputs"):
        view["inputs"] = run.inputs
        view["outputs"] = run.outputs if run.outputs is not None else {}
        view["vars"] = run.vars
    view.update(
        {
            "labels": run.labels,
            "priority": run.priority,
            "operation_type": run.operation_type,
            "requestor": run.requestor,
            "external_id": run.external_id,
            "parent_run_id": run.parent_run_id,
            "parent_step_id": run.parent_step_id,
            "start_at": iso(run.start_at),
            "waiting_reason": scheduled_reason(run),
            "schedule_id": run.schedule_id,
            "fire_time": iso(run.fire_time),
            "progress": progress(run, steps),
        }
    )
    top = [st for st in steps or [] if st.parent_step_id is None]
    if detail is not None:
        guess = estimate(run.status, top, detail.histories, detail.now)
        view["progress"]["percent"] = guess.percent
        view["time_left"] = {
            "seconds": guess.time_left_s,
            "low_seconds": guess.low_s,
            "high_seconds": guess.high_s,
            "confidence": guess.confidence,
        }
        if run.finished_at is not None:
            view["estimated_completion_time"] = iso(run.finished_at)
            view["estimated_completion_range"] = None
        elif guess.time_left_s is None:  # e.g. waiting for a person's approval
            view["estimated_completion_time"] = None
            view["estimated_completion_range"] = None
        else:
            view["estimated_completion_time"] = iso(detail.now + guess.time_left_s)
            view["estimated_completion_range"] = [
                iso(detail.now + (guess.low_s or 0.0)),
                iso(detail.now + (guess.high_s or 0.0)),
            ]
    if steps is not None:
        counts = {}
        for s in steps:
            if s.parent_step_id is None:
                counts[str(s.status)] = counts.get(str(s.status), 0) + 1
    if counts is not None:
        view["counts_by_status"] = counts
    view.update(
        {
            "error": run.error,
            "created_at": iso(run.created_at),
            "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at),
            "updated_at": iso(run.updated_at),
            "duration_ms": _duration_ms(run.started_at, run.finished_at),
        }
    )
    if steps is not None:
        by_key = {st.key: st for st in top}
        view["steps"] = [step_view(st, detail, by_key) for st in top]
    return view


def workflow_view(row: Any, namespace: str, *, definition: bool = True) -> dict[str, Any]:
    view = {
        "name": row.name,
        "version": row.version,
        "uuid": row.uuid,
        "namespace": namespace,
        "description": row.description,
        "operation_type": row.operation_type,
        "created_at": iso(row.created_at),
    }
    if definition:
        view["definition"] = row.definition
    return view


def run_detail_view(read: RunRead, namespace: str, facts: ReadFacts) -> dict[str, Any]:
    """``GET /runs/{id}``: the run with its top-level steps, estimates and waiting reasons."""
    return run_view(read.run, namespace, list(read.steps), detail=Detail.of(read, facts))


def level_view(
    read: RunRead, level: tuple[StepRecord, ...], facts: ReadFacts
) -> list[dict[str, Any]]:
    """One level of the step tree, each step in detail (its siblings explain its waits)."""
    detail = Detail.of(read, facts)
    by_key = {s.key: s for s in level}
    return [step_view(s, detail, by_key) for s in level]


def value_view(v: ValueRecord) -> dict[str, Any]:
    return {
        "id": v.id,
        "scope": v.scope,
        "name": v.name,
        "type": v.type,
        "value": v.value,
        "step": v.step_key,
        "step_id": v.step_id,
        "created_at": iso(v.created_at),
    }


def event_view(e: EventRecord) -> dict[str, Any]:
    return {
        "seq": e.id,
        "time": iso(e.time),
        "type": e.type,
        "step": e.step_key,
        "step_id": e.step_id,
        "status": e.status,
        "message": e.message,
        "data": e.data,
    }


def error_view(e: ErrorRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "code": e.code,
        "message": e.message,
        "time": iso(e.time),
        "step": e.step_key,
    }


def resource_view(r: ResourceRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "type": r.type,
        "resource_id": r.resource_id,
        "action_result": r.action_result,
        "metadata": r.metadata,
        "step": r.step_key,
        "time": iso(r.time),
    }


def log_view(r: LogRecord) -> dict[str, Any]:
    return {
        "seq": r.id,
        "time": iso(r.time),
        "level": r.level,
        "step": r.step_key,
        "attempt": r.attempt,
        "message": r.message,
    }
