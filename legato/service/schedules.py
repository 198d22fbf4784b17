"""Use cases on schedules: create, read, list, update, delete, pause, resume, trigger now,
and the schedules a workflow declares in its definition (applied with it)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from legato.engine.firing import fire_schedule, record_paused, timing
from legato.engine.transitions import SCHEDULES_TOPIC, Transitions
from legato.model.errors import Conflict, InvalidInput, NotFound
from legato.model.expressions import ExpressionError, render
from legato.model.ids import parse_id
from legato.model.inputs import InputError, resolve_inputs
from legato.model.schedules import (
    NAME_PATTERN,
    OVERLAP_POLICIES,
    ScheduleDeclaration,
    ScheduleFields,
    ScheduleSpec,
    fire_scope,
    iso_time,
    next_fire,
    next_fires,
)
from legato.service.principal import Principal
from legato.store import schedules as store
from legato.store.database import Database, Tx
from legato.store.errors import DuplicateKey
from legato.store.workflows import find_workflow

__all__ = ["ScheduleService", "apply_declared", "schedule_problems"]

MAX_NEXT = 100
_NAME = re.compile(NAME_PATTERN)
MAX_FIRES_PAGE = 500
#: fields a declared schedule takes from its workflow's definition (the rest is operational)
_DECLARED = (*ScheduleSpec.model_fields, "description", "version", "inputs", "labels")


def schedule_problems(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic's errors as the API's ``errors``: a path each (``cron``, ``end_at``)."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "cron"  # cron or every: give one
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append({"path": prefix + loc, "code": err["type"], "message": message})
    return out


def _ref(ref: str) -> int | str:
    number = parse_id(ref)
    return number if number is not None else ref


def _view(row: Any, namespace: str, now: float, count: int = 5) -> dict[str, Any]:
    spec = ScheduleSpec.model_validate(row.spec)
    upcoming: list[float] = []
    if row.paused:  # from now on, as a resume would go on
        upcoming = next_fires(spec, now, count)
    elif row.next_fire_at is not None:  # the next not yet fired (due now, perhaps)
        upcoming = [row.next_fire_at, *next_fires(spec, row.next_fire_at, count - 1)]
    state = "paused" if row.paused else ("ended" if row.next_fire_at is None else "active")
    return {
        "id": row.id,
        "name": row.name,
        "namespace": namespace,
        "description": row.description,
        "workflow": row.workflow,
        "version": row.workflow_version,
        **{k: v for k, v in spec.as_data().items()},
        "start_at": iso_time(spec.start_at),
        "end_at": iso_time(spec.end_at),
        "anchor": iso_time(spec.anchor),
        "inputs": row.inputs,
        "labels": row.labels,
        "declared_by": row.owner_workflow,
        "state": state,
        "paused": row.paused,
        "note": row.note,
        "next_fire_time": iso_time(row.next_fire_at) if not row.paused else None,
        "next_fire_times": [iso_time(t) for t in upcoming],
        "last_fire_time": iso_time(row.last_fire_at),
        "last_run_id": row.last_run_id,
        "buffered_fire_time": iso_time(row.buffered_fire_at),
        "counts": {
            "started": row.fired_count,
            "skipped_overlap": row.skipped_count,
            "missed": row.missed_count,
            "failed": row.failed_count,
        },
        "created_at": iso_time(row.created_at),
        "updated_at": iso_time(row.updated_at),
    }


def fire_view(row: Any) -> dict[str, Any]:
    return {
        "fire_time": iso_time(row.fire_time),
        "outcome": row.outcome,
        "run_id": row.run_id,
        "message": row.message,
        "manual": row.manual,
        "recorded_at": iso_time(row.recorded_at) if hasattr(row, "recorded_at") else None,
    }


class ScheduleService:
    def __init__(self, db: Database, transitions: Transitions) -> None:
        self.db = db
        self.transitions = transitions
        self.clock: Callable[[], float] = time.time  # tests drive the clock

    # -- read ----------------------------------------------------------------------------

    async def _row(self, conn: Any, p: Principal, ref: str, *, lock: bool = False) -> Any:
        named = _ref(ref)
        if isinstance(named, str) and not _NAME.match(named):  # no schedule has that name
            raise NotFound(f"schedule '{ref[:100]}' does not exist", code="schedule_not_found")
        row = await store.find_schedule(conn, p.namespace_id, named, lock=lock)
        if row is None:
            raise NotFound(f"schedule '{ref}' does not exist", code="schedule_not_found")
        return row

    async def get(self, p: Principal, ref: str, *, fires: int = 10) -> dict[str, Any]:
        """The schedule with its next fire times, its latest fires and its counts."""
        async with self.db.read() as conn:
            row = await self._row(conn, p, ref)
            recent = await store.list_fires(conn, row.id, fires)
        view = _view(row, p.namespace, self.clock())
        view["recent_fires"] = [fire_view(f) for f in recent]
        return view

    async def list_all(self, p: Principal, workflow: str | None = None) -> list[dict[str, Any]]:
        if workflow is not None and not _NAME.match(workflow):
            return []  # no workflow has that name
        async with self.db.read() as conn:
            rows = await store.list_schedules(conn, p.namespace_id, workflow)
        now = self.clock()
        return [_view(r, p.namespace, now, count=1) for r in rows]

    async def next_times(self, p: Principal, ref: str, count: int) -> list[str | None]:
        if not 1 <= count <= MAX_NEXT:
            raise InvalidInput(
                f"count must be between 1 and {MAX_NEXT}",
                errors=[{"path": "count", "message": "out of range"}],
            )
        async with self.db.read() as conn:
            row = await self._row(conn, p, ref)
        return _view(row, p.namespace, self.clock(), count)["next_fire_times"]  # type: ignore[no-any-return]

    async def fires(
        self, p: Principal, ref: str, limit: int = 50, before: float | None = None
    ) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            row = await self._row(conn, p, ref)
            rows = await store.list_fires(conn, row.id, min(limit, MAX_FIRES_PAGE), before)
        return [fire_view(r) for r in rows]

    # -- write ---------------------------------------------------------------------------

    async def create(self, p: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
        p.require("operator")
        fields = _validated(ScheduleFields, body)
        if not fields.workflow:
            raise InvalidInput(
                "workflow: a schedule names the workflow it starts",
                code="invalid_schedule",
                errors=[{"path": "workflow", "code": "missing", "message": "required"}],
            )
        workflow = fields.workflow

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            now = self.clock()
            await self._check_target(tx, p, workflow, fields.version, fields)
            values = _values(fields, now) | {
                "namespace_id": p.namespace_id,
                "workflow": workflow,
                "owner_workflow": None,
                "paused": fields.paused,
                "note": fields.note,
                "created_at": now,
            }
            row = await store.insert_schedule(tx.conn, values)
            await store.update_schedule(tx.conn, row.id, _timing(fields.spec(), row.id, now))
            tx.wake(SCHEDULES_TOPIC)
            return {"id": row.id}

        try:
            made = await self.db.write(tx_fn)
        except DuplicateKey:
            raise Conflict(
                f"a schedule named '{fields.name}' exists already", code="schedule_exists"
            ) from None
        return await self.get(p, str(made["id"]))

    async def update(self, p: Principal, ref: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change the given fields (the others stay); the next fire time is worked out anew
        when the timing changed."""
        p.require("operator")

        async def tx_fn(tx: Tx) -> int:
            row = await self._row(tx.conn, p, ref, lock=True)
            _not_declared(row, "changed")
            merged = {**_as_body(row), **body}
            fields = _validated(ScheduleFields, merged)
            now = self.clock()
            workflow = fields.workflow or row.workflow
            await self._check_target(tx, p, workflow, fields.version, fields)
            values = _values(fields, now) | {"workflow": workflow, "note": fields.note}
            if fields.spec().as_data() != ScheduleSpec.model_validate(row.spec).as_data():
                after = max(now, row.last_fire_at or 0.0)
                values |= _timing(fields.spec(), row.id, after)
            if fields.paused != row.paused:
                values |= await self._pausing(tx, row, fields.paused, now, p.namespace)
            await store.update_schedule(tx.conn, row.id, values)
            tx.wake(SCHEDULES_TOPIC)
            return int(row.id)

        try:
            schedule_id = await self.db.write(tx_fn)
        except DuplicateKey:
            raise Conflict(
                "a schedule with that name exists already", code="schedule_exists"
            ) from None
        return await self.get(p, str(schedule_id))

    async def delete(self, p: Principal, ref: str) -> None:
        """Gone at once: a fire due now starts nothing more (its runs stay)."""
        p.require("operator")

        async def tx_fn(tx: Tx) -> None:
            row = await self._row(tx.conn, p, ref, lock=True)
            _not_declared(row, "deleted")
            await store.delete_schedule(tx.conn, row.id)
            tx.wake(SCHEDULES_TOPIC)

        await self.db.write(tx_fn)

    async def pause(self, p: Principal, ref: str, note: str | None = None) -> dict[str, Any]:
        return await self._set_paused(p, ref, True, note)

    async def resume(self, p: Principal, ref: str, note: str | None = None) -> dict[str, Any]:
        return await self._set_paused(p, ref, False, note)

    async def _set_paused(
        self, p: Principal, ref: str, paused: bool, note: str | None
    ) -> dict[str, Any]:
        p.require("operator")

        async def tx_fn(tx: Tx) -> int:
            row = await self._row(tx.conn, p, ref, lock=True)
            if row.paused == paused:
                values: dict[str, Any] = {}
            else:
                values = await self._pausing(tx, row, paused, self.clock(), p.namespace)
            if note is not None:
                values["note"] = note
            if values:
                await store.update_schedule(tx.conn, row.id, values)
                tx.wake(SCHEDULES_TOPIC)
            return int(row.id)

        return await self.get(p, str(await self.db.write(tx_fn)))

    async def _pausing(
        self, tx: Tx, row: Any, paused: bool, now: float, namespace: str
    ) -> dict[str, Any]:
        """A pause stops the clock (no due time); a resume records the fire times that
        passed as ``paused`` and goes on from now."""
        if paused:
            return {"paused": True, "due_at": None, "updated_at": now}
        spec = ScheduleSpec.model_validate(row.spec)
        await record_paused(tx, row, spec, now, namespace)
        return {"paused": False, "updated_at": now, **_timing(spec, row.id, now)}

    async def trigger(self, p: Principal, ref: str, overlap: str | None = None) -> dict[str, Any]:
        """Fire now, once, apart from the schedule's own times (also while paused); the
        overlap policy applies unless another is given."""
        p.require("operator")
        if overlap is not None and overlap not in OVERLAP_POLICIES:
            raise InvalidInput(
                f"overlap must be one of {', '.join(OVERLAP_POLICIES)}",
                code="invalid_schedule",
                errors=[{"path": "overlap", "code": "invalid", "message": "unknown policy"}],
            )

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            row = await self._row(tx.conn, p, ref, lock=True)
            now = self.clock()
            fired = await fire_schedule(
                tx,
                self.transitions,
                row,
                now,
                namespace=p.namespace,
                manual_time=now,
                overlap=overlap,
            )
            tx.wake(SCHEDULES_TOPIC)
            if not fired.fires:
                raise Conflict("fired at this very instant already", code="fire_exists")
            return fire_view(fired.fires[0])

        return await self.db.write(tx_fn)

    async def _check_target(
        self, tx: Tx, p: Principal, workflow: str, version: int | None, fields: Any
    ) -> None:
        """The workflow (version) exists and takes the inputs, worked out for a fire time."""
        row = await find_workflow(tx.conn, p.namespace_id, workflow, version)
        if row is None:
            which = f"version {version} of " if version else ""
            detail = f"{which}workflow '{workflow}' does not exist"
            raise InvalidInput(
                f"workflow: {detail}",
                code="invalid_schedule",
                errors=[
                    {
                        "path": "version" if version else "workflow",
                        "code": "not_found",
                        "message": detail,
                    }
                ],
            )
        definition = (await self.transitions.definitions.get_many(tx.conn, [row.id]))[row.id]
        _check_inputs(definition, fields, "")


