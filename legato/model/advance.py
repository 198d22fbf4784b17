"""The pure planner: given a run's graph and what just happened, decide every change.

No IO here. The store loads a :class:`RunGraph`, calls these functions, and writes back what
they marked dirty plus the :class:`Effects` they collected, all in one transaction.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from legato.model.definition import StepDefinition, WorkflowDefinition
from legato.model.durations import parse_duration
from legato.model.expressions import (
    ExpressionError,
    ExpressionLimitError,
    evaluate_condition,
    mentions,
    render,
)
from legato.model.records import RunState, StepResult, StepState
from legato.model.schedules import iso_time
from legato.model.states import RUN_TERMINAL, STEP_TERMINAL, RunStatus, StepStatus

__all__ = [
    "DEFAULT_MAX_TAKEOVERS",
    "ChildRequest",
    "Effects",
    "ParentNotice",
    "RunGraph",
    "apply_result",
    "cancel_run",
    "hold_run",
    "new_steps",
    "release_held",
    "resume",
    "retry_run",
    "start_run",
]

S = StepStatus
R = RunStatus
#: a step whose worker died is taken over this many times (apart from its retry policy)
DEFAULT_MAX_TAKEOVERS = 5
FAILED_LIKE = frozenset({S.FAILED, S.TIMED_OUT, S.CANCELED})


@dataclass(frozen=True)
class ChildRequest:
    """Start a sub-workflow run for ``step``."""

    step: StepState
    run: RunState
    workflow: str
    version: int | None
    inputs: dict[str, Any]


@dataclass(frozen=True)
class ParentNotice:
    """A child run ended: its parent step gets this result."""

    parent_run_id: int
    result: StepResult


@dataclass
class Effects:
    events: list[dict[str, Any]] = field(default_factory=list)
    raw_events: list[dict[str, Any]] = field(default_factory=list)  # already row-shaped
    values: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    new_steps: list[StepState] = field(default_factory=list)
    removed_steps: list[StepState] = field(default_factory=list)
    children: list[ChildRequest] = field(default_factory=list)
    parent_notices: list[ParentNotice] = field(default_factory=list)
    cancel_runs: list[tuple[int, str]] = field(default_factory=list)
    durations: list[tuple[RunState, str, float]] = field(default_factory=list)
    finished_runs: list[RunState] = field(default_factory=list)
    ready_steps: list[StepState] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return bool(self.ready_steps)

    def mark_ready(self, step: StepState) -> None:
        self.ready_steps.append(step)

    def event(
        self,
        run: RunState,
        kind: str,
        status: str | None,
        message: str,
        now: float,
        step: StepState | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            {
                "run": run,
                "step": step,
                "type": kind,
                "status": status,
                "message": message,
                "time": now,
                "data": data,
            }
        )


@dataclass
class RunGraph:
    run: RunState
    definition: WorkflowDefinition
    steps: list[StepState]
    #: Expressions refused for what they built (``{"path", "message"}``): the steps failed;
    #: a start that meets one at once answers it instead of keeping the failed run.
    refused_expressions: list[dict[str, str]] = field(default_factory=list)

    #: indexes over ``steps`` (by id; the items of each parent, in rank order), built when
    #: first asked for and dropped whenever a step is added or removed
    _by_id: dict[int, StepState] | None = field(default=None, repr=False, compare=False)
    _kids: dict[int, list[StepState]] | None = field(default=None, repr=False, compare=False)
    _top: list[StepState] | None = field(default=None, repr=False, compare=False)
    _top_keys: dict[str, StepState] | None = field(default=None, repr=False, compare=False)
    #: the steps marked dirty (or added) since the graph was last written, maybe twice
    _journal: list[StepState] = field(default_factory=list, repr=False, compare=False)
    #: how many top-level steps have ended, and each parent's items by ``_PHASE`` (ended,
    #: ready or running, pending): counted when first asked for, then kept by the steps'
    #: moves (``StepState.move``); a long chain's or a big foreach's step ends would count
    #: them all each time
    _ended: int | None = field(default=None, repr=False, compare=False)
    _kid_phases: dict[int, list[int]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for step in self.steps:
            self._follow(step)

    def _follow(self, step: StepState) -> None:
        step.__dict__["_journal"] = self._journal
        step.__dict__["_moved"] = self._step_moved
        if step.dirty or step.is_new:
            self._journal.append(step)

    def _step_moved(self, step: StepState, before: str, after: str) -> None:
        was, now = _PHASE[before], _PHASE[after]
        if was == now:
            return
        if step.parent_step_id is None and step.parent is None:
            if self._ended is not None:
                self._ended += (now == _ENDED) - (was == _ENDED)
        elif self._kid_phases:
            parent = step.parent or self.by_id(step.parent_step_id or 0)
            phases = self._kid_phases.get(id(parent)) if parent is not None else None
            if phases is not None:
                phases[was] -= 1
                phases[now] += 1

    def ended_top_steps(self) -> int:
        """How many top-level steps have ended (every status change of a step that is not
        new goes through ``StepState.move``)."""
        if self._ended is None:
            self._ended = _finished(self.top())
        return self._ended

    def kid_phases(self, parent: StepState) -> tuple[int, int, int]:
        """How many of ``parent``'s items have ended, are ready or running, are pending."""
        phases = self._kid_phases.get(id(parent))
        if phases is None:
            phases = [0, 0, 0]
            for kid in self.children(parent):
                phases[_PHASE[kid.status]] += 1
            self._kid_phases[id(parent)] = phases
        return phases[0], phases[1], phases[2]

    def add_step(self, step: StepState) -> None:
        self.steps.append(step)
        self._follow(step)
        self._forget_counts()

    def remove_step(self, step: StepState) -> None:
        self.steps.remove(step)
        step.__dict__["_journal"] = step.__dict__["_moved"] = None
        self._forget_counts()

    def _forget_counts(self) -> None:
        self._by_id = self._kids = self._top = self._top_keys = None
        self._ended = None
        self._kid_phases.clear()

    def changed(self) -> list[StepState]:
        """The graph's steps that are new or dirty, in the order they first changed; the
        journal starts again (``persist`` writes them and marks them clean)."""
        journal = self._journal
        seen: set[int] = set()
        out = []
        for step in journal:
            if id(step) in seen or step.__dict__.get("_journal") is not journal:
                continue  # twice, or removed since
            seen.add(id(step))
            if step.dirty or step.is_new:
                out.append(step)
        journal.clear()  # the same list: every step of the graph writes to it
        return out

    def top(self) -> list[StepState]:
        """The top-level steps, in order (kept until a step is added or removed: a step's end
        asks several times, and a long chain's steps are many). Not to be modified."""
        if self._top is None:
            self._top = [s for s in self.steps if s.parent_step_id is None and s.parent is None]
        return self._top

    def by_key(self) -> dict[str, StepState]:
        return dict(self.top_by_key())

    def top_by_key(self) -> dict[str, StepState]:
        """The top-level steps by key, kept as ``top`` is. Not to be modified."""
        if self._top_keys is None:
            self._top_keys = {s.key: s for s in self.top()}
        return self._top_keys

    def by_id(self, step_id: int) -> StepState | None:
        found = self._by_id.get(step_id) if self._by_id is not None else None
        if found is None:  # new steps get their ids on insert: index them again
            self._by_id = {s.id: s for s in self.steps if s.id}
            found = self._by_id.get(step_id)
        return found

    def children(self, parent: StepState) -> list[StepState]:
        """The items or steps of ``parent``, in rank order."""
        if self._kids is None:
            self._kids = self._index_children()
        return list(self._kids.get(id(parent), ()))

    def _index_children(self) -> dict[int, list[StepState]]:
        # an item made here points at its parent; one read from the store names its id
        ids = {s.id: s for s in self.steps if s.id}
        kids: dict[int, list[StepState]] = {}
        for s in self.steps:
            parent = s.parent or (ids.get(s.parent_step_id) if s.parent_step_id else None)
            if parent is not None:
                kids.setdefault(id(parent), []).append(s)
        for group in kids.values():
            group.sort(key=lambda s: s.rank)
        return kids

    def scope(self, item: Any = None, *, steps: bool = True) -> dict[str, Any]:
        """What expressions see; without ``steps`` when none of them names it (the steps'
        outputs are as many as the run's steps: a long chain built them at every step)."""
        run = self.run
        scope: dict[str, Any] = {"inputs": run.inputs, "vars": run.vars}
        if steps:  # top-level steps and the steps of groups ("key[i]" items are not named)
            scope["steps"] = {
                s.key: {"outputs": s.outputs or {}, "status": s.status}
                for s in self.steps
                if "[" not in s.key
            }
        return {
            **scope,
            "run": {
                "id": run.id,
                "uuid": run.uuid,
                "workflow": run.workflow_name,
                "version": run.workflow_version,
                "labels": run.labels,
            },
            "item": item,
        }


