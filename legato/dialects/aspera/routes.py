"""Aspera Orchestrator's API, answered from Legato: ``/aspera/orchestrator/api/``.

Work order = run, work step = top-level step of the run, inputs / carry-thrus / outputs = the
run's inputs, carried values (``vars``) and the step's outputs, each with its integer value id.
Authentication: ``login`` + ``password`` parameters or HTTP Basic (a Legato user), or an
``api_key`` parameter (a Legato API key). The format comes from the extension, ``format=`` or
``Accept``; XML is the default. Errors use this API's codes and body (see :func:`failure`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from legato.dialects.aspera.call import (
    MAX_BODY,
    STATE_WORDS,
    AsperaError,
    Call,
    Handler,
    asked_format,
    failure,
    format_of,
    split_format,
)
from legato.dialects.aspera.catalog import (
    export_workflow,
    monitor_snapshot,
    ping,
    plugin_version,
    processes_status,
    workflow_details,
    workflow_inputs_spec,
    workflow_outputs_spec,
    workflows_list,
    workflows_status,
)
from legato.dialects.aspera.orders import (
    initiate,
    work_order_cancel,
    work_order_reset,
    work_order_status,
    work_orders_list,
    workstep_reset,
)
from legato.dialects.aspera.steps import (
    work_order,
    work_order_output,
    work_step_cancel,
    work_step_status,
)
from legato.http.credentials import (
    Credentials,
    client_address,
    from_authorization,
    principal_of,
)
from legato.model.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LegatoError,
    NotFound,
    QueueLimit,
    TooManyAttempts,
    Unauthorized,
)
from legato.model.ids import parse_id
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["PREFIX", "STATE_WORDS", "router"]

PREFIX = "/aspera/orchestrator/api"

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length is not None and parse_id(length, high=MAX_BODY) is None:
            raise AsperaError(413, f"request body larger than {MAX_BODY} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise AsperaError(413, f"request body larger than {MAX_BODY} bytes")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and kind == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            try:
                pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
            except (UnicodeDecodeError, ValueError):
                raise AsperaError(400, "malformed form body") from None
            for key, value in pairs:
                params.setdefault(key, value)
    return params


async def _principal(request: Request, app: Services, params: dict[str, str]) -> Principal:
    """``api_key``, else ``login`` and ``password`` (query or form), else the headers."""
    if params.get("api_key"):
        credentials = Credentials(api_key=params["api_key"])
    elif "login" in params or "password" in params:
        credentials = Credentials(
            username=params.get("login", ""),
            password=params.get("password", ""),
            address=client_address(request),
        )
    else:
        credentials = from_authorization(request)
    if credentials.empty:
        raise AsperaError(401, "Access Denied: no credentials (login and password, or api_key)")
    return await principal_of(credentials, app.tenancy)


async def _answer(request: Request, call: str, target: str | None) -> Response:
    name, ext = split_format(call)
    stem = None
    if target is not None:
        stem, ext = split_format(target)
    params: dict[str, str] = dict(request.query_params)
    asked = asked_format(request, ext, params)
    fmt = asked or "xml"
    try:
        if name == "remote_node_ping":  # the ping clients send before they have credentials
            return ping(fmt, stem)
        handler = _handler(name, stem)
        params = await _params(request)
        app: Services = request.app.state.legato
        principal = await _principal(request, app, params)
        return await handler(Call(app, principal, params, fmt, stem, asked is not None))
    except AsperaError as exc:
        return failure(fmt, exc.status, exc.message, exc.missing)
    except LegatoError as exc:
        status, prefix = _status_of(exc)
        response = failure(fmt, status, prefix + exc.detail)
        retry_after = getattr(exc, "retry_after", None)  # logins throttled, store away
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response


#: Legato's errors in this API's codes; its 401 and 403 are the other way round from HTTP's.
ERRORS: tuple[tuple[type[LegatoError], int, str], ...] = (
    (Unauthorized, 403, "Authentication failure: "),
    (Forbidden, 401, "Access Denied: "),
    (NotFound, 404, ""),
    (Conflict, 409, ""),
    (QueueLimit, 429, ""),
    (TooManyAttempts, 429, "Authentication failure: "),  # logins throttled, as a queue limit
    (InvalidInput, 400, ""),
)


def _status_of(exc: LegatoError) -> tuple[int, str]:
    for kind, status, prefix in ERRORS:
        if isinstance(exc, kind):
            return status, prefix
    return exc.status, ""


def _handler(name: str, stem: str | None) -> Handler:
    handler = CALLS.get(name)
    if handler is None:
        raise AsperaError(404, f"Method not found: {name}")
    return handler


@router.api_route("/{call}", methods=["GET", "POST"])
async def call_without_target(request: Request, call: str) -> Response:
    return await _answer(request, call, None)


@router.api_route("/{call}/{target}", methods=["GET", "POST"])
async def call_with_target(request: Request, call: str, target: str) -> Response:
    return await _answer(request, call, target)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unknown_call(request: Request, rest: str) -> Response:
    params = dict(request.query_params)
    _, ext = split_format(rest.rsplit("/", 1)[-1])
    return failure(format_of(request, ext, params), 404, f"Method not found: {rest}")


CALLS: dict[str, Handler] = {
    "work_step_status": work_step_status,
    "work_order": work_order,
    "work_order_output": work_order_output,
    "work_order_status": work_order_status,
    "work_order_cancel": work_order_cancel,
    "initiate": initiate,
    "workflows_list": workflows_list,
    "work_orders_list": work_orders_list,
    "work_step_cancel": work_step_cancel,
    "workflow_details": workflow_details,
    "work_order_reset": work_order_reset,
    "workstep_reset": workstep_reset,
    "workflows_status": workflows_status,
    "workflow_inputs_spec": workflow_inputs_spec,
    "workflow_outputs_spec": workflow_outputs_spec,
    "export_workflow": export_workflow,
    "plugin_version": plugin_version,
    "processes_status": processes_status,
    "monitor_snapshot": monitor_snapshot,
}
