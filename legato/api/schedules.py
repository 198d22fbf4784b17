"""``/api/v1/schedules``: create, read, list, update, delete, pause, resume, trigger now, the
next fire times and the fires of a schedule."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from legato.api.deps import Caller, ServicesDep
from legato.http.responses import JSONResponse
from legato.http.strict_json import StrictJSONRoute
from legato.model.errors import InvalidInput
from legato.model.schedules import parse_instant

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], route_class=StrictJSONRoute)
Ref = Annotated[str, Field(min_length=1, max_length=100)]

_BODY = Body(
    openapi_examples={
        "cron": {
            "value": {
                "name": "nightly-report",
                "workflow": "report",
                "cron": "30 2 * * *",
                "timezone": "Europe/Berlin",
                "inputs": {"day": "${{ schedule.date }}"},
                "overlap": "skip",
                "catchup": "1h",
            }
        },
        "interval": {"value": {"name": "sync", "workflow": "sync", "every": "15m"}},
    },
)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap: str | None = Field(
        None, description="skip, allow, buffer_one or cancel_previous (default: the schedule's)"
    )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(
            "the body must be a JSON object",
            code="invalid_schedule",
            errors=[{"path": "", "code": "type", "message": "expected an object"}],
        )
    return body


@router.post("", status_code=201)
async def create_schedule(
    caller: Caller,
    app: ServicesDep,
    body: Annotated[dict[str, Any], _BODY],
) -> JSONResponse:
    """A schedule: ``cron`` (5 fields, 6 with seconds, or ``@hourly``…) or ``every`` (with an
    ``anchor``), a ``timezone``, ``inputs`` and ``labels`` for its runs, ``start_at`` /
    ``end_at``, ``jitter``, ``overlap`` and ``catchup`` (with ``catchup_policy``)."""
    view = await app.schedules.create(caller, _object(body))
    return JSONResponse(
        view, status_code=201, headers={"Location": f"/api/v1/schedules/{view['id']}"}
    )


@router.get("")
async def list_schedules(
    caller: Caller, app: ServicesDep, workflow: Annotated[str | None, Query(max_length=100)] = None
) -> dict[str, Any]:
    return {"schedules": await app.schedules.list_all(caller, workflow)}


@router.get("/{ref}")
async def get_schedule(
    ref: str,
    caller: Caller,
    app: ServicesDep,
    fires: Annotated[int, Query(ge=0, le=100, description="latest fires shown")] = 10,
) -> dict[str, Any]:
    """The schedule (by id or name) with its next fire times, latest fires and counts."""
    return await app.schedules.get(caller, ref, fires=fires)


@router.patch("/{ref}")
async def update_schedule(
    ref: str, caller: Caller, app: ServicesDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Change the fields given; the others keep their values."""
    return await app.schedules.update(caller, ref, _object(body))


@router.delete("/{ref}", status_code=204)
async def delete_schedule(ref: str, caller: Caller, app: ServicesDep) -> Response:
    await app.schedules.delete(caller, ref)
    return Response(status_code=204)


@router.post("/{ref}/pause")
async def pause_schedule(
    ref: str, caller: Caller, app: ServicesDep, body: Note | None = None
) -> dict[str, Any]:
    return await app.schedules.pause(caller, ref, body.note if body else None)


@router.post("/{ref}/resume")
async def resume_schedule(
    ref: str, caller: Caller, app: ServicesDep, body: Note | None = None
) -> dict[str, Any]:
    """Fire times that passed while paused are recorded as ``paused``; it goes on from now."""
    return await app.schedules.resume(caller, ref, body.note if body else None)


@router.post("/{ref}/trigger", status_code=201)
async def trigger_schedule(
    ref: str, caller: Caller, app: ServicesDep, body: Trigger | None = None
) -> JSONResponse:
    """Fire now, once (also while paused): answers the fire, with the run it started."""
    fire = await app.schedules.trigger(caller, ref, body.overlap if body else None)
    return JSONResponse(fire, status_code=201)


@router.get("/{ref}/next")
async def next_fire_times(
    ref: str, caller: Caller, app: ServicesDep, count: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    return {"next_fire_times": await app.schedules.next_times(caller, ref, count)}


@router.get("/{ref}/fires")
async def schedule_fires(
    ref: str,
    caller: Caller,
    app: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(description="fire times before this one")] = None,
) -> dict[str, Any]:
    """The fires, newest fire time first: each with its outcome (``started`` with its run,
    ``buffered``, ``skipped_overlap``, ``missed``, ``paused``, ``failed``)."""
    until = None
    if before is not None:
        try:
            until = parse_instant(before)
        except ValueError as exc:
            raise InvalidInput(
                f"before: {exc}", errors=[{"path": "before", "message": str(exc)}]
            ) from None
    return {"fires": await app.schedules.fires(caller, ref, limit, until)}
