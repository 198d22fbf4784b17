"""Oracle Managed Cloud self-service: execution status and status details, and the calls that
create, schedule and cancel an execution, under ``/selfservice/v1/``.

An execution is a run that carries the ``requestor`` it was started for; it is named by its
integer id, or by its external id (for ``CONFIG``, the change-ticket number). The caller sends a
JWT (``Authorization: Bearer``) and the GUID of the JWKS it is verified with (``Identifier``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from legato.model.errors import Forbidden, LegatoError, Unauthorized
from legato.model.ids import parse_id
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["SCOPE_APPROVER", "SCOPE_PRIVILEGED", "SCOPE_USER", "STATE_WORDS", "router"]

SCOPE_USER = "mcs:oci:api:User"
SCOPE_PRIVILEGED = "mcs:oci:api:PrivilegedUser"
SCOPE_APPROVER = "mcs:oci:api:Approver"
MAX_BODY = 64 * 1024
MAX_IDS = 100

#: Legato's states in this API's words: an execution's (run) and a sub step's (step).
STATE_WORDS: dict[str, dict[str, str]] = {
    "execution": {
        "QUEUED": "queued",
        "SCHEDULED": "scheduled",  # QUEUED, waiting for its scheduledTime
        "RUNNING": "in-progress",
        "CANCELING": "in-progress",
        "SUCCEEDED": "success",
        "FAILED": "failed",
        "TIMED_OUT": "failed",
        "CANCELED": "cancelled",
    },
    "step": {
        "PENDING": "Queued",
        "READY": "Queued",
        "RUNNING": "In Progress",
        "SUCCEEDED": "Completed",
        "FAILED": "Failed",
        "TIMED_OUT": "Failed",
        "CANCELED": "Cancelled",
        "SKIPPED": "Skipped",
    },
}
NOT_FOUND_WORD = "not found"

#: The error codes of this face, by HTTP status (OCI's convention: ``{"code", "message"}``).
_CODES = {
    400: "InvalidParameter",
    401: "NotAuthenticated",
    403: "NotAuthorized",
    404: "NotAuthorizedOrNotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",  # the database cannot be reached
}

router = APIRouter(prefix="/selfservice/v1", tags=["dialect: oracle self-service"])


class _Fault(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _answer(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _answer({"code": _CODES.get(status, "InvalidParameter"), "message": message}, status)


def _from_legato(exc: LegatoError) -> Response:
    status = 400 if exc.status == 422 else exc.status
    return _error(status, exc.detail)


def _services(request: Request) -> Services:
    return request.app.state.legato  # type: ignore[no-any-return]


async def _caller(request: Request, scope: str) -> Principal:
    """The JWT's principal; 401 without a valid token, 403 without ``scope``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>' and the 'Identifier' header")
    principal = await _services(request).tenancy.identity.authenticate_jwt(
        token.strip(), request.headers.get("identifier")
    )
    if scope not in principal.scopes:
        raise Forbidden(f"the token lacks the scope '{scope}'")
    return principal


def _requestor(request: Request, body: dict[str, Any] | None = None) -> str:
    value = request.query_params.get("requestor")
    if value is None and body is not None and isinstance(body.get("requestor"), str):
        value = body["requestor"]
    if value is None or not value.strip():
        raise _Fault(400, "the 'requestor' parameter is mandatory (e.g. EXADATA_CPU_SCALE)")
    if len(value) > 200:
        raise _Fault(400, "'requestor' is too long")
    return value.strip()


def _time(ts: str | None) -> str | None:
    """ISO 8601 to the second, with ``Z``, as this API writes times."""
    if ts is None:
        return None
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _execution_id(run: dict[str, Any]) -> str:
    return str(run["external_id"]) if run.get("external_id") else str(run["id"])


