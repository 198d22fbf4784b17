"""Why a step that is not running waits, machine-readable, with what it waits on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from legato.model.states import STEP_TERMINAL, StepStatus
from legato.model.times import iso_time

__all__ = ["scheduled_reason", "waiting_reason"]


def waiting_reason(
    step: Any,
    by_key: Mapping[str, Any],
    *,
    now: float,
    workers_alive: bool,
    run_queued_by_limit: bool = False,
    held_until: float | None = None,
) -> dict[str, Any] | None:
    """None for a step that runs or has ended; else ``{"reason": …, …}``.

    Reasons: ``upstream`` (``on``: the unfinished needs), ``backoff_until`` and
    ``sleep_until`` (``until``), ``no_worker`` (no live worker), ``concurrency_limit``
    (every worker slot, or the namespace's concurrent-run limit, is taken), ``approval``,
    ``child_run`` (``run_id``), ``scheduled`` (``until``: a delayed run's start time).
    """
    status = step.status
    if status in STEP_TERMINAL:
        return None
    if held_until is not None and status in (StepStatus.PENDING, StepStatus.READY):
        return {"reason": "scheduled", "until": iso_time(held_until)}
    if status == StepStatus.PENDING:
        if step.parent_step_id is not None and not step.needs:  # a foreach item, held back
            return {"reason": "concurrency_limit", "on": "max_parallel"}
        waiting_on = [
            n for n in (step.needs or []) if n in by_key and by_key[n].status not in STEP_TERMINAL
        ]
        return {"reason": "upstream", "on": waiting_on}
    if status == StepStatus.READY:
        if step.not_before and step.not_before > now:
            reason = "sleep_until" if step.kind == "sleep" else "backoff_until"
            return {"reason": reason, "until": iso_time(step.not_before)}
        if run_queued_by_limit:
            return {"reason": "concurrency_limit", "on": "namespace"}
        if not workers_alive:
            return {"reason": "no_worker"}
        return {"reason": "concurrency_limit", "on": "workers"}
    if status == StepStatus.RUNNING and step.lease_owner is None:
        if step.child_run_id is not None:
            return {"reason": "child_run", "run_id": step.child_run_id}
        if step.kind == "approval":
            return {"reason": "approval"}
    return None


def scheduled_reason(run: Any) -> dict[str, Any] | None:
    """Why a run waits as a whole: ``scheduled`` until its delayed start, else None."""
    held = getattr(run, "held_until", None)
    if held is None or run.status != "QUEUED":
        return None
    return {"reason": "scheduled", "until": iso_time(held)}
