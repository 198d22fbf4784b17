"""The datasourcesvc (Twinit Data Sources Service) orchestrator-run API, mounted at
``/datasourcesvc/api/v1/``: list, read, log, create, cancel and delete orch runs.

Every call names its namespace in ``nsfilter`` (400 without it); a namespace the caller may
not see is not found. Errors are ``{"statusCode", "error", "message"}`` documents."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from legato.dialects.datasourcesvc.render import (
    CREATEDBY_LABEL,
    STATE_WORDS,
    log_text,
    record_from_read,
    record_from_view,
    run_shape,
)
from legato.http.auth import bearer_token
from legato.http.credentials import Credentials, principal_of
from legato.http.responses import JSONResponse
from legato.model.errors import LegatoError, NotFound, QueueLimit
from legato.model.filters import RunFilter
from legato.model.ids import parse_id
from legato.model.starts import StartRun
from legato.model.states import RUN_TERMINAL
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["DEFAULT_MAX_QUEUED", "STATE_WORDS", "router"]

router = APIRouter(prefix="/datasourcesvc/api/v1", tags=["datasourcesvc"])

#: Queued runs a namespace may hold when it sets no ``max_queued_runs`` of its own.
DEFAULT_MAX_QUEUED = 20
MAX_PAGE_SIZE = 500
MAX_BODY = 1024 * 1024
DELETE_WAIT_SECONDS = 30.0
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
}
#: ``_status`` filter words -> Legato run statuses (Legato's own words are accepted too).
_FILTER_WORDS: dict[str, list[str]] = {}
for _legato, _word in STATE_WORDS.items():
    _FILTER_WORDS.setdefault(_word, []).append(_legato)
    _FILTER_WORDS.setdefault(_legato, [_legato])


class _Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    body = {"statusCode": status, "error": _REASONS.get(status, "Error"), "message": message}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(exc: LegatoError) -> int:
    if isinstance(exc, QueueLimit) or exc.status in (409, 422, 429):
        return 400  # the service answers every refusal of a request with 400
    return exc.status


async def _answer(request: Request, work: Any) -> Response:
    """Runs ``work(app, principal)`` and renders every failure this API's way."""
    try:
        nsfilter = request.query_params.get("nsfilter", "").strip()
        app: Services = request.app.state.legato
        caller = await principal_of(Credentials(api_key=bearer_token(request)), app.tenancy)
        if not nsfilter:
            raise _Fail(400, "nsfilter is required: the namespace of the orch runs")
        # Legato's namespace names are lowercase; answers spell the project as it was asked
        principal = await app.datasourcesvc_support.scope(caller, nsfilter.lower())
        if principal.namespace != nsfilter:
            principal = replace(principal, namespace=nsfilter)
        result: Response = await work(app, principal)
        return result
    except _Fail as exc:
        return _error(exc.status, exc.message)
    except LegatoError as exc:
        return _error(_status_of(exc), exc.detail)


def _ref(run_id: str) -> int | str:
    number = parse_id(run_id)
    if number is not None:
        return number
    return "-" if run_id.isdigit() else run_id


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = parse_id(raw)
    if value is None:
        raise _Fail(400, f"{name} must be a number")
    if not low <= value <= high:
        raise _Fail(400, f"{name} must be between {low} and {high}")
    return value


def _date_param(request: Request, name: str, *, end: bool) -> float | None:
    """Epoch milliseconds, or an ISO 8601 date or date-time; an end date includes its day."""
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    millis = parse_id(raw, high=10**15 - 1)
    if millis is not None:
        return millis / 1000 + (0.001 if end else 0.0)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _Fail(400, f"{name} must be a date (YYYY-MM-DD), a date-time or epoch ms") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end:
        moment += timedelta(days=1) if len(raw) == 10 else timedelta(milliseconds=1)
    return moment.timestamp()


def _statuses(request: Request) -> list[str]:
    raw = request.query_params.get("_status") or ""
    out: list[str] = []
    for word in (w.strip().upper() for w in raw.split(",") if w.strip()):
        if word not in _FILTER_WORDS:
            known = ", ".join(sorted(set(STATE_WORDS.values())))
            raise _Fail(400, f"unknown _status '{word}' (one of {known})")
        out.extend(s for s in _FILTER_WORDS[word] if s not in out)
    return out


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _Fail(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        body = orjson.loads(raw or b"null")  # strict: no lone surrogates, bounded depth
    except (ValueError, UnicodeDecodeError):
        raise _Fail(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _Fail(400, "the body must be a JSON object")
    return body


def _creator(p: Principal) -> str:
    if p.subject:
        return p.subject
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"legato:key:{p.key_id}"))


def _inputs(body: dict[str, Any]) -> dict[str, Any]:
    """The run's inputs: the ``params`` of every ``_actualparams`` entry, merged."""
    params = body.get("_actualparams", body.get("_actualParams", []))
    if params is None:
        params = []
    if not isinstance(params, list):
        raise _Fail(400, "_actualparams must be an array of {sequence_type_id, params}")
    inputs: dict[str, Any] = {}
    for index, item in enumerate(params):
        if not isinstance(item, dict):
            raise _Fail(400, f"_actualparams[{index}] must be an object")
        given = item.get("params") or {}
        if not isinstance(given, dict):
            raise _Fail(400, f"_actualparams[{index}].params must be an object")
        inputs.update(given)
    return inputs