# -- creating a run -----------------------------------------------------------------------


def _step_row(
    sd: StepDefinition,
    run_id: int,
    rank: int,
    priority: int,
    now: float,
    parent: StepState | None = None,
) -> StepState:
    """A PENDING step of definition ``sd``: top level, or inside the group ``parent``."""
    return StepState(
        run_id=run_id,
        key=sd.id,
        name=sd.display_name,
        kind=sd.uses,
        rank=rank,
        needs=list(sd.needs),
        status=S.PENDING,
        type_label=sd.type,
        max_attempts=sd.max_attempts,
        priority=priority,
        timeout_s=sd.timeout,
        created_at=now,
        dirty=True,
        parent=parent,
        parent_step_id=(parent.id or None) if parent else None,
    )


def new_steps(definition: WorkflowDefinition, run: RunState, now: float) -> list[StepState]:
    """The top-level step rows of a new run, all PENDING until :func:`start_run`."""
    return [
        _step_row(sd, run.id, rank, run.priority, now) for rank, sd in enumerate(definition.steps)
    ]


def start_run(graph: RunGraph, now: float, fx: Effects) -> None:
    """Queue a new run and release its first steps; a run whose ``start_at`` is still to
    come is held instead (QUEUED, every step PENDING) until :func:`release_held`."""
    run = graph.run
    run.total_steps = len(graph.top())
    for name, value in run.inputs.items():
        fx.values.append({"run": run, "step": None, "scope": "input", "name": name, "value": value})
    if run.start_at is not None and run.start_at > now:
        run.held_until = run.start_at
        run.status_message = f"Scheduled for {iso_time(run.start_at)}"
        message = f"Run queued; starts at {iso_time(run.start_at)}"
        fx.event(run, "run.queued", R.QUEUED, message, now)
        return
    run.status_message = "Queued"
    fx.event(run, "run.queued", R.QUEUED, "Run queued", now)
    _begin(graph, now, fx)