def _check_inputs(definition: Any, fields: ScheduleDeclaration, prefix: str) -> None:
    spec = fields.spec()
    sample = next_fire(spec, time.time()) or time.time()
    scope = fire_scope(0, fields.name, spec, sample, False)
    try:
        inputs = render(dict(fields.inputs), scope, "inputs")
        render(dict(fields.labels), scope, "labels")
        resolve_inputs(definition, dict(inputs))
    except InputError as exc:
        raise InvalidInput(
            f"{prefix}inputs: {exc}",
            code="invalid_schedule",
            errors=[{**pr, "path": f"{prefix}{pr.get('path', 'inputs')}"} for pr in exc.problems],
        ) from None
    except (ExpressionError, ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{prefix}inputs: {exc}",
            code="invalid_schedule",
            errors=[{"path": f"{prefix}inputs", "code": "bad_expression", "message": str(exc)}],
        ) from None


def _validated(model: type[ScheduleDeclaration], body: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(body))
    except ValidationError as exc:
        problems = schedule_problems(exc)
        raise InvalidInput(
            f"{problems[0]['path']}: {problems[0]['message']}",
            code="invalid_schedule",
            errors=problems,
        ) from None


def _values(fields: ScheduleDeclaration, now: float) -> dict[str, Any]:
    return {
        "name": fields.name,
        "description": fields.description,
        "workflow_version": fields.version,
        "spec": fields.spec().as_data(),
        "inputs": dict(fields.inputs),
        "labels": dict(fields.labels),
        "updated_at": now,
    }


