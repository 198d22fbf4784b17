"""Firing a schedule inside a transaction: its due fire times become runs (or records of why
not), with the overlap policy applied, all committed together.

A fire time is recorded first, on the unique key (schedule, fire time); a run starts only for
a row this transaction inserted. Two processes firing the same schedule at once therefore
start one run, and a process killed halfway has committed nothing: the next pass (of any
process) fires the same time again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from legato.engine.limits import take_queue_room
from legato.engine.transitions import NewRun, Transitions
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
    update_schedules,
)

__all__ = ["Fired", "fire_many", "fire_schedule", "record_paused", "timing"]

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


@dataclass
class _Plan:
    """What firing one schedule will do, before the batch's statements run."""

    row: Any
    fires: list[FireRow] = field(default_factory=list)
    starting: list[tuple[FireRow, NewRun]] = field(default_factory=list)
    to_cancel: list[int] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    missed_count: int = 0
    recorded: bool = False  # its fire row exists already (a buffered fire)


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
    [fired] = await fire_many(
        tx,
        transitions,
        [row],
        now,
        namespaces={row.namespace_id: namespace} if namespace else {},
        manual_time=manual_time,
        overlap=overlap,
        buffered_start=buffered_start,
        cache=cache,
    )
    return fired


async def fire_many(
    tx: Tx,
    transitions: Transitions,
    rows: Sequence[Any],
    now: float,
    *,
    namespaces: Mapping[int, str] | None = None,
    manual_time: float | None = None,
    overlap: str | None = None,
    buffered_start: bool = False,
    cache: dict[Any, Any] | None = None,
) -> list[Fired]:
    """Fire many schedules with a fixed handful of statements, however many they are: their
    fire rows in one insert, their runs created together, their rows updated together."""
    cache = {} if cache is None else cache
    names = namespaces or {}
    plans = [
        await _plan(
            tx,
            transitions,
            row,
            now,
            manual_time,
            overlap,
            buffered_start,
            cache,
            names.get(row.namespace_id, str(row.namespace_id)),
        )
        for row in rows
    ]
    inserted = await insert_fires(tx, [f for p in plans if not p.recorded for f in p.fires], now)
    for p in plans:
        if not p.recorded:  # only a fire time this transaction recorded may start a run
            p.fires = [f for f in p.fires if (f.schedule_id, f.fire_time) in inserted]
            p.starting = [(f, n) for f, n in p.starting if (f.schedule_id, f.fire_time) in inserted]
        if p.to_cancel and p.starting:
            reason = f"Canceled: schedule {p.row.name} started a newer run"
            await transitions.cancel_in(tx, sorted(set(p.to_cancel)), reason)
    graphs = iter(await transitions.create_runs(tx, [n for p in plans for _, n in p.starting]))
    out: list[Fired] = []
    for p in plans:
        run_of = {f.fire_time: next(graphs).run.id for f, _ in p.starting}
        p.fires = [replace(f, run_id=run_of.get(f.fire_time)) for f in p.fires]
        out.append(Fired(p.fires))
    started = [f for p in plans for f in p.fires if f.run_id is not None]
    await set_fire_runs(tx, [(f.schedule_id, f.fire_time, f.run_id, "started") for f in started])
    await update_schedules(tx.conn, [_bookkeeping(p, now) for p in plans])
    for p in plans:
        await record_events(tx, p.row, (namespaces or {}).get(p.row.namespace_id), p.fires)
    return out