def release_held(graph: RunGraph, now: float, fx: Effects) -> bool:
    """A held run whose start time has come: its first steps are released."""
    run = graph.run
    if run.held_until is None or run.status != R.QUEUED:
        return False
    run.held_until = None
    run.status_message = "Queued"
    run.dirty = True
    fx.event(run, "run.released", R.QUEUED, "Start time reached", now)
    _begin(graph, now, fx)
    return True


def _begin(graph: RunGraph, now: float, fx: Effects) -> None:
    if graph.definition.timeout:
        graph.run.deadline_at = now + graph.definition.timeout
    _release(graph, now, fx)
    _finish_if_done(graph, now, fx)


def hold_run(graph: RunGraph, until: float, now: float, fx: Effects) -> bool:
    """Move the start of a run that has not started (QUEUED, no step begun) to ``until``:
    its released steps wait until then too."""
    run = graph.run
    if run.status != R.QUEUED or any(
        s.status not in (S.PENDING, S.READY) or s.attempt for s in graph.steps
    ):
        return False
    run.start_at = until
    if until <= now:
        return release_held(graph, now, fx) if run.held_until is not None else True
    run.held_until = until
    run.status_message = f"Scheduled for {iso_time(until)}"
    run.dirty = True
    for step in graph.steps:
        if step.status == S.READY:
            step.not_before = max(step.not_before, until)
            step.dirty = True
    fx.event(run, "run.scheduled", R.QUEUED, run.status_message, now, data={"start_at": until})
    return True


# -- results ------------------------------------------------------------------------------


