"""``/api/v1/runs``: start, list, read, logs, events, cancel, retry, signal, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from starlette.responses import Response

from legato.api.deps import Caller, DbId, ServicesDep, parse_run_ref
from legato.api.status import (
    AS_XML,
    AS_XML_OR_TEXT,
    Status,
    events_resource,
    log_events,
    run_resource,
    step_resource,
    steps_resource,
)
from legato.http.responses import JSONResponse, NDJSONStream, render_json
from legato.http.strict_json import StrictJSONRoute
from legato.model.errors import InvalidInput
from legato.model.filters import RunFilter
from legato.model.ids import parse_id
from legato.model.schedules import parse_instant
from legato.model.starts import StartRun
from legato.model.states import RunStatus
from legato.service.principal import Principal
from legato.service.services import Services

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], route_class=StrictJSONRoute)


class StartRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(min_length=1, max_length=100)
    version: int | None = Field(None, ge=1, le=2**31 - 1, strict=True)
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[
        Annotated[str, Field(min_length=1, max_length=200)], Annotated[str, Field(max_length=200)]
    ] = Field(default_factory=dict, max_length=50)
    priority: int = Field(0, ge=-1000, le=1000, strict=True)
    external_id: str | None = Field(None, min_length=1, max_length=200)
    notify_url: AnyHttpUrl | None = None
    operation_type: str | None = Field(None, max_length=200)
    requestor: str | None = Field(None, max_length=200)
    start_at: str | int | float | None = Field(
        None,
        description="Start later: an ISO 8601 time (UTC unless it names its offset) or epoch "
        "seconds. Until then the run is QUEUED, waiting_reason {reason: scheduled, until}.",
    )


@router.post("", status_code=201)
async def start_run(
    body: StartRunBody,
    caller: Caller,
    services: ServicesDep,
    idempotency_key: str | None = Header(
        None, description="Starts at most one run per key: 1 to 200 characters (else 400)."
    ),
) -> JSONResponse:
    view, created = await services.runs.start(
        caller,
        StartRun(
            workflow=body.workflow,
            version=body.version,
            inputs=body.inputs,
            labels=body.labels,
            priority=body.priority,
            external_id=body.external_id,
            notify_url=str(body.notify_url) if body.notify_url else None,
            operation_type=body.operation_type,
            requestor=body.requestor,
            idempotency_key=idempotency_key,
            start_at=_start_at(body.start_at),
        ),
    )
    return JSONResponse(
        view,
        status_code=201 if created else 200,
        headers={"Location": f"/api/v1/runs/{view['id']}"},
    )


def _start_at(value: str | float | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidInput(
            f"start_at: {exc}",
            errors=[{"path": "start_at", "code": "invalid", "message": str(exc)}],
        ) from None


def _labels(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(
                f"label filter {item!r} must look like key=value",
                errors=[{"path": "label", "message": "expected key=value"}],
            )
        out[key] = value
    return out


_TIME = "An ISO 8601 date or date-time (UTC unless it names its offset), or epoch seconds."


def _moment(name: str, text: str | None) -> float | None:
    """Epoch seconds of a time as ``_TIME`` describes it; None when not given."""
    if text is None:
        return None
    seconds = parse_id(text)
    if seconds is not None:
        return float(seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 time or whole epoch seconds, not {text!r}",
            errors=[{"path": name, "message": "expected an ISO 8601 time or epoch seconds"}],
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@router.get("", response_class=JSONResponse)
async def list_runs(
    caller: Caller,
    services: ServicesDep,
    status: Annotated[list[str], Query()] = [],  # noqa: B006
    workflow: str | None = None,
    requestor: Annotated[str | None, Query(max_length=200)] = None,
    label: Annotated[list[str], Query()] = [],  # noqa: B006
    created_after: Annotated[str | None, Query(description=_TIME)] = None,
    created_before: Annotated[str | None, Query(description=_TIME)] = None,
    parent: DbId | None = None,
    schedule: DbId | None = Query(None, description="runs this schedule (id) started"),
    fire_time: Annotated[str | None, Query(description="with schedule: " + _TIME)] = None,
    page_size: int | None = Query(None, ge=1, le=500),
    page_token: str | None = None,
) -> Response:
    flt = run_filter(
        caller.namespace_id,
        status,
        workflow=workflow,
        requestor=requestor,
        label=label,
        created_after=created_after,
        created_before=created_before,
        parent=parent,
        schedule=schedule,
        fire_time=fire_time,
    )
    return await list_response(services, caller, flt, page_size, page_token)


def run_filter(
    namespace_id: int,
    status: list[str],
    *,
    workflow: str | None = None,
    requestor: str | None = None,
    label: list[str] | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    parent: int | None = None,
    schedule: int | None = None,
    fire_time: str | None = None,
) -> RunFilter:
    """The filter of ``GET /api/v1/runs`` from its (validated) query parameters."""
    statuses = [s.strip().upper() for item in status for s in item.split(",") if s.strip()]
    for s in statuses:
        if s not in RunStatus.__members__:
            raise InvalidInput(
                f"unknown status {s!r}",
                errors=[
                    {"path": "status", "message": f"one of {', '.join(RunStatus.__members__)}"}
                ],
            )
    return RunFilter(
        namespace_id=namespace_id,
        statuses=statuses,
        workflow=workflow,
        requestor=requestor,
        labels=_labels(label or []),
        parent_run_id=parent,
        created_after=_moment("created_after", created_after),
        created_before=_moment("created_before", created_before),
        schedule_id=schedule,
        fire_time=_moment("fire_time", fire_time),
    )


async def list_response(
    services: Services,
    caller: Principal,
    flt: RunFilter,
    page_size: int | None,
    page_token: str | None,
) -> Response:
    """The page, as a JSON answer."""
    body = await services.runs.list_page(caller, flt, page_size, page_token, render_json)
    return Response(body, media_type=JSONResponse.media_type)


@router.get("/{run_id}", responses=AS_XML_OR_TEXT)
async def get_run(run_id: str, status: Status) -> Response:
    """The run (also ``.xml``, and ``.txt`` for its status word); ETag, ``wait`` long-poll."""
    return await run_resource(status, run_id)


@router.get("/{run_id}/steps", responses=AS_XML)
async def list_steps(run_id: str, status: Status, parent: DbId | None = None) -> Response:
    return await steps_resource(status, run_id, parent)


@router.get("/{run_id}/steps/{step}", responses=AS_XML_OR_TEXT)
async def get_step(run_id: str, step: str, status: Status) -> Response:
    return await step_resource(status, run_id, step)


@router.get(
    "/{run_id}/logs",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def run_logs(
    run_id: str,
    caller: Caller,
    services: ServicesDep,
    step: str | None = None,
    after: DbId = 0,
    follow: bool = False,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """NDJSON lines; with ``follow=true`` and ``Accept: text/event-stream``, Server-Sent
    Events (``event: log``, ``id`` the line's seq, ``Last-Event-ID`` honoured; a last
    ``event: end`` once the run has finished)."""
    ref = parse_run_ref(run_id)
    if follow:
        await services.runs.get(caller, ref)  # 404 before the stream starts
        if "text/event-stream" in (accept or ""):
            seen = parse_id((last_event_id or "").strip())
            if seen is not None:
                after = max(after, seen)
            return log_events(services.runs.follow_logs(caller, ref, after=after, step=step))
        return NDJSONStream(services.runs.follow_logs(caller, ref, after=after, step=step))
    lines = await services.runs.logs(caller, ref, after=after, step=step)

    async def gen() -> Any:
        for line in lines:
            yield line

    return NDJSONStream(gen())


@router.get("/{run_id}/events", responses=AS_XML)
async def run_events(run_id: str, status: Status) -> Response:
    return await events_resource(status, run_id)


@router.post("/{run_id}/cancel")
async def cancel_run(run_id: str, caller: Caller, services: ServicesDep) -> JSONResponse:
    return JSONResponse(await services.runs.cancel(caller, parse_run_ref(run_id)))


@router.post("/{run_id}/retry")
async def retry_run(run_id: str, caller: Caller, services: ServicesDep) -> JSONResponse:
    return JSONResponse(await services.runs.retry(caller, parse_run_ref(run_id)))


@router.post("/{run_id}/steps/{step_key}/signal")
async def signal_step(
    run_id: str,
    step_key: str,
    caller: Caller,
    services: ServicesDep,
    payload: dict[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        await services.runs.signal(caller, parse_run_ref(run_id), step_key, payload or {})
    )


@router.delete("/{run_id}", status_code=204)
async def delete_run(run_id: str, caller: Caller, services: ServicesDep) -> Response:
    await services.runs.delete(caller, parse_run_ref(run_id))
    return Response(status_code=204)


@router.get("/{run_id}/steps/{step}/progress")
async def step_progress(
    run_id: str, step: str, caller: Caller, services: ServicesDep
) -> JSONResponse:
    """Every progress point the step reported, with its rate (fraction per second)."""
    return JSONResponse(await services.runs.progress_history(caller, parse_run_ref(run_id), step))