async def _plan(
    tx: Tx,
    transitions: Transitions,
    row: Any,
    now: float,
    manual_time: float | None,
    overlap: str | None,
    buffered_start: bool,
    cache: dict[Any, Any],
    namespace: str,
) -> _Plan:
    spec = ScheduleSpec.model_validate(row.spec)
    policy = overlap or spec.overlap
    plan = _Plan(row)
    candidates: list[float] = []
    if buffered_start:
        if row.buffered_fire_at is not None:
            candidates = [row.buffered_fire_at]
        plan.changes["buffered_fire_at"] = None
        plan.recorded = True
        policy = "allow"
    elif manual_time is not None:
        candidates = [manual_time]
    else:
        due = plan_pass(spec, row.id, row.next_fire_at, now)
        plan.missed_count = due.missed_count
        note = "later than the catch-up window"
        if due.missed_uncounted:
            note += "; older fire times were passed over uncounted"
        plan.fires += [FireRow(row.id, row.namespace_id, t, "missed", note) for t in due.missed]
        candidates = due.start
        plan.changes["next_fire_at"] = due.next_fire
        plan.changes["due_at"] = (
            None
            if due.next_fire is None
            else due.next_fire + jitter_of(spec, row.id, due.next_fire)
        )
    manual = manual_time is not None
    opened = await open_runs(tx.conn, row.id) if policy != "allow" and candidates else []
    buffered = row.buffered_fire_at is not None and not buffered_start
    for index, t in enumerate(candidates):
        last = index == len(candidates) - 1
        action = overlap_action(policy, bool(opened), buffered)
        if action == "cancel_and_start" and not last:
            action = "skip"  # a later fire time of this pass replaces it at once
        if action == "skip":
            why = "the previous run is still going"
            plan.fires.append(FireRow(row.id, row.namespace_id, t, "skipped_overlap", why, manual))
            continue
        if action == "buffer":
            why = "waits for the previous run to end"
            plan.fires.append(FireRow(row.id, row.namespace_id, t, "buffered", why, manual))
            plan.changes["buffered_fire_at"] = t
            buffered = True
            continue
        if action == "cancel_and_start":
            plan.to_cancel += opened
        new, problem = await _prepare(tx, transitions, row, spec, t, manual, cache, namespace)
        if new is None:
            plan.fires.append(FireRow(row.id, row.namespace_id, t, "failed", problem, manual))
            continue
        fire = FireRow(row.id, row.namespace_id, t, "started", None, manual)
        plan.fires.append(fire)
        plan.starting.append((fire, new))
        opened = [0]  # the run about to start is going
    return plan


async def _prepare(
    tx: Tx,
    transitions: Transitions,
    row: Any,
    spec: ScheduleSpec,
    fire_time: float,
    manual: bool,
    cache: dict[Any, Any],
    namespace: str,
) -> tuple[NewRun | None, str | None]:
    """The run a fire time starts, or why it cannot (a workflow gone, inputs it refuses, the
    namespace's queue full)."""
    scope = fire_scope(row.id, row.name, spec, fire_time, manual)
    try:
        inputs = render(row.inputs or {}, scope, "inputs")
        labels = render(row.labels or {}, scope, "labels")
        found, definition, checked = await transitions.resolve(
            tx, row.namespace_id, row.workflow, row.workflow_version, dict(inputs), cache
        )
        await take_queue_room(tx, row.namespace_id, namespace, cache.setdefault("queues", {}))
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


def _bookkeeping(plan: _Plan, now: float) -> dict[str, Any]:
    """The schedule row after its fires: every column the batch update sets."""
    row, fires = plan.row, plan.fires
    outcomes = [f.outcome for f in fires]
    started = [f for f in fires if f.run_id is not None]
    last_fire = max([row.last_fire_at or 0.0, *(f.fire_time for f in fires)])
    return {
        "id": row.id,
        "next_fire_at": row.next_fire_at,
        "due_at": row.due_at,
        "buffered_fire_at": row.buffered_fire_at,
        **plan.changes,
        "fired_count": row.fired_count + len(started),
        "skipped_count": row.skipped_count + outcomes.count("skipped_overlap"),
        "missed_count": row.missed_count + plan.missed_count,
        "failed_count": row.failed_count + outcomes.count("failed"),
        "last_fire_at": last_fire or None,
        "last_run_id": max(started, key=lambda f: f.fire_time).run_id
        if started
        else row.last_run_id,
        "updated_at": now,
    }


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