async def _json_body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _Fault(413, f"the request body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Fault(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _Fault(400, "the request body must be a JSON object")
    return body


# -- reads -------------------------------------------------------------------------------------


@router.get("/executions/status")
async def execution_status(request: Request) -> Response:
    """``{"response": [{"executionId", "status"}]}`` in the asked order; an unknown id is
    ``not found`` rather than an error of the whole batch."""
    try:
        principal = await _caller(request, SCOPE_USER)
        requestor = _requestor(request)
        ids = [
            part.strip()
            for value in request.query_params.getlist("id")
            for part in value.split(",")
            if part.strip()
        ]
        if not ids:
            raise _Fault(400, "pass at least one execution id: id=A&id=B or id=A,B")
        if len(ids) > MAX_IDS:
            raise _Fault(400, f"at most {MAX_IDS} execution ids per request, got {len(ids)}")
        found = await _services(request).oracle_selfservice_support.statuses(
            principal, ids, requestor
        )
    except _Fault as fault:
        return _error(fault.status, fault.message)
    except LegatoError as exc:
        return _from_legato(exc)
    words = STATE_WORDS["execution"]
    return _answer(
        {
            "response": [
                {"executionId": ref, "status": words[status] if status else NOT_FOUND_WORD}
                for ref, status in found
            ]
        }
    )


@router.get("/executions/{execution_id}/status/details")
async def execution_details(request: Request, execution_id: str) -> Response:
    return await _details(request, execution_id)


@router.get("/executions/status/details")
async def execution_details_by_query(request: Request) -> Response:
    """The same, with the execution named by the ``id`` query parameter."""
    return await _details(request, request.query_params.get("id"))


async def _details(request: Request, execution_id: str | None) -> Response:
    try:
        principal = await _caller(request, SCOPE_USER)
        requestor = _requestor(request)
        if not execution_id or not execution_id.strip():
            raise _Fault(400, "the execution 'id' is mandatory")
        raw_step = request.query_params.get("stepId", "0").strip() or "0"
        step_id = parse_id(raw_step)
        if step_id is None:
            raise _Fault(400, "'stepId' must be a step id (a whole number; 0 for the top level)")
        steps = await _services(request).oracle_selfservice_support.sub_steps(
            principal, execution_id.strip(), requestor, step_id
        )
    except _Fault as fault:
        return _error(fault.status, fault.message)
    except LegatoError as exc:
        return _from_legato(exc)
    words = STATE_WORDS["step"]
    return _answer(
        {
            "executionId": execution_id.strip(),
            "stepId": step_id,
            "subSteps": [
                {
                    "endTime": _time(s["finished_at"]),
                    "hasSubStep": s["has_sub_steps"],
                    "name": s["name"],
                    "startTime": _time(s["started_at"]),
                    "status": words.get(str(s["status"]), str(s["status"])),
                    "stepId": s["id"],
                    "remark": s["remark"],
                }
                for s in steps
            ],
        }
    )


# -- control -----------------------------------------------------------------------------------


@router.post("/executions")
async def create_execution(request: Request) -> Response:
    """Starts the functionality's workflow (``requestor`` ``EXADATA_CPU_SCALE`` runs workflow
    ``exadata-cpu-scale``) with the request body as its inputs; ``id`` in the body or the
    query becomes the execution id (for ``CONFIG``, the change-ticket number)."""
    try:
        principal = await _caller(request, SCOPE_PRIVILEGED)
        body = await _json_body(request)
        requestor = _requestor(request, body)
        ref = request.query_params.get("id", body.get("id"))
        if ref is not None and (not isinstance(ref, str | int) or not str(ref).strip()):
            raise _Fault(400, "'id' must be a non-empty string")
        inputs = {k: v for k, v in body.items() if k not in ("requestor", "id", "scheduledTime")}
        when = _check_schedule(body["scheduledTime"]) if "scheduledTime" in body else None
        run = await _services(request).oracle_selfservice_support.start(
            principal, requestor, inputs, str(ref).strip() if ref is not None else None, when
        )
    except _Fault as fault:
        return _error(fault.status, fault.message)
    except LegatoError as exc:
        return _from_legato(exc)
    return _answer(
        {"executionId": _execution_id(run), "status": _word(run)},
        201,
    )


@router.put("/executions/{execution_id}")
async def change_execution(request: Request, execution_id: str) -> Response:
    """``{"action": "cancel"}`` or ``{"action": "schedule", "scheduledTime": …}``."""
    try:
        principal = await _caller(request, SCOPE_APPROVER)
        body = await _json_body(request)
        requestor = _requestor(request, body)
        action = body.get("action")
        support = _services(request).oracle_selfservice_support
        if action == "cancel":
            run = await support.cancel(principal, execution_id, requestor)
        elif action == "schedule":
            when = _check_schedule(body.get("scheduledTime"))
            run = await support.schedule(principal, execution_id, requestor, when)
        else:
            raise _Fault(400, "'action' must be 'schedule' or 'cancel'")
    except _Fault as fault:
        return _error(fault.status, fault.message)
    except LegatoError as exc:
        return _from_legato(exc)
    return _answer({"executionId": execution_id, "status": _word(run)})


def _check_schedule(value: Any) -> float:
    """The ``scheduledTime`` (ISO 8601, UTC unless it names its offset) as epoch seconds."""
    if not isinstance(value, str) or not value.strip():
        raise _Fault(400, "'scheduledTime' is mandatory for 'schedule' (ISO 8601)")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _Fault(400, f"'scheduledTime' is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _word(run: dict[str, Any]) -> str:
    """An execution's status word; ``scheduled`` while it waits for its ``scheduledTime``."""
    if (run.get("waiting_reason") or {}).get("reason") == "scheduled":
        return STATE_WORDS["execution"]["SCHEDULED"]
    return STATE_WORDS["execution"][run["status"]]