def apply_result(
    graph: RunGraph,
    result: StepResult,
    now: float,
    fx: Effects,
    rand: Callable[[], float] = random.random,
) -> bool:
    """Record one attempt's result; False when the result is stale (fenced off)."""
    step = graph.by_id(result.step_id)
    if step is None or step.status != S.RUNNING or step.attempt != result.attempt:
        return False
    if result.worker is not None and step.lease_owner != result.worker:
        return False
    run = graph.run
    step.lease_owner = None
    step.lease_expires_at = None
    step.dirty = True
    if result.status == S.SUCCEEDED:
        _succeed(graph, step, result.outputs or {}, now, fx)
    else:
        error = result.error or {"code": "failed", "message": "step failed"}
        lost_too_often = False
        if result.max_takeovers is not None:  # its worker was lost
            step.lease_losses += 1
            lost_too_often = step.lease_losses > result.max_takeovers
            if lost_too_often:
                error = _lost_too_often(step, result.max_takeovers, error)
        # attempts lost with their worker do not count against the retry policy
        allowed = step.max_attempts + step.lease_losses
        if (
            not lost_too_often
            and result.retryable
            and result.status != S.CANCELED
            and step.attempt < allowed
            and run.status not in (R.CANCELING, *RUN_TERMINAL)
            and not step.cancel_requested
        ):
            delay = _retry_delay(graph, step, rand)
            step.not_before = now + delay
            step.error = error
            step.move(
                S.READY,
                f"Retrying in {delay:.1f}s after attempt {step.attempt} "
                f"of {step.max_attempts}: {error['message']}",
            )
            fx.mark_ready(step)
            fx.event(
                run,
                "step.retrying",
                S.READY,
                step.status_message,
                now,
                step,
                {"attempt": step.attempt, "error": error, "not_before": step.not_before},
            )
        else:
            _fail(graph, step, result.status, error, now, fx)
    _after_step(graph, step, now, fx)
    return True


def _lost_too_often(step: StepState, max_takeovers: int, last: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": "lease_lost_too_often",
        "message": f"the step's worker was lost {step.lease_losses} times; it is taken over "
        f"at most {max_takeovers} times (LEGATO_MAX_TAKEOVERS). Last: {last['message']}",
    }


def _retry_delay(graph: RunGraph, step: StepState, rand: Callable[[], float]) -> float:
    sd = _definition_of(graph, step)
    if sd is None or sd.retry is None:
        return 0.0
    return float(sd.retry.delay(step.attempt, rand()))


def _succeed(
    graph: RunGraph, step: StepState, outputs: dict[str, Any], now: float, fx: Effects
) -> None:
    step.outputs = outputs
    step.error = None
    step.progress = 1.0
    step.finished_at = now
    step.move(S.SUCCEEDED, "Succeeded")
    fx.event(graph.run, "step.succeeded", S.SUCCEEDED, f"{step.name} succeeded", now, step)
    for name, value in outputs.items():
        fx.values.append(
            {"run": graph.run, "step": step, "scope": "output", "name": name, "value": value}
        )
    if step.started_at is not None and step.parent is None and step.parent_step_id is None:
        fx.durations.append((graph.run, step.key, now - step.started_at))


def _fail(
    graph: RunGraph,
    step: StepState,
    status: str,
    error: dict[str, Any],
    now: float,
    fx: Effects,
) -> None:
    step.error = error
    step.finished_at = now
    word = {S.FAILED: "failed", S.TIMED_OUT: "timed out", S.CANCELED: "canceled"}[S(status)]
    step.move(
        status, f"{word.capitalize()}: {error['message']}" if status != S.CANCELED else "Canceled"
    )
    fx.event(
        graph.run,
        f"step.{status.lower()}",
        status,
        f"{step.name} {word}",
        now,
        step,
        {"error": error},
    )
    if status != S.CANCELED:
        fx.errors.append(
            {
                "run": graph.run,
                "step": step,
                "code": error.get("code", "failed"),
                "message": error["message"],
                "time": now,
            }
        )


def _after_step(graph: RunGraph, step: StepState, now: float, fx: Effects) -> None:
    """Propagate a terminal step: to its foreach parent, its successors, the run."""
    if step.status not in STEP_TERMINAL:
        return
    parent = step.parent or (graph.by_id(step.parent_step_id) if step.parent_step_id else None)
    if parent is not None:
        if parent.kind == "group":
            _advance_group(graph, parent, now, fx)
        else:
            _advance_parent(graph, parent, now, fx)
        return
    graph.run.finished_steps = graph.ended_top_steps()
    graph.run.dirty = True
    _release(graph, now, fx, after=step)
    _finish_if_done(graph, now, fx)


_status_of = operator.attrgetter("status")
#: a step's phase, by status, for the counts a graph keeps: ended, ready or running, pending
_ENDED = 0
_PHASE: dict[str, int] = {
    **dict.fromkeys(STEP_TERMINAL, _ENDED),
    S.READY: 1,
    S.RUNNING: 1,
    S.PENDING: 2,
}


def _finished(steps: list[StepState]) -> int:
    """How many of ``steps`` have ended (one C-level pass: a long chain's steps are many)."""
    return sum(map(STEP_TERMINAL.__contains__, map(_status_of, steps)))


