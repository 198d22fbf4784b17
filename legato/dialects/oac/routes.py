"""Oracle Analytics Cloud work requests, mounted at ``/api/20210901/``.

A work request is a run; its id is the run's UUID (the integer run id is accepted too).
``GET workRequests/{id}`` answers the vendor's ``WorkRequest`` item; Legato adds, after the OCI
control-plane convention, a list (``limit``/``page``, ``opc-next-page``), the errors and logs
of a work request, cancelling by ``DELETE``, and starting a workflow with
``POST workflows/{name}/actions/run`` (202, id in ``oa-work-request-id``). Every error is a
``{"code", "message"}`` body with the OCI error code of its status.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from legato.http.auth import principal
from legato.http.watch import etag, etag_matches, parse_etags
from legato.model.errors import LegatoError, NotFound, TooManyAttempts
from legato.model.filters import RunFilter
from legato.model.ids import parse_id
from legato.model.reads import RunHead
from legato.model.starts import StartRun
from legato.service.principal import Principal
from legato.service.services import Services
from legato.service.status import parse_ref
from legato.service.views import error_view

__all__ = ["STATE_WORDS", "router"]

log = logging.getLogger("legato.dialects.oac")

router = APIRouter(prefix="/api/20210901", tags=["dialect: Oracle Analytics Cloud"])

#: Legato run status -> OAC work request status.
STATE_WORDS = {
    "QUEUED": "ACCEPTED",
    "RUNNING": "IN_PROGRESS",
    "CANCELING": "CANCELING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMED_OUT": "FAILED",
    "CANCELED": "CANCELED",
}

#: HTTP status -> OCI error code.
ERROR_CODES = {
    400: "InvalidParameter",
    401: "NotAuthenticated",
    403: "NotAuthorized",
    404: "NotAuthorizedOrNotFound",
    409: "IncorrectState",
    412: "NoEtagMatch",
    413: "RequestEntityTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",  # the database cannot be reached
}

HEADER_ID = "oa-work-request-id"
DEFAULT_LIMIT = 10
MAX_LIMIT = 500
MAX_BODY = 1_000_000
MAX_LOG_LIMIT = 1000


class OacError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or ERROR_CODES[status]


Handler = Callable[[Principal, Services], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _error(status: int, code: str, message: str) -> Response:
    return _json({"code": code, "message": message}, status)


def _from_legato(exc: LegatoError) -> Response:
    status = exc.status
    if status == 422:
        status = 400
    if status not in ERROR_CODES:
        status = 400 if status < 500 else 500
    return _error(status, ERROR_CODES[status], exc.detail)


async def _serve(request: Request, handler: Handler) -> Response:
    """Authenticates, runs the handler, and answers every failure as ``{"code","message"}``
    with an ``opc-request-id`` (the client's, else a new one)."""
    failure: LegatoError | None = None
    try:
        caller = await principal(request)
        response = await handler(caller, request.app.state.legato)
    except OacError as exc:
        response = _error(exc.status, exc.code, exc.message)
    except LegatoError as exc:
        failure = exc
        response = _from_legato(exc)
    except Exception as exc:
        log.exception("unexpected error", exc_info=exc)
        response = _error(500, ERROR_CODES[500], "the server met an unexpected error")
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(failure, TooManyAttempts):  # logins throttled
        response.headers["Retry-After"] = str(failure.retry_after)
    response.headers["opc-request-id"] = request.headers.get("opc-request-id") or (
        uuid.uuid4().hex.upper()
    )
    return response


# -- rendering ------------------------------------------------------------------------------


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


async def _resource_type(
    app: Services, p: Principal, run: dict[str, Any], cache: dict[tuple[str, int], Any]
) -> str | None:
    """The ``resource_type`` the run's workflow version declares, if any."""
    key = (run["workflow"], run["workflow_version"])
    if key not in cache:
        try:
            workflow = await app.workflows.get(p, *key)
        except NotFound:
            cache[key] = None
        else:
            definition = workflow.get("definition") or {}
            cache[key] = definition.get("resource_type")
    value = cache[key]
    return value if isinstance(value, str) else None


def work_request(
    run: dict[str, Any],
    resource_type: str | None,
    resources: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The vendor's ``WorkRequest``: fields in the order its examples show; absent times,
    resources and errors are left out."""
    item: dict[str, Any] = {
        "id": run["uuid"],
        "operationType": run["operation_type"] or run["workflow"],
        "percentComplete": _number(run["progress"]["percent"]),
    }
    if resource_type is not None:
        item["resourceType"] = resource_type
    item["status"] = STATE_WORDS.get(run["status"], run["status"])
    for field, source in (
        ("timeAccepted", "created_at"),
        ("timeStarted", "started_at"),
        ("timeFinished", "finished_at"),
    ):
        if run.get(source) is not None:
            item[field] = run[source]
    if resources:
        item["resources"] = [_resource(r) for r in resources]
    if errors:
        item["errors"] = [_work_request_error(e) for e in errors]
    return item


def _resource(r: dict[str, Any]) -> dict[str, Any]:
    out = {"resourceType": r["type"], "id": r["resource_id"], "actionResult": r["action_result"]}
    if r.get("metadata"):
        out["metadata"] = {
            k: v if isinstance(v, str) else orjson.dumps(v).decode()
            for k, v in r["metadata"].items()
        }
    return out


def _work_request_error(e: dict[str, Any]) -> dict[str, Any]:
    return {"code": e["code"], "message": e["message"], "timestamp": e["time"]}


# -- reading ---------------------------------------------------------------------------------


def _ref(work_request_id: str) -> int | str:
    ref = parse_ref(work_request_id)
    if ref is None:
        raise OacError(404, f"work request {work_request_id} does not exist")
    return ref


async def _head(app: Services, p: Principal, work_request_id: str) -> RunHead:
    try:
        return await app.status.head(p, _ref(work_request_id))
    except NotFound:
        raise OacError(404, f"work request {work_request_id} does not exist") from None


async def _work_request_at(app: Services, p: Principal, head: RunHead) -> dict[str, Any]:
    """The work request as of ``head``'s version of its run."""
    run = await app.status.run(p)(head).body()
    resources = (await app.status.resources(p)(head).body())["resources"]
    errors = (await app.status.errors(p)(head).body())["errors"]
    return work_request(run, await _resource_type(app, p, run, {}), resources, errors)


async def _item(app: Services, p: Principal, work_request_id: str) -> tuple[dict[str, Any], str]:
    """The work request and its entity tag (from the run's change counter)."""
    head = await _head(app, p, work_request_id)
    try:
        body = await _work_request_at(app, p, head)
    except NotFound:  # deleted meanwhile
        raise OacError(404, f"work request {work_request_id} does not exist") from None
    return body, etag(head.id, head.version, "oac")


async def _rendered(app: Services, p: Principal, work_request_id: str) -> tuple[bytes, str, str]:
    """The work request's body in JSON, its id and its entity tag; the body is kept with
    the run's version, as the native reads keep theirs."""
    head = await _head(app, p, work_request_id)

    async def build() -> tuple[bytes, str]:
        item = await _work_request_at(app, p, head)
        return orjson.dumps(item), str(item["id"])

    try:
        body, ident = await app.status.kept(head, ("oac", "workRequest"), build)
    except NotFound:  # deleted meanwhile
        raise OacError(404, f"work request {work_request_id} does not exist") from None
    return body, ident, etag(head.id, head.version, "oac")


def _check_if_match(request: Request, tag: str) -> None:
    expected = request.headers.get("if-match")
    if expected is not None and not etag_matches(parse_etags(expected), tag):
        raise OacError(412, "the if-match value does not match the work request's current etag")


async def _get_one(request: Request, work_request_id: str) -> Response:
    async def handler(p: Principal, app: Services) -> Response:
        body, ident, tag = await _rendered(app, p, work_request_id)
        _check_if_match(request, tag)
        headers = {"etag": tag, HEADER_ID: ident}
        return Response(body, media_type="application/json", headers=headers)

    return await _serve(request, handler)


@router.get("/workRequests/{work_request_id}")
async def get_work_request(request: Request, work_request_id: str) -> Response:
    """One work request: status, percent complete, times, resources and errors."""
    return await _get_one(request, work_request_id)


def _limit(request: Request, default: int, most: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    limit = parse_id(raw, low=1, high=most)
    if limit is None:
        raise OacError(400, f"limit must be an integer from 1 to {most}, not {raw!r}")
    return limit


_STATUS_FILTER: dict[str, list[str]] = {}
for _legato, _word in STATE_WORDS.items():
    _STATUS_FILTER.setdefault(_word, []).append(_legato)


@router.get("/workRequests")
async def list_work_requests(request: Request) -> Response:
    """The namespace's work requests, newest first: ``limit`` (1-500, default 10), ``page``
    (the ``opc-next-page`` of the previous answer), ``status`` (an OAC status word). With an
    ``oa-work-request-id`` header: that one work request, as ``GET workRequests/{id}``."""
    wanted = request.headers.get(HEADER_ID)
    if wanted:
        return await _get_one(request, wanted.strip())

    async def handler(p: Principal, app: Services) -> Response:
        limit = _limit(request, DEFAULT_LIMIT, MAX_LIMIT)
        statuses: list[str] = []
        word = request.query_params.get("status")
        if word:
            if word.upper() not in _STATUS_FILTER:
                raise OacError(
                    400, f"status must be one of {', '.join(_STATUS_FILTER)}, not {word!r}"
                )
            statuses = _STATUS_FILTER[word.upper()]
        flt = RunFilter(namespace_id=p.namespace_id, statuses=statuses)
        page = await app.runs.list_runs(p, flt, limit, request.query_params.get("page") or None)
        cache: dict[tuple[str, int], Any] = {}
        items = [
            work_request(run, await _resource_type(app, p, run, cache)) for run in page["runs"]
        ]
        headers = {}
        if page["next_page_token"]:
            headers["opc-next-page"] = page["next_page_token"]
        return _json(items, headers=headers)

    return await _serve(request, handler)


@router.get("/workRequests/{work_request_id}/errors")
async def work_request_errors(request: Request, work_request_id: str) -> Response:
    """The errors of a work request: ``[{"code", "message", "timestamp"}]``."""

    async def handler(p: Principal, app: Services) -> Response:
        try:
            head = await app.status.head(p, _ref(work_request_id))
        except NotFound:
            raise OacError(404, f"work request {work_request_id} does not exist") from None
        errors = await app.status.errors_of(head)
        return _json([_work_request_error(error_view(e)) for e in errors])

    return await _serve(request, handler)


@router.get("/workRequests/{work_request_id}/logs")
async def work_request_logs(request: Request, work_request_id: str) -> Response:
    """The log of a work request: ``[{"message", "timestamp"}]``, ``limit`` lines (1-1000,
    default 1000) from ``page`` on; ``opc-next-page`` when more may follow."""

    async def handler(p: Principal, app: Services) -> Response:
        limit = _limit(request, MAX_LOG_LIMIT, MAX_LOG_LIMIT)
        page = request.query_params.get("page") or "0"
        after = parse_id(page)
        if after is None:
            raise OacError(400, f"page {page!r} is not a page this server gave")
        try:
            lines = await app.runs.logs(p, _ref(work_request_id), after=after, limit=limit)
        except NotFound:
            raise OacError(404, f"work request {work_request_id} does not exist") from None
        headers = {"opc-next-page": str(lines[-1]["seq"])} if len(lines) == limit else {}
        body = [{"message": line["message"], "timestamp": line["time"]} for line in lines]
        return _json(body, headers=headers)

    return await _serve(request, handler)


@router.delete("/workRequests/{work_request_id}")
async def cancel_work_request(request: Request, work_request_id: str) -> Response:
    """Cancels the work request: 204; 409 when it has already finished; 412 when
    ``if-match`` names another state of it."""

    async def handler(p: Principal, app: Services) -> Response:
        p.require("operator")
        if request.headers.get("if-match") is not None:
            _, tag = await _item(app, p, work_request_id)
            _check_if_match(request, tag)
        try:
            await app.runs.cancel(p, _ref(work_request_id))
        except NotFound:
            raise OacError(404, f"work request {work_request_id} does not exist") from None
        return Response(status_code=204)

    return await _serve(request, handler)


# -- starting --------------------------------------------------------------------------------


async def _start_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise OacError(413, f"the request body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OacError(
            400, f"the request body is not valid JSON: {exc}", "CannotParseRequest"
        ) from None
    if not isinstance(body, dict):
        raise OacError(400, "the request body must be a JSON object", "CannotParseRequest")
    unknown = sorted(set(body) - {"inputs", "operationType", "version", "priority"})
    if unknown:
        raise OacError(400, f"unknown field(s): {', '.join(unknown)}")
    if not isinstance(body.get("inputs", {}), dict):
        raise OacError(400, "inputs must be a JSON object")
    operation = body.get("operationType")
    if operation is not None and (not isinstance(operation, str) or not 0 < len(operation) <= 200):
        raise OacError(400, "operationType must be a string of 1 to 200 characters")
    for name, lo, hi in (("version", 1, 2**31 - 1), ("priority", -1000, 1000)):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi
        ):
            raise OacError(400, f"{name} must be an integer from {lo} to {hi}")
    return body


@router.post("/workflows/{workflow}/actions/run")
async def start_work_request(request: Request, workflow: str) -> Response:
    """Starts a run of ``workflow``: body ``{"inputs", "operationType", "version",
    "priority"}`` (all optional); ``opc-retry-token`` makes retries start it once. 202 with the
    work request id in ``oa-work-request-id``."""

    async def handler(p: Principal, app: Services) -> Response:
        body = await _start_body(request)
        token = request.headers.get("opc-retry-token")
        if token is not None and not 0 < len(token) <= 200:
            raise OacError(400, "opc-retry-token must hold 1 to 200 characters")
        run, _created = await app.runs.start(
            p,
            StartRun(
                workflow=workflow,
                version=body.get("version"),
                inputs=body.get("inputs") or {},
                priority=body.get("priority") or 0,
                operation_type=body.get("operationType"),
                idempotency_key=token,
            ),
        )
        return Response(
            status_code=202,
            headers={
                HEADER_ID: run["uuid"],
                "location": f"{router.prefix}/workRequests/{run['uuid']}",
            },
        )

    return await _serve(request, handler)


@router.api_route(
    "/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def unknown(request: Request, path: str) -> Response:
    """Anything else under the mount: 404 in this API's shape (after authentication)."""

    async def handler(_p: Principal, _app: Services) -> Response:
        raise OacError(404, f"no such operation: {request.method} {router.prefix}/{path}")

    return await _serve(request, handler)