def _timing(spec: ScheduleSpec, schedule_id: int, after: float) -> dict[str, Any]:
    return timing(spec, schedule_id, after)


def _as_body(row: Any) -> dict[str, Any]:
    """A stored schedule as the body that would make it (to merge a partial update into)."""
    spec = {k: v for k, v in row.spec.items() if v is not None}
    return {
        **spec,
        "name": row.name,
        "description": row.description,
        "workflow": row.workflow,
        "version": row.workflow_version,
        "inputs": row.inputs,
        "labels": row.labels,
        "paused": row.paused,
        "note": row.note,
    }


def _not_declared(row: Any, verb: str) -> None:
    if row.owner_workflow is not None:
        raise Conflict(
            f"schedule '{row.name}' is declared in workflow '{row.owner_workflow}': it is "
            f"{verb} by applying that workflow's definition (pause and resume work here)",
            code="schedule_declared",
        )


async def apply_declared(
    tx: Tx,
    namespace_id: int,
    workflow: str,
    definition: Any,
    declared: Sequence[ScheduleDeclaration],
    now: float,
) -> None:
    """Make the schedules a workflow declares exist as declared: new ones are created,
    changed ones updated (their pause state kept), dropped ones deleted."""
    for index, fields in enumerate(declared):
        _check_inputs(definition, fields, f"schedules[{index}].")
    mine = {r.name: r for r in await store.owned_by(tx.conn, namespace_id, workflow)}
    wanted = {f.name for f in declared}
    for name, gone in mine.items():
        if name not in wanted:
            await store.delete_schedule(tx.conn, gone.id)
    for index, fields in enumerate(declared):
        values = _values(fields, now)
        row = mine.get(fields.name)
        if row is None:
            other = await store.find_schedule(tx.conn, namespace_id, fields.name)
            if other is not None:
                raise Conflict(
                    f"schedules[{index}].name: a schedule named '{fields.name}' exists "
                    "already in this namespace, not declared by this workflow",
                    code="schedule_exists",
                    errors=[{"path": f"schedules[{index}].name", "code": "schedule_exists"}],
                )
            made = await store.insert_schedule(
                tx.conn,
                values
                | {
                    "namespace_id": namespace_id,
                    "workflow": workflow,
                    "owner_workflow": workflow,
                    "paused": False,
                    "created_at": now,
                },
            )
            await store.update_schedule(tx.conn, made.id, _timing(fields.spec(), made.id, now))
            continue
        old = {k: _as_body(row).get(k) for k in _DECLARED}
        new = {k: fields.model_dump(mode="json").get(k) for k in _DECLARED}
        if old == new and row.spec == fields.spec().as_data():
            continue
        if row.spec != fields.spec().as_data():
            values |= _timing(fields.spec(), row.id, max(now, row.last_fire_at or 0.0))
            if row.paused:
                values["due_at"] = None
        await store.update_schedule(tx.conn, row.id, values)
    tx.wake(SCHEDULES_TOPIC)