def _advance_parent(graph: RunGraph, parent: StepState, now: float, fx: Effects) -> None:
    if parent.status != S.RUNNING:
        return
    kids = graph.children(parent)
    # this runs at every item's end: the graph keeps the items' counts
    done, running, waiting = graph.kid_phases(parent)
    pending = [k for k in kids if k.status == S.PENDING] if waiting else []
    if graph.run.status == R.CANCELING:
        for kid in pending:
            kid.move(S.CANCELED, "Canceled")
        done += len(pending)
    else:
        sd = _definition_of(graph, parent)
        limit = (sd.max_parallel if sd and sd.max_parallel else len(kids)) - running
        for kid in pending[: max(0, limit)]:
            kid.move(S.READY, "Ready")
            fx.mark_ready(kid)
    parent.progress = done / len(kids) if kids else 1.0
    parent.status_message = f"{done} of {len(kids)} items finished"
    parent.dirty = True
    if done < len(kids):
        return
    bad = [k for k in kids if k.status != S.SUCCEEDED]
    if not bad:
        _succeed(graph, parent, {"items": [k.outputs or {} for k in kids]}, now, fx)
    else:
        status = S.CANCELED if all(k.status == S.CANCELED for k in bad) else S.FAILED
        first = next((k for k in bad if k.error), bad[0])
        _fail(
            graph,
            parent,
            status,
            {
                "code": "items_failed",
                "message": f"{len(bad)} of {len(kids)} items did not succeed; first: "
                f"{first.key}: {(first.error or {}).get('message', first.status)}",
            },
            now,
            fx,
        )
    _after_step(graph, parent, now, fx)


def _advance_group(graph: RunGraph, group: StepState, now: float, fx: Effects) -> None:
    """Release the group's steps whose needs finished; end the group when all have."""
    if group.status != S.RUNNING:
        return
    _release(graph, now, fx, group)
    if group.status != S.RUNNING:  # ended meanwhile (a step of it failed to start)
        return
    kids = graph.children(group)
    done = [k for k in kids if k.status in STEP_TERMINAL]
    group.progress = len(done) / len(kids) if kids else 1.0
    group.status_message = f"{len(done)} of {len(kids)} steps finished"
    group.dirty = True
    if len(done) < len(kids):
        return
    bad = [k for k in kids if k.status in FAILED_LIKE or _blocks_downstream(k)]
    if not bad:
        _succeed(graph, group, {k.key: k.outputs or {} for k in kids}, now, fx)
    else:
        status = S.CANCELED if all(k.status == S.CANCELED for k in bad) else S.FAILED
        first = next((k for k in bad if k.error), bad[0])
        message = (first.error or {}).get("message", first.status)
        _fail(
            graph,
            group,
            status,
            {"code": "group_failed", "message": f"step {first.key}: {message}"},
            now,
            fx,
        )
    _after_step(graph, group, now, fx)


# -- releasing steps ----------------------------------------------------------------------


def _definition_of(graph: RunGraph, step: StepState) -> StepDefinition | None:
    key = step.key
    if step.parent is not None or step.parent_step_id is not None:
        key = key.split("[", 1)[0]
    try:
        return graph.definition.step(key)
    except KeyError:
        return None


def _release(
    graph: RunGraph,
    now: float,
    fx: Effects,
    group: StepState | None = None,
    *,
    after: StepState | None = None,
) -> None:
    """Move every PENDING step of a level (the top, or a group's) whose needs all finished.
    ``after`` a top-level step ended, only the steps that need it can have become free: they
    are looked at alone, unless one of them ends at once (skipped, canceled, failed), which
    may free others in turn; then the whole level is."""
    level = graph.children(group) if group is not None else graph.top()
    by_key = {s.key: s for s in level} if group is not None else graph.top_by_key()
    if after is not None and group is None:
        users = [by_key[k] for k in graph.definition.needed_by(after.key) if k in by_key]
        _release_steps(graph, users, by_key, now, fx)
        if not any(s.status in STEP_TERMINAL for s in users):
            return
    _release_steps(graph, level, by_key, now, fx)


