"""Firing a schedule inside a transaction: its due fire times become runs (or records of why
not), with the overlap policy applied, all committed together.

A fire time is recorded first, on the unique key (schedule, fire time); a run starts only for
a row this transaction inserted. Two processes firing the same schedule at once therefore
start one run, and a process killed halfway has committed nothing: the next pass (of any
process) fires the same time again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from legato.model.errors import LegatoError
from legato.model.expressions import ExpressionError, render
from legato.model.schedules import (
    ScheduleSpec,
    fire_scope,
    jitter_of,
    next_fire,
    overlap_action,
    plan_pass,
)
from legato.store.database import Tx
from legato.store.schedules import (
    FireRow,
    insert_fires,
    open_runs,
    record_events,
    set_fire_runs,
    update_schedule,
)
from legato.store.transitions import NewRun, Transitions

__all__ = ["Fired", "fire_schedule", "record_paused", "timing"]

#: fire times passed while paused that a resume records one by one (the rest are counted)
MAX_PAUSED_RECORDED = 100


@dataclass(frozen=True)
class Fired:
    """What firing a schedule did: the fires recorded by this transaction."""

    fires: list[FireRow]

    @property
    def started(self) -> list[FireRow]:
        return [f for f in self.fires if f.outcome == "started"]


def timing(spec: ScheduleSpec, schedule_id: int, after: float) -> dict[str, float | None]:
    """``next_fire_at`` and ``due_at`` (with jitter) for the first fire time after ``after``."""
    t = next_fire(spec, after)
    return {
        "next_fire_at": t,
        "due_at": None if t is None else t + jitter_of(spec, schedule_id, t),
    }


async def fire_schedule(
    tx: Tx,
    transitions: Transitions,
    row: Any,
    now: float,
    *,
    namespace: str | None = None,
    manual_time: float | None = None,
    overlap: str | None = None,
    buffered_start: bool = False,
    cache: dict[Any, Any] | None = None,
) -> Fired:
    """Fire ``row``'s due times (a scheduler pass), one manual fire time (trigger now), or
    its buffered fire (``buffered_start``: the previous run has ended)."""
    spec = ScheduleSpec.model_validate(row.spec)
    policy = overlap or spec.overlap
    fires: list[FireRow] = []
    changes: dict[str, Any] = {}
    candidates: list[float] = []
    missed_count = 0
    if buffered_start:
        if row.buffered_fire_at is None:
            return Fired([])
        candidates = [row.buffered_fire_at]
        changes["buffered_fire_at"] = None
        policy = "allow"
    elif manual_time is not None:
        candidates = [manual_time]
    else:
        plan = plan_pass(spec, row.id, row.next_fire_at, now)
        missed_count = plan.missed_count
        note = "later than the catch-up window"
        if plan.missed_uncounted:
            note += "; older fire times were passed over uncounted"
        fires += [FireRow(row.id, row.namespace_id, t, "missed", note) for t in plan.missed]
        candidates = plan.start
        changes.update(
            next_fire_at=plan.next_fire,
            due_at=None
            if plan.next_fire is None
            else plan.next_fire + jitter_of(spec, row.id, plan.next_fire),
        )
    manual = manual_time is not None
    opened = await open_runs(tx.conn, row.id) if policy != "allow" else []
    buffered = row.buffered_fire_at is not None and not buffered_start
    to_cancel: list[int] = []
    starting: list[tuple[FireRow, NewRun | None]] = []
    for index, t in enumerate(candidates):
        last = index == len(candidates) - 1
        action = overlap_action(policy, bool(opened), buffered)
        if action == "cancel_and_start" and not last:
            action = "skip"  # a later fire time of this pass replaces it at once
        if action == "skip":
            why = "the previous run is still going"
            fires.append(FireRow(row.id, row.namespace_id, t, "skipped_overlap", why, manual))
            continue
        if action == "buffer":
            why = "waits for the previous run to end"
            fires.append(FireRow(row.id, row.namespace_id, t, "buffered", why, manual))
            changes["buffered_fire_at"] = t
            buffered = True
            continue
        if action == "cancel_and_start":
            to_cancel += opened
        new, problem = await _prepare(tx, transitions, row, spec, t, manual, cache)
        if new is None:
            fires.append(FireRow(row.id, row.namespace_id, t, "failed", problem, manual))
            continue
        fire = FireRow(row.id, row.namespace_id, t, "started", None, manual)
        fires.append(fire)
        starting.append((fire, new))
        opened = [0]  # the run about to start is going
    if buffered_start:  # its row exists already: it only gets its run
        inserted = {(row.id, t) for t in candidates}
    else:
        inserted = await insert_fires(tx, fires, now)
    fires = [f for f in fires if (f.schedule_id, f.fire_time) in inserted]
    starting = [(f, n) for f, n in starting if (f.schedule_id, f.fire_time) in inserted]
    if to_cancel and starting:
        reason = f"Canceled: schedule {row.name} started a newer run"
        await transitions.cancel_in(tx, sorted(set(to_cancel)), reason)
    graphs = await transitions.create_runs(tx, [n for _, n in starting if n is not None])
    run_of = {f.fire_time: g.run.id for (f, _), g in zip(starting, graphs, strict=True)}
    fires = [replace(f, run_id=run_of.get(f.fire_time)) for f in fires]
    await set_fire_runs(
        tx, [(row.id, f.fire_time, f.run_id, "started") for f in fires if f.run_id is not None]
    )
    await _bookkeep(tx, row, fires, missed_count, changes, now)
    await record_events(tx, row, namespace, fires)
    return Fired(fires)


async def _prepare(
    tx: Tx,
    transitions: Transitions,
    row: Any,
    spec: ScheduleSpec,
    fire_time: float,
    manual: bool,
    cache: dict[Any, Any] | None,
) -> tuple[NewRun | None, str | None]:
    """The run a fire time starts, or why it cannot (a workflow gone, inputs it refuses)."""
    scope = fire_scope(row.id, row.name, spec, fire_time, manual)
    try:
        inputs = render(row.inputs or {}, scope, "inputs")
        labels = render(row.labels or {}, scope, "labels")
        found, definition, checked = await transitions.resolve(
            tx, row.namespace_id, row.workflow, row.workflow_version, dict(inputs), cache
        )
    except LegatoError as exc:
        return None, exc.detail
    except (ExpressionError, ValueError, TypeError) as exc:
        return None, str(exc)
    return (
        NewRun(
            namespace_id=row.namespace_id,
            workflow_id=found.id,
            definition=definition,
            workflow_version=found.version,
            inputs=checked,
            labels={**definition.labels, **{str(k): str(v) for k, v in labels.items()}},
            schedule_id=row.id,
            fire_time=fire_time,
        ),
        None,
    )


async def _bookkeep(
    tx: Tx,
    row: Any,
    fires: Sequence[FireRow],
    missed_count: int,
    changes: dict[str, Any],
    now: float,
) -> None:
    outcomes = [f.outcome for f in fires]
    started = [f for f in fires if f.run_id is not None]
    values: dict[str, Any] = dict(changes)
    values["fired_count"] = row.fired_count + len(started)
    values["skipped_count"] = row.skipped_count + outcomes.count("skipped_overlap")
    values["missed_count"] = row.missed_count + missed_count
    values["failed_count"] = row.failed_count + outcomes.count("failed")
    if fires:
        values["last_fire_at"] = max(row.last_fire_at or 0.0, *(f.fire_time for f in fires))
    if started:
        values["last_run_id"] = max(started, key=lambda f: f.fire_time).run_id
    values["updated_at"] = now
    await update_schedule(tx.conn, row.id, values)


async def record_paused(
    tx: Tx, row: Any, spec: ScheduleSpec, now: float, namespace: str | None
) -> int:
    """On resume: the fire times that passed while paused are recorded as ``paused`` (the
    latest ones; all are counted), and the schedule goes on from now."""
    times: list[float] = []
    t = row.next_fire_at
    counted = 0
    while t is not None and t <= now and counted < 100_000:
        counted += 1
        times.append(t)
        if len(times) > MAX_PAUSED_RECORDED:
            times.pop(0)
        t = next_fire(spec, t)
    why = "the schedule was paused"
    fires = [FireRow(row.id, row.namespace_id, t, "paused", why) for t in times]
    inserted = await insert_fires(tx, fires, now)
    fires = [f for f in fires if (f.schedule_id, f.fire_time) in inserted]
    await record_events(tx, row, namespace, fires)
    return counted
