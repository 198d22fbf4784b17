"""Status resources of runs in JSON, XML or text, with ETags, long-polls and Server-Sent Events:
a run, its steps, values, events, errors and affected resources; a value by id; many runs at
once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from legato.api.deps import Caller, ServicesDep, parse_run_ref
from legato.http.negotiation import FORMATS, MEDIA_TYPES, negotiate, render
from legato.http.strict_json import StrictJSONRoute
from legato.http.watch import SSE, SSEvent, etag, etag_matches, parse_etags, parse_wait
from legato.model.ids import MAX_ID, parse_id
from legato.model.reads import RunHead
from legato.service.principal import Principal
from legato.service.services import Services
from legato.service.status import MAX_BATCH, Resource, Snapshot

__all__ = ["AS_XML", "AS_XML_OR_TEXT", "SUFFIXED", "Status", "StatusQuery", "router"]

router = APIRouter(prefix="/api/v1", tags=["status"], route_class=StrictJSONRoute)

#: The paths (without suffix) that also answer with a ``.json``, ``.xml`` or ``.txt`` suffix.
SUFFIXED = (
    r"/api/v1/runs/[^/]+",
    r"/api/v1/runs/[^/]+/(steps|values|events|errors|resources)",
    r"/api/v1/runs/[^/]+/steps/[^/]+",
    r"/api/v1/runs/[^/]+/steps/[^/]+/outputs/[^/]+",
    r"/api/v1/values/[^/]+",
    r"/api/v1/runs:batchGet",
)

_WAIT_DOC = (
    "Long-poll: when the resource is unchanged (its ETag equals If-None-Match, or without it, "
    "the one it has now), wait up to this long (30s, 500ms; at most 60 s) for the run to change."
)

#: Loads a snapshot; its argument is the wake-up (if any) whose read it may share.
Loader = Callable[[float | None], Awaitable[Snapshot]]

_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag still matches If-None-Match"}
}
#: OpenAPI: what a status resource answers besides JSON.
AS_XML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "application/xml": {}}},
    **_NOT_MODIFIED,
}
AS_XML_OR_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "application/xml": {}, "text/plain": {}}},
    **_NOT_MODIFIED,
}


def _status_word(body: Any) -> str:
    return str(body["status"])


def _raw_value(body: Any) -> str:
    value = body["value"]
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class StatusQuery:
    """What a status resource takes from the request: who asks, the validators it holds, how
    long it may wait; and how to answer."""

    def __init__(
        self,
        request: Request,
        caller: Principal,
        services: Services,
        wait: float,
        tags: list[str],
    ) -> None:
        self.request = request
        self.caller = caller
        self.services = services
        self.wait = wait
        self.tags = tags

    async def answer(
        self, load: Loader | RunLoad, root: str, text: Callable[[Any], str] | None = None
    ) -> Response:
        """The snapshot ``load`` gives, in the negotiated format, with its ETag; 304 while
        it matches ``If-None-Match`` (without building the body); after waiting for a change
        when ``wait`` was given."""
        fmt = negotiate(self.request, FORMATS if text else FORMATS[:2])
        baseline = list(self.tags)

        def unchanged(snap: Snapshot) -> bool:
            tag = etag(snap.run_id, snap.change_seq, fmt)
            if not baseline:  # no validator sent: the state at request time
                baseline.extend(parse_etags(tag))
            return etag_matches(baseline, tag)

        def encode(body: Any) -> bytes:
            inner = body[root] if isinstance(body, dict) and list(body) == [root] else body
            words = text(body) if text and fmt == "txt" else None
            return render(inner if fmt == "xml" else body, fmt, root, words)

        status = self.services.status
        if isinstance(load, RunLoad):
            resource = load.resource

            async def prepare(head: RunHead) -> bytes:
                return await status.rendered(resource(head), fmt, encode)

            snap = await status.poll_run(
                self.caller,
                load.ref,
                resource,
                unchanged,
                self.wait,
                prepare=((load.key, root, fmt), prepare),
            )
        else:
            snap = await status.poll(load, unchanged, self.wait)
        tag = etag(snap.run_id, snap.change_seq, fmt)
        headers = {"ETag": tag, "Vary": "Accept", "Cache-Control": "no-cache"}
        if self.tags and etag_matches(self.tags, tag):
            return Response(status_code=304, headers=headers)
        content = await status.rendered(snap, fmt, encode)
        return Response(content, media_type=MEDIA_TYPES[fmt], headers=headers)

    def load(self, ref: int | str, resource: Resource, key: Hashable) -> RunLoad:
        """A resource of a run (``key`` names it among the run's resources)."""
        return RunLoad(ref, resource, key)


@dataclass(frozen=True)
class RunLoad:
    """A resource of a run, to load and wait for as one (see ``StatusService.poll_run``)."""

    ref: int | str
    resource: Resource
    key: Hashable


async def status_query(
    request: Request,
    caller: Caller,
    services: ServicesDep,
    wait: Annotated[str | None, Query(description=_WAIT_DOC)] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> StatusQuery:
    # an async function: FastAPI would run a class's __init__ on a thread, a hop per request
    return StatusQuery(request, caller, services, parse_wait(wait), parse_etags(if_none_match))


Status = Annotated[StatusQuery, Depends(status_query)]


# -- resources whose routes live with the rest of /runs -----------------------------------


async def run_resource(status: StatusQuery, run_id: str) -> Response:
    """``GET /runs/{id}``: the run; ``.txt``: its status word."""
    resource = status.services.status.run(status.caller)
    return await status.answer(
        status.load(parse_run_ref(run_id), resource, "run"), "run", _status_word
    )


async def steps_resource(status: StatusQuery, run_id: str, parent: int | None) -> Response:
    resource = status.services.status.steps(status.caller, parent)
    return await status.answer(
        status.load(parse_run_ref(run_id), resource, ("steps", parent)), "steps"
    )


async def step_resource(status: StatusQuery, run_id: str, step: str) -> Response:
    """One step; ``.txt``: its status word."""
    resource = status.services.status.step(status.caller, step)
    return await status.answer(
        status.load(parse_run_ref(run_id), resource, ("step", step)), "step", _status_word
    )


async def events_resource(status: StatusQuery, run_id: str) -> Response:
    resource = status.services.status.events(status.caller)
    return await status.answer(status.load(parse_run_ref(run_id), resource, "events"), "events")


# -- values, errors, resources ------------------------------------------------------------


@router.get("/runs/{run_id}/values", response_class=Response, responses=AS_XML)
async def run_values(run_id: str, status: Status) -> Response:
    """Inputs, carried values (``var``), step outputs and run outputs, each with its id."""
    resource = status.services.status.values(status.caller)
    return await status.answer(status.load(parse_run_ref(run_id), resource, "values"), "values")


@router.get("/values/{value_id}", response_class=Response, responses=AS_XML_OR_TEXT)
async def get_value(value_id: str, status: Status) -> Response:
    """One value; ``.txt`` (or ``Accept: text/plain``): the raw value, strings as they are,
    anything else as JSON."""
    number = parse_id(value_id) or 0
    return await status.answer(
        lambda _since: status.services.status.value(status.caller, number), "value", _raw_value
    )


@router.get(
    "/runs/{run_id}/steps/{step_key}/outputs/{name}",
    response_class=Response,
    responses=AS_XML_OR_TEXT,
)
async def get_output(run_id: str, step_key: str, name: str, status: Status) -> Response:
    """The output ``name`` of a step, as a value (same formats as ``/values/{id}``)."""
    resource = status.services.status.output(status.caller, step_key, name)
    return await status.answer(
        status.load(parse_run_ref(run_id), resource, ("output", step_key, name)),
        "value",
        _raw_value,
    )


@router.get("/runs/{run_id}/errors", response_class=Response, responses=AS_XML)
async def run_errors(run_id: str, status: Status) -> Response:
    resource = status.services.status.errors(status.caller)
    return await status.answer(status.load(parse_run_ref(run_id), resource, "errors"), "errors")


@router.get("/runs/{run_id}/resources", response_class=Response, responses=AS_XML)
async def run_resources(run_id: str, status: Status) -> Response:
    resource = status.services.status.resources(status.caller)
    return await status.answer(
        status.load(parse_run_ref(run_id), resource, "resources"), "resources"
    )


# -- watch ---------------------------------------------------------------------------------


@router.get(
    "/runs/{run_id}/watch",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}}, 204: {"description": "seen"}},
)
async def watch_run(
    run_id: str,
    caller: Caller,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Server-Sent Events: ``event: run`` with the run (as ``GET /runs/{id}``) now and after
    each change, ``id`` its change counter; ends after the run has finished. With
    ``Last-Event-ID`` only newer changes are sent; 204 when the run has finished and the
    client has seen that already."""
    ref = parse_run_ref(run_id)
    seen = (last_event_id or "").strip()
    after = parse_id(seen)

    head = await services.status.head(caller, ref)  # 404 before the stream starts
    if head.finished and after is not None and after >= head.version:
        return Response(status_code=204)
    resource = services.status.run(caller)

    async def prepare(head: RunHead) -> bytes:
        return await services.status.rendered(resource(head), "sse", orjson.dumps)

    async def events() -> AsyncIterator[SSEvent]:
        async for snap in services.status.watch(
            caller, head.id, resource, after_seq=after, prepare=(("run", "sse"), prepare)
        ):
            data = await services.status.rendered(snap, "sse", orjson.dumps)
            yield SSEvent("run", orjson.Fragment(data), snap.change_seq)

    return SSE(events())


# -- batch get -------------------------------------------------------------------------------


class BatchGetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[
        Annotated[int, Field(ge=0, le=MAX_ID, strict=True)] | Annotated[str, Field(max_length=100)]
    ] = Field(max_length=MAX_BATCH)


async def _batch(
    request: Request, caller: Principal, services: Services, ids: list[int | str]
) -> Response:
    fmt = negotiate(request, FORMATS[:2])
    answer = await services.status.batch_get(caller, ids)
    return Response(render(answer, fmt, "batch"), media_type=MEDIA_TYPES[fmt])


@router.get("/runs:batchGet", response_class=Response, responses=AS_XML)
async def batch_get(
    request: Request,
    caller: Caller,
    services: ServicesDep,
    ids: Annotated[list[str], Query(description="integer ids or UUIDs, comma-separated")],
) -> Response:
    """Many runs by id or UUID: ``{"runs": [...], "not_found": [...]}`` in the asked order."""
    refs: list[int | str] = [p.strip() for item in ids for p in item.split(",") if p.strip()]
    return await _batch(request, caller, services, refs)


@router.post("/runs/batch-get", response_class=Response, responses=AS_XML)
async def batch_get_post(
    body: BatchGetBody, request: Request, caller: Caller, services: ServicesDep
) -> Response:
    """``{"ids": [...]}``: the same as ``GET /runs:batchGet``."""
    return await _batch(request, caller, services, body.ids)


def log_events(lines: AsyncIterator[dict[str, Any]]) -> Response:
    """Followed log lines as Server-Sent Events, closed by ``event: end``."""

    async def events() -> AsyncIterator[SSEvent]:
        async for line in lines:
            yield SSEvent("log", line, line["seq"])
        yield SSEvent("end", {})

    return SSE(events())