def _release_steps(
    graph: RunGraph,
    level: list[StepState],
    by_key: dict[str, StepState],
    now: float,
    fx: Effects,
) -> None:
    run = graph.run
    for step in level:
        if step.status != S.PENDING:
            continue
        deps = [by_key[n] for n in step.needs if n in by_key]
        if any(d.status not in STEP_TERMINAL for d in deps):
            continue
        if run.status in (R.CANCELING, *RUN_TERMINAL):
            step.move(S.CANCELED, "Canceled")
            continue
        broken = [d.key for d in deps if _blocks_downstream(d)]
        if broken:
            _skip(
                graph,
                step,
                f"Skipped: upstream {', '.join(broken)} did not succeed",
                now,
                fx,
                reason="upstream_failed",
            )
            continue
        sd = graph.definition.step(step.key)
        scope = graph.scope(steps=_names_steps(sd))
        try:
            if sd.if_ is not None and not _condition(sd.if_, scope):
                _skip(graph, step, "Skipped: condition is false", now, fx)
                continue
            _dispatch(graph, step, sd, scope, now, fx)
        except (ExpressionError, ValueError, TypeError) as exc:
            step.attempt = max(step.attempt, 1)
            error = {"code": "bad_expression", "message": str(exc)}
            if isinstance(exc, ExpressionLimitError):
                error["path"] = _step_path(graph.definition, sd, exc.path)
                graph.refused_expressions.append({"path": error["path"], "message": str(exc)})
            _fail(graph, step, S.FAILED, error, now, fx)
            _after_step(graph, step, now, fx)
            return  # _after_step released the rest already


def _names_steps(sd: StepDefinition) -> bool:
    """Whether an expression of the step may read ``steps``: its ``if`` (a bare expression
    too), or an expression in its ``foreach`` or ``with``, that has the word in it."""
    if_ = sd.if_
    if isinstance(if_, str) and "steps" in if_:
        return True
    return mentions(sd.foreach, "steps") or mentions(sd.with_, "steps")


def _condition(expr: str | bool, scope: dict[str, Any]) -> bool:
    try:
        return evaluate_condition(expr, scope)
    except ExpressionLimitError as exc:
        exc.path = "if"
        raise


def _step_path(definition: WorkflowDefinition, sd: StepDefinition, inner: str) -> str:
    """Where a step's field stands in the definition: ``steps[0].with.text`` for a top-level
    step, ``steps.<id>.with.text`` within a group."""
    index = next((i for i, top in enumerate(definition.steps) if top.id == sd.id), None)
    head = f"steps[{index}]" if index is not None else f"steps.{sd.id}"
    return f"{head}.{inner}" if inner else head


def _blocks_downstream(dep: StepState) -> bool:
    """A failed upstream skips its dependents, and so does one skipped for that reason; a step
    skipped by its own false condition does not (its dependents run, seeing no outputs)."""
    if dep.status == S.SKIPPED:
        return (dep.error or {}).get("code") == "upstream_failed"
    return dep.status != S.SUCCEEDED


def _skip(
    graph: RunGraph,
    step: StepState,
    message: str,
    now: float,
    fx: Effects,
    reason: str = "condition_false",
) -> None:
    step.finished_at = now
    step.error = {"code": reason, "message": message} if reason == "upstream_failed" else None
    step.move(S.SKIPPED, message)
    fx.event(graph.run, "step.skipped", S.SKIPPED, f"{step.name}: {message}", now, step)
    if step.parent is None and step.parent_step_id is None:
        graph.run.finished_steps += 1


def _mark_running(run: RunState, now: float, fx: Effects) -> None:
    if run.status == R.QUEUED:
        run.started_at = now
        run.move(R.RUNNING, "Running")
        fx.event(run, "run.started", R.RUNNING, "Run started", now)