@router.get("/orchrun")
async def list_orch_runs(request: Request) -> Response:
    async def work(app: Services, p: Principal) -> Response:
        size = _int_param(request, "_pageSize", 20, 1, MAX_PAGE_SIZE)
        offset = _int_param(request, "_offset", 0, 0, 2**31 - 1)
        flt = RunFilter(
            namespace_id=p.namespace_id,
            statuses=_statuses(request),
            created_after=_date_param(request, "startDate", end=False),
            created_before=_date_param(request, "endDate", end=True),
            top_level_only=True,
        )
        total, runs = await app.datasourcesvc_support.page(p, flt, limit=size, offset=offset)
        return JSONResponse(
            {
                "_offset": offset,
                "_pageSize": size,
                "_total": total,
                "_list": [run_shape(r) for r in runs],
            }
        )

    return await _answer(request, work)


@router.post("/orchrun")
async def create_orch_run(request: Request) -> Response:
    async def work(app: Services, p: Principal) -> Response:
        body = await _json_body(request)
        orch = body.get("orchestratorId")
        if not isinstance(orch, str) or not orch.strip():
            raise _Fail(400, "orchestratorId is required")
        inputs = _inputs(body)
        support = app.datasourcesvc_support
        found = await support.workflow_by_uuid(p, orch)
        if found is None:
            try:
                workflow = await app.workflows.get(p, orch)  # also by name
            except NotFound:
                raise _Fail(404, f"orchestrator '{orch}' does not exist") from None
            found = (workflow["name"], workflow["version"])
        queued, own_limit = await support.queue(p)
        limit = own_limit if own_limit is not None else DEFAULT_MAX_QUEUED
        if queued >= limit:
            raise _Fail(
                400,
                f"A maximum of {limit} orch runs can be queued in project '{p.namespace}': "
                f"{queued} are queued already; try again once some have started",
            )
        view, _new = await app.runs.start(
            p,
            StartRun(
                workflow=found[0],
                version=found[1],
                inputs=inputs,
                labels={CREATEDBY_LABEL: _creator(p)},
            ),
        )
        workflow = await app.workflows.get(p, view["workflow"], view["workflow_version"])
        return JSONResponse(run_shape(record_from_view(view, workflow), "created"))

    return await _answer(request, work)


@router.get("/orchrun/logs/{run_id}")
async def orch_run_logs(request: Request, run_id: str) -> Response:
    async def work(app: Services, p: Principal) -> Response:
        run, lines = await app.datasourcesvc_support.logs(p, _ref(run_id))
        return JSONResponse(log_text(run, lines, node="legato"))

    return await _answer(request, work)


@router.get("/orchrun/{run_id}")
async def get_orch_run(request: Request, run_id: str) -> Response:
    async def work(app: Services, p: Principal) -> Response:
        head = await app.status.head(p, _ref(run_id))

        async def build() -> bytes:
            read = await app.status.run_at(head)
            args = await app.status.step_args_of(head)
            run = read.run
            workflow = await app.workflows.get(p, run.workflow_name, run.workflow_version)
            shape = run_shape(record_from_read(read, args, workflow, p.namespace))
            return bytes(JSONResponse([shape]).body)

        # kept with the run's version, as the native reads keep their bodies
        body = await app.status.kept(head, ("datasourcesvc", "orchrun", p.namespace), build)
        return Response(body, media_type=JSONResponse.media_type)

    return await _answer(request, work)


@router.put("/orchrun/{run_id}")
async def cancel_orch_run(request: Request, run_id: str) -> Response:
    async def work(app: Services, p: Principal) -> Response:
        body = await _json_body(request)
        given = body.get("id")
        if given is not None and str(given) != run_id:
            raise _Fail(400, f"the body's id '{given}' does not match the path's '{run_id}'")
        ref = _ref(run_id)
        await app.datasourcesvc_support.run(p, ref)  # 404 first
        await app.runs.cancel(p, ref)
        return JSONResponse([run_shape(await app.datasourcesvc_support.run(p, ref), "cancel")])

    return await _answer(request, work)


@router.delete("/orchrun/{run_id}")
async def delete_orch_run(request: Request, run_id: str) -> Response:
    async def work(app: Services, p: Principal) -> Response:
        ref = _ref(run_id)
        run = await app.datasourcesvc_support.run(p, ref)
        if run["status"] not in RUN_TERMINAL:
            if run["status"] != "CANCELING":
                await app.runs.cancel(p, ref)
            deadline = time.monotonic() + DELETE_WAIT_SECONDS
            while (await app.runs.get(p, ref))["status"] not in RUN_TERMINAL:
                if time.monotonic() > deadline:
                    raise _Fail(409, f"orch run {run_id} is still stopping; try again shortly")
                await app.runs.wait_for_change(run["id"], 0.2)
        await app.runs.delete(p, ref)
        return Response(status_code=204)

    return await _answer(request, work)