def _dispatch(
    graph: RunGraph,
    step: StepState,
    sd: StepDefinition,
    scope: dict[str, Any],
    now: float,
    fx: Effects,
) -> None:
    if sd.foreach is not None:
        items = render(sd.foreach, scope, "foreach")
        if not isinstance(items, list):
            raise ValueError(
                f"foreach of step '{sd.id}' must give a list, got {type(items).__name__}"
            )
        step.started_at = now
        step.attempt = 1
        step.move(S.RUNNING, f"0 of {len(items)} items finished")
        _mark_running(graph.run, now, fx)
        fx.event(graph.run, "step.started", S.RUNNING, f"{step.name} started", now, step)
        limit = sd.max_parallel or len(items)
        base = graph.scope()  # the items are not named in it: the same for every item
        for index, item in enumerate(items):
            kid = StepState(
                run_id=step.run_id,
                key=f"{step.key}[{index}]",
                name=f"{step.name} [{index}]",
                kind=step.kind,
                rank=index,
                needs=[],
                status=S.PENDING,
                type_label=step.type_label,
                max_attempts=step.max_attempts,
                priority=step.priority,
                timeout_s=step.timeout_s,
                item=item,
                created_at=now,
                dirty=True,
                parent=step,
                parent_step_id=step.id or None,
            )
            kid.args = render(sd.with_, {**base, "item": item}, "with")
            if index < limit:
                kid.status = S.READY
                kid.status_message = "Ready"
                fx.mark_ready(kid)
            graph.add_step(kid)
            fx.new_steps.append(kid)
        if not items:
            _succeed(graph, step, {"items": []}, now, fx)
            _after_step(graph, step, now, fx)
        return
    if sd.uses == "group":
        step.started_at = now
        step.attempt = 1
        step.move(S.RUNNING, f"0 of {len(sd.steps or [])} steps finished")
        _mark_running(graph.run, now, fx)
        fx.event(graph.run, "step.started", S.RUNNING, f"{step.name} started", now, step)
        for rank, child in enumerate(sd.steps or []):
            kid = _step_row(child, step.run_id, rank, step.priority, now, parent=step)
            graph.add_step(kid)
            fx.new_steps.append(kid)
        _advance_group(graph, step, now, fx)
        return
    args = render(sd.with_, scope, "with")
    step.args = args
    if sd.uses == "workflow":
        step.started_at = now
        step.attempt = 1
        step.move(S.RUNNING, f"Waiting for sub-workflow {args.get('workflow')}")
        _mark_running(graph.run, now, fx)
        fx.event(graph.run, "step.started", S.RUNNING, f"{step.name} started", now, step)
        fx.children.append(
            ChildRequest(
                step,
                graph.run,
                str(args["workflow"]),
                args.get("version"),
                dict(args.get("inputs") or {}),
            )
        )
    elif sd.uses == "approval":
        step.started_at = now
        step.attempt = 1
        step.move(S.RUNNING, str(args.get("message") or "Waiting for approval"))
        _mark_running(graph.run, now, fx)
        fx.event(graph.run, "step.waiting", S.RUNNING, f"{step.name} waits for approval", now, step)
    else:
        if sd.uses == "sleep":
            step.not_before = now + parse_duration(args["duration"])
            step.move(S.READY, "Sleeping")
        else:
            step.move(S.READY, "Ready")
        fx.mark_ready(step)


# -- finishing ----------------------------------------------------------------------------


def _finish_if_done(graph: RunGraph, now: float, fx: Effects) -> None:
    run = graph.run
    top = graph.top()
    if run.status in RUN_TERMINAL or graph.ended_top_steps() < len(top):
        return
    run.finished_at = now
    run.dirty = True
    if run.status == R.CANCELING:
        timed_out = (run.error or {}).get("code") == "run_timeout"
        final = R.TIMED_OUT if timed_out else R.CANCELED
        run.move(final, "Timed out" if timed_out else "Canceled")
    else:
        failed = [s for s in top if s.status in FAILED_LIKE]
        if failed:
            first = failed[0]
            err = first.error or {"code": "failed", "message": first.status}
            run.error = {
                "code": err.get("code", "failed"),
                "message": err["message"],
                "step": first.key,
            }
            run.move(R.FAILED, f"Failed: step {first.key}: {err['message']}")
        else:
            try:
                outputs = render(graph.definition.outputs, graph.scope())
                run.outputs = outputs if isinstance(outputs, dict) else {"result": outputs}
                run.move(R.SUCCEEDED, "Succeeded")
                for name, value in run.outputs.items():
                    fx.values.append(
                        {
                            "run": run,
                            "step": None,
                            "scope": "run_output",
                            "name": name,
                            "value": value,
                        }
                    )
            except ExpressionError as exc:
                run.error = {"code": "bad_expression", "message": str(exc), "step": None}
                fx.errors.append(
                    {
                        "run": run,
                        "step": None,
                        "code": "bad_expression",
                        "message": str(exc),
                        "time": now,
                    }
                )
                run.move(R.FAILED, f"Failed: outputs: {exc}")
    if run.started_at is None:
        run.started_at = now
    fx.event(run, f"run.{run.status.lower()}", run.status, run.status_message, now)
    fx.finished_runs.append(run)
    if run.parent_run_id is not None and run.parent_step_id is not None:
        fx.parent_notices.append(ParentNotice(run.parent_run_id, _child_result(run)))


def _child_result(run: RunState) -> StepResult:
    status = {R.SUCCEEDED: S.SUCCEEDED, R.CANCELED: S.CANCELED, R.TIMED_OUT: S.TIMED_OUT}.get(
        R(run.status), S.FAILED
    )
    error = None
    if status != S.SUCCEEDED:
        error = dict(
            run.error
            or {
                "code": run.status.lower(),
                "message": f"sub-workflow run {run.id} {run.status.lower()}",
            }
        )
        error.pop("step", None)
    assert run.parent_step_id is not None
    return StepResult(
        step_id=run.parent_step_id,
        attempt=1,
        status=status,
        outputs=run.outputs or {},
        error=error,
        retryable=False,
    )


def resume(graph: RunGraph, step_id: int, outputs: dict[str, Any], now: float, fx: Effects) -> bool:
    """Complete a step that waits on the outside world (approval), with a payload."""
    step = graph.by_id(step_id)
    if step is None or step.status != S.RUNNING or step.lease_owner is not None:
        return False
    return apply_result(graph, StepResult(step.id, step.attempt, S.SUCCEEDED, outputs), now, fx)


# -- cancel and retry ---------------------------------------------------------------------


def cancel_run(
    graph: RunGraph,
    now: float,
    fx: Effects,
    *,
    reason: str = "Canceled by request",
    code: str = "canceled",
) -> bool:
    run = graph.run
    if run.status in RUN_TERMINAL or run.status == R.CANCELING:
        return False
    run.error = {"code": code, "message": reason, "step": None}
    run.held_until = None
    run.move(R.CANCELING, f"Canceling: {reason}")
    fx.event(run, "run.canceling", R.CANCELING, reason, now)
    for step in graph.steps:
        if step.status in (S.PENDING, S.READY):
            step.finished_at = now
            step.move(S.CANCELED, "Canceled")
            fx.event(run, "step.canceled", S.CANCELED, f"{step.name} canceled", now, step)
        elif step.status == S.RUNNING:
            if step.child_run_id is not None:
                fx.cancel_runs.append((step.child_run_id, reason))
            elif step.lease_owner is not None:
                step.cancel_requested = True
                step.status_message = "Canceling"
                step.dirty = True
            elif step.kind == "approval" or step.kind == "workflow":
                step.finished_at = now
                step.move(S.CANCELED, "Canceled")
                fx.event(run, "step.canceled", S.CANCELED, f"{step.name} canceled", now, step)
    for step in reversed(graph.steps):  # groups and foreach parents, innermost first
        if step.status == S.RUNNING and step.kind != "workflow" and graph.children(step):
            if step.kind == "group":
                _advance_group(graph, step, now, fx)
            else:
                _advance_parent(graph, step, now, fx)
    graph.run.finished_steps = graph.ended_top_steps()
    _finish_if_done(graph, now, fx)
    return True


def _top_ancestor(graph: RunGraph, step: StepState) -> StepState:
    while True:
        parent = step.parent or (graph.by_id(step.parent_step_id) if step.parent_step_id else None)
        if parent is None:
            return step
        step = parent


def retry_run(graph: RunGraph, now: float, fx: Effects) -> bool:
    """Run a failed run again from its failed steps; succeeded steps keep their outputs."""
    run = graph.run
    if run.status not in (R.FAILED, R.TIMED_OUT, R.CANCELED) or run.status == R.CANCELED:
        return False
    again = [s for s in graph.top() if s.status in (S.FAILED, S.TIMED_OUT, S.CANCELED, S.SKIPPED)]
    for step in list(graph.steps):  # the items and steps of what runs again are made anew
        if step.parent is not None or step.parent_step_id is not None:
            if _top_ancestor(graph, step) in again:
                graph.remove_step(step)
                fx.removed_steps.append(step)
    for step in again:
        step.attempt = 0
        step.lease_losses = 0
        step.error = None
        step.outputs = None
        step.progress = None
        step.started_at = step.finished_at = None
        step.cancel_requested = False
        step.move(S.PENDING, "Waiting for upstream steps")
    run.error = None
    run.outputs = None
    run.finished_at = None
    run.move(R.RUNNING, "Retrying from failed steps")
    fx.event(run, "run.retrying", R.RUNNING, "Retrying from failed steps", now)
    run.finished_steps = graph.ended_top_steps()
    _release(graph, now, fx)
    _finish_if_done(graph, now, fx)
    return True
