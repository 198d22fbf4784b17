"""Aspera Orchestrator's API, answered from Legato: ``/aspera/orchestrator/api/``.

Work order = run, work step = top-level step of the run, inputs / carry-thrus / outputs = the
run's inputs, carried values (``vars``) and the step's outputs, each with its integer value id.
Authentication: ``login`` + ``password`` parameters or HTTP Basic (a Legato user), or an
``api_key`` parameter (a Legato API key). The format comes from the extension, ``format=`` or
``Accept``; XML is the default. Errors use this API's codes and body (see :func:`_failure`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from legato import __version__
from legato.dialects.aspera.render import (
    Array,
    Attr,
    Doc,
    Raw,
    Time,
    json_key,
    ruby_text,
    to_json_data,
    to_xml,
    value_type,
)
from legato.http.credentials import Credentials, from_authorization, principal_of
from legato.model.definition import KIND_SCHEMAS
from legato.model.durations import parse_duration
from legato.model.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LegatoError,
    NotFound,
    QueueLimit,
    Unauthorized,
)
from legato.model.filters import RunFilter
from legato.service.hub import Services
from legato.service.runs import StartRun
from legato.service.tenancy import Principal
from legato.service.views import value_view

__all__ = ["PREFIX", "STATE_WORDS", "router"]

PREFIX = "/aspera/orchestrator/api"

#: Legato's states in this API's words: work orders (runs) and work steps (steps).
STATE_WORDS: dict[str, dict[str, str]] = {
    "run": {
        "QUEUED": "In Progress",
        "RUNNING": "In Progress",
        "CANCELING": "Canceling",
        "SUCCEEDED": "Complete",
        "FAILED": "Failed",
        "TIMED_OUT": "Failed",
        "CANCELED": "Canceled",
    },
    "step": {
        "PENDING": "Inactive",
        "READY": "Inactive",
        "RUNNING": "In Progress",
        "SUCCEEDED": "Complete",
        "FAILED": "Error",
        "TIMED_OUT": "Failed",
        "CANCELED": "Canceled",
        "SKIPPED": "Skipped",
    },
}

FORMATS = ("xml", "json", "txt")
MEDIA = {
    "xml": "application/xml",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
}
MAX_BODY = 1 << 20
MAX_ID = 2**63 - 1
PAGE_DEFAULT, PAGE_MAX = 50, 500
SYNC_WAIT = 60.0  # seconds a synchronous initiate waits at most

router = APIRouter(prefix=PREFIX, include_in_schema=False)


class AsperaError(Exception):
    def __init__(self, status: int, message: str, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.missing = missing or []


@dataclass(frozen=True)
class Call:
    """One request: the services, who asks, its parameters, the format and the path target."""

    app: Services
    principal: Principal
    params: dict[str, str]
    fmt: str
    target: str | None  # the path segment after the call name, without its extension
    asked: bool = True  # whether the request named a format (else ``fmt`` is the default)


Handler = Callable[[Call], Awaitable[Response]]


# -- formats, words and times ----------------------------------------------------------------


def _split(segment: str) -> tuple[str, str | None]:
    stem, dot, ext = segment.rpartition(".")
    if dot and ext.lower() in FORMATS:
        return stem, ext.lower()
    return segment, None


def _format(request: Request, ext: str | None, params: dict[str, str]) -> str:
    return _asked_format(request, ext, params) or "xml"


def _asked_format(request: Request, ext: str | None, params: dict[str, str]) -> str | None:
    """The format the request names (extension, ``format=``, ``Accept``), if any."""
    if ext:
        return ext
    asked = params.get("format", "").lower()
    if asked in FORMATS:
        return asked
    accept = request.headers.get("accept", "").lower()
    if "application/json" in accept and "xml" not in accept:
        return "json"
    if "xml" in accept:
        return "xml"
    return None


def _time(iso: str | None) -> Time | None:
    """Legato's ISO time (milliseconds) in this API's ``YYYY-MM-DDTHH:MM:SSZ``."""
    return None if iso is None else Time(iso[:19] + "Z")


def _utc(iso: str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` (work order documents); empty when unset."""
    return "" if iso is None else f"{iso[:10]} {iso[11:19]} UTC"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _render(fmt: str, root: str, doc: Any, status: int = 200) -> Response:
    if fmt == "json":
        body = json.dumps(to_json_data(doc), ensure_ascii=False)
        return Response(body, status_code=status, media_type=MEDIA["json"])
    if fmt == "txt":
        return Response(ruby_text(to_json_data(doc)), status_code=status, media_type=MEDIA["txt"])
    return Response(to_xml(root, doc), status_code=status, media_type=MEDIA["xml"])


def _text(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type=MEDIA["txt"])


def _failure(fmt: str, status: int, message: str, missing: list[str] | None = None) -> Response:
    """This API's error document: ``{"work_order": {"statusDetails": …},
    "missing_parameters": […]}`` (XML: the same hash, as Rails writes one)."""
    if fmt == "txt":
        return _text(message, status)
    doc: Doc = [
        ("work-order", [("statusDetails", message)]),
        ("missing-parameters", Array("missing-parameter", list(missing or []))),
    ]
    if fmt == "json":
        body = {"work_order": {"statusDetails": message}, "missing_parameters": missing or []}
        return Response(json.dumps(body), status_code=status, media_type=MEDIA["json"])
    xml = to_xml("hash", doc)
    return Response(xml, status_code=status, media_type=MEDIA["xml"])


# -- requests --------------------------------------------------------------------------------


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
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
            username=params.get("login", ""), password=params.get("password", "")
        )
    else:
        credentials = from_authorization(request)
    if credentials.empty:
        raise AsperaError(401, "Access Denied: no credentials (login and password, or api_key)")
    return await principal_of(credentials, app.tenancy)


async def _answer(request: Request, call: str, target: str | None) -> Response:
    name, ext = _split(call)
    stem = None
    if target is not None:
        stem, ext = _split(target)
    params: dict[str, str] = dict(request.query_params)
    asked = _asked_format(request, ext, params)
    fmt = asked or "xml"
    try:
        if name == "remote_node_ping":  # the ping clients send before they have credentials
            return _ping(fmt, stem)
        handler = _handler(name, stem)
        params = await _params(request)
        app: Services = request.app.state.legato
        principal = await _principal(request, app, params)
        return await handler(Call(app, principal, params, fmt, stem, asked is not None))
    except AsperaError as exc:
        return _failure(fmt, exc.status, exc.message, exc.missing)
    except LegatoError as exc:
        status, prefix = _status_of(exc)
        return _failure(fmt, status, prefix + exc.detail)


#: Legato's errors in this API's codes; its 401 and 403 are the other way round from HTTP's.
ERRORS: tuple[tuple[type[LegatoError], int, str], ...] = (
    (Unauthorized, 403, "Authentication failure: "),
    (Forbidden, 401, "Access Denied: "),
    (NotFound, 404, ""),
    (Conflict, 409, ""),
    (QueueLimit, 429, ""),
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
    _, ext = _split(rest.rsplit("/", 1)[-1])
    return _failure(_format(request, ext, params), 404, f"Method not found: {rest}")


# -- lookups ---------------------------------------------------------------------------------


def _required(call: Call, *names: str) -> list[str]:
    missing = [n for n in names if not call.params.get(n, "").strip()]
    if missing:
        raise AsperaError(400, f"Missing parameters: {', '.join(missing)}", missing)
    return [call.params[n].strip() for n in names]


def _integer(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise AsperaError(404, f"{what} {text} not found")
    return int(text)


async def _work_order(call: Call, ref: str) -> dict[str, Any]:
    run_id = _integer(ref, "Work order")
    try:
        return await call.app.runs.get(call.principal, run_id)
    except NotFound:
        raise AsperaError(404, f"Work order {run_id} not found") from None


def _latest(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One value per name, the latest, at the place the name first appeared."""
    by_name: dict[str, dict[str, Any]] = {}
    for v in values:
        by_name[v["name"]] = v
    return list(by_name.values())


def _value_doc(v: dict[str, Any]) -> Doc:
    return [
        ("name", v["name"]),
        ("id", v["id"]),
        ("type", value_type(v["value"])),
        ("value", Raw(v["value"])),
    ]


def _definition_step(definition: dict[str, Any], key: str) -> dict[str, Any]:
    for step in definition.get("steps") or []:
        if step.get("id") == key:
            return dict(step)
    return {}


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return round(parse_duration(value))
    except (ValueError, TypeError):
        return None


# -- work step status ------------------------------------------------------------------------


async def work_step_status(call: Call) -> Response:
    if call.target in (None, "work_order"):
        return await _step_of_work_order(call)
    step_id = _integer(call.target or "", "Work step")
    if call.params.get("output_name", "").strip():
        return await _step_output(call, step_id)
    run_id = await _run_of_step(call, step_id)
    run = await call.app.runs.get(call.principal, run_id)
    step = next((s for s in run["steps"] if s["id"] == step_id), None)
    if step is None:
        step = await call.app.runs.step(call.principal, run_id, str(step_id))
    return await _step_status(call, run, step)


async def _run_of_step(call: Call, step_id: int) -> int:
    try:
        return await call.app.aspera_support.run_of_step(call.principal, step_id)
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} not found") from None


async def _step_of_work_order(call: Call) -> Response:
    order_ref, step_name = _required(call, "work_order_id", "step_name")
    run = await _work_order(call, order_ref)
    steps = run["steps"]
    step = next((s for s in steps if s["name"] == step_name), None)
    step = step or next((s for s in steps if s["key"] == step_name), None)
    if step is None:
        raise AsperaError(404, f"Work step '{step_name}' not found in work order {run['id']}")
    return await _step_status(call, run, step)


async def _step_status(call: Call, run: dict[str, Any], step: dict[str, Any]) -> Response:
    word = STATE_WORDS["step"][step["status"]]
    if call.params.get("status_only", "").lower() == "true" or call.fmt == "txt":
        return _text(word)
    p, app = call.principal, call.app
    values = [
        value_view(v) for v in await app.status.values_of(await app.status.head(p, run["id"]))
    ]
    workflow = await app.workflows.get(p, run["workflow"], run["workflow_version"])
    workflow_id = await app.aspera_support.workflow_id(p, run["workflow"])
    spec = _definition_step(workflow["definition"], step["key"])
    timeout = _seconds(spec.get("timeout"))
    activation = _time(step["started_at"])
    work_step: Doc = [
        ("workOrder-id", run["id"]),
        ("preProcessing", None),
        ("group", run["id"]),
        ("executionTimeout", timeout or 0),
        ("activable-date", activation),
        ("stepName", None),
        ("created-at", _time(step["created_at"])),
        ("updated-at", _time(step["finished_at"] or step["started_at"] or step["created_at"])),
        ("timeout", timeout),
        ("on-timeout", "fail" if timeout else None),
        ("step-type", step["type"] or step["kind"]),
        ("attempt", step["attempt"]),
        ("step-id", step["rank"] + 1),
        ("statusDetails", await _status_details(call, run["id"], step)),
        ("rank", step["rank"] + 1),
        ("id", step["id"]),
        ("activation-date", activation),
        ("workflow-id", workflow_id),
        ("synch-filter", 0),
        ("completion-date", _time(step["finished_at"])),
        ("action-id", 0),
        ("status", word),
        ("running-as", 0),
        ("original-activation-date", activation),
        ("workStepName", step["name"]),
        ("postProcessing", None),
    ]
    inputs = _latest([v for v in values if v["scope"] == "input"])
    carried = _latest([v for v in values if v["scope"] == "var"])
    outputs = _latest([v for v in values if v["scope"] == "output" and v["step_id"] == step["id"]])
    doc: Doc = [
        ("inputs", Array("input", [_value_doc(v) for v in inputs])),
        ("carry-thrus", Array("carry-thru", [_value_doc(v) for v in carried])),
        ("work-step", work_step),
        ("outputs", Array("output", [_value_doc(v) for v in outputs])),
    ]
    return _render(call.fmt, "Work-step-status", doc)


async def _status_details(call: Call, run_id: int, step: dict[str, Any]) -> str:
    """What the step last said of itself: its error when it failed, else the latest message
    it reported with its progress, else its status message."""
    error = step.get("error") or {}
    if step["status"] in ("FAILED", "TIMED_OUT") and error.get("message"):
        return str(error["message"])
    history = await call.app.runs.progress_history(call.principal, run_id, str(step["id"]))
    said = [pt["message"] for pt in history["points"] if pt["message"]]
    return str(said[-1]) if said else str(step["status_message"] or "")


async def _step_output(call: Call, step_id: int) -> Response:
    [name] = _required(call, "output_name")
    run_id = await call.app.aspera_support.run_of_step(call.principal, step_id)
    try:
        resource = call.app.status.output(call.principal, str(step_id), name)
        v = await (await call.app.status.snapshot(call.principal, run_id, resource)).body()
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} has no output '{name}'") from None
    if call.fmt == "txt":
        return _text(ruby_text(v["value"]))
    if call.fmt == "json":
        body = json.dumps(v["value"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return Response(body, media_type=MEDIA["json"])
    doc: Doc = [
        ("name", v["name"]),
        ("id", v["id"]),
        ("value", Raw(v["value"])),
        ("type", value_type(v["value"])),
    ]
    return _render("xml", "Work_step_output", doc)


async def work_order(call: Call) -> Response:
    """``api/work_order.xml?work_order_id=&step_name=[&status_only=true]``: the shorter form."""
    if call.target is not None:
        raise AsperaError(404, f"Method not found: work_order/{call.target}")
    return await _step_of_work_order(call)


async def work_order_output(call: Call) -> Response:
    order_ref = call.target or call.params.get("work_order_id", "")
    if not order_ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    if not call.params.get("step_name") and not call.params.get("variable_name"):
        return await _every_output(call, await _work_order(call, order_ref))
    step_name, name = _required(call, "step_name", "variable_name")
    run = await _work_order(call, order_ref)
    step = next((s for s in run["steps"] if step_name in (s["name"], s["key"])), None)
    if step is None:
        raise AsperaError(404, f"Work step '{step_name}' not found in work order {run['id']}")
    call = Call(call.app, call.principal, {**call.params, "output_name": name}, call.fmt, None)
    return await _step_output(call, step["id"])


async def _every_output(call: Call, run: dict[str, Any]) -> Response:
    """Every output of the work order (the latest value per step and name), each a
    ``<variable>`` with its step, name and type as attributes and its value as text."""
    head = await call.app.status.head(call.principal, run["id"])
    values = [value_view(v) for v in await call.app.status.values_of(head)]
    names = {s["id"]: s["name"] for s in run["steps"]}
    latest: dict[tuple[Any, str], dict[str, Any]] = {}
    for v in values:
        if v["scope"] in ("output", "run_output"):
            latest[(v["step_id"], v["name"])] = v
    variables = [
        {
            "name": v["name"],
            "step": names.get(v["step_id"], v["step"] or "") if v["step_id"] else "",
            "id": str(v["id"]),
            "type": value_type(v["value"]),
            "value": v["value"],
        }
        for v in latest.values()
    ]
    if call.fmt == "json":
        body = {"work_order_id": run["id"], "variable": variables}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    if call.fmt == "txt":
        lines = [f"{v['name']}={ruby_text(v['value'])}" for v in variables]
        return _text("\n".join(lines))
    doc: Doc = [
        (
            "variable",
            Attr({k: str(v[k]) for k in ("name", "step", "id", "type")}, ruby_text(v["value"])),
        )
        for v in variables
    ]
    xml = to_xml("work_order_output", Attr({"id": str(run["id"])}, doc))
    return Response(xml, media_type=MEDIA["xml"])


# -- work orders -----------------------------------------------------------------------------


async def _order_doc(call: Call, run: dict[str, Any], action: str) -> Attr:
    p, app = call.principal, call.app
    workflow_id = await app.aspera_support.workflow_id(p, run["workflow"])
    word = STATE_WORDS["run"][run["status"]]
    running = [s for s in run["steps"] if s["status"] == "RUNNING"]
    text = f"Executing Step: {running[0]['name']} ({running[0]['id']})" if running else word
    owner = run["requestor"] or ""
    work_steps: Doc = [
        (
            "work_step",
            Attr(
                {"id": str(s["id"])},
                [
                    ("name", s["name"]),
                    ("step_type", s["type"] or s["kind"]),
                    ("status", STATE_WORDS["step"][s["status"]]),
                    ("status_details", s["status_message"] or ""),
                    ("started_at", _utc(s["started_at"])),
                    ("completed_at", _utc(s["finished_at"])),
                ],
            ),
        )
        for s in run["steps"]
    ]
    content: Doc = [
        ("name", run["labels"].get("name") or run["workflow"]),
        (
            "workflow",
            Attr(
                {"id": str(workflow_id or ""), "revision_id": str(run["workflow_version"])},
                run["workflow"],
            ),
        ),
        ("status", Attr({"state": word}, text)),
        ("comments", ""),
        ("latest_update", run["status_message"] or ""),
        (
            "ownership",
            [("initiated_by", owner), ("running_as", owner), ("launched_by", owner)],
        ),
        ("priority", Attr({"dedicated_worker": "false"}, str(_aspera_priority(run["priority"])))),
        (
            "timestamps",
            [
                ("created_at", _utc(run["created_at"])),
                ("initiated_at", _utc(run["started_at"])),
                ("updated_at", _utc(run["updated_at"])),
                ("completed_at", _utc(run["finished_at"])),
            ],
        ),
        ("work_steps", work_steps),
    ]
    master = run["parent_run_id"] or run["id"]
    attrs = {"time": _now(), "action": action, "id": str(run["id"]), "master_id": str(master)}
    return Attr(attrs, content)


def _order_response(call: Call, doc: Attr) -> Response:
    if call.fmt == "json":
        body = {"work_order": _order_json(doc)}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    if call.fmt == "txt":
        content = doc.content if isinstance(doc.content, list) else []
        state = next(v for k, v in content if k == "status")
        return _text(state.attrs["state"])
    return Response(to_xml("work_order", doc), media_type=MEDIA["xml"])


def _order_json(value: Any) -> Any:
    if isinstance(value, Attr):
        data: dict[str, Any] = dict(value.attrs)
        if isinstance(value.content, list):
            data.update(_order_json(value.content))
        else:
            data["value"] = value.content
        return data
    if isinstance(value, list):
        grouped: dict[str, Any] = {}
        for key, child in value:
            if key == "work_step":
                grouped.setdefault(key, []).append(_order_json(child))
            else:
                grouped[json_key(key)] = _order_json(child)
        return grouped
    return value


def _aspera_priority(priority: int) -> int:
    """Legato's priority (0 = normal) as this API's 1 (low) … 3 (high)."""
    return max(1, min(3, priority + 2))


async def work_order_status(call: Call) -> Response:
    ref = call.target or call.params.get("work_order_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    run = await _work_order(call, ref)
    return _order_response(call, await _order_doc(call, run, "status"))


async def work_order_cancel(call: Call) -> Response:
    ref = call.target or call.params.get("work_order_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    run = await _work_order(call, ref)
    try:
        run = await call.app.runs.cancel(call.principal, run["id"])
    except Conflict:  # it ended meanwhile: say how
        run = await _work_order(call, str(run["id"]))
        word = STATE_WORDS["run"][run["status"]]
        raise AsperaError(409, f"Work order {run['id']} has already ended ({word})") from None
    return _order_response(call, await _order_doc(call, run, "cancel"))


def _coerce(value: str, spec: Any) -> Any:
    """A parameter's text as the declared input type wants it (JSON text for non-strings)."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in (None, "string"):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def initiate(call: Call) -> Response:
    p, app = call.principal, call.app
    ref = call.target
    if ref is None or ref in FORMATS:
        [ref] = _required(call, "work_order[workflow_id]")
    name = await app.aspera_support.workflow_name(p, ref)
    workflow = await app.workflows.get(p, name)
    declared = workflow["definition"].get("inputs") or {}
    inputs: dict[str, Any] = {}
    for key, value in call.params.items():
        if key.startswith("external_parameters[") and key.endswith("]"):
            field = key[len("external_parameters[") : -1]
            inputs[field] = _coerce(value, declared.get(field))
    priority = 0
    if call.params.get("work_order[priority]"):
        text = call.params["work_order[priority]"]
        if text not in ("1", "2", "3"):
            raise AsperaError(400, "work_order[priority] must be 1 (low), 2 or 3 (high)")
        priority = int(text) - 2
    labels = {}
    if call.params.get("work_order[name]"):
        labels["name"] = call.params["work_order[name]"][:200]
    run, _ = await app.runs.start(
        p,
        StartRun(
            name,
            inputs=inputs,
            labels=labels,
            priority=priority,
            requestor=(p.subject or p.name or None),
        ),
    )
    run = await app.runs.get(p, run["id"])
    explicit = [call.params.get(f"explicit_output_{n}", "").strip() for n in ("step", "variable")]
    if any(explicit):
        return await _explicit_output(call, run, *explicit)
    if call.params.get("synchronous", "").lower() == "true":
        run = await _wait_for(call, run, call.params.get("step_name", "").strip())
    return _order_response(call, await _order_doc(call, run, "initiate"))


async def _explicit_output(
    call: Call, run: dict[str, Any], step_name: str, variable: str
) -> Response:
    """``explicit_output_step`` + ``explicit_output_variable``: waits for that step, then
    answers that one output's value alone, as text (whatever format was asked)."""
    if not step_name or not variable:
        pairs = (("step", step_name), ("variable", variable))
        missing = [f"explicit_output_{n}" for n, v in pairs if not v]
        raise AsperaError(400, f"Missing parameters: {', '.join(missing)}", missing)
    run = await _wait_for(call, run, step_name)
    step = next((s for s in run["steps"] if step_name in (s["name"], s["key"])), None)
    if step is None:
        raise AsperaError(404, f"Work step '{step_name}' not found in work order {run['id']}")
    try:
        resource = call.app.status.output(call.principal, str(step["id"]), variable)
        snapshot = await call.app.status.snapshot(call.principal, run["id"], resource)
        value = (await snapshot.body())["value"]
    except NotFound:
        word = STATE_WORDS["step"][step["status"]]
        raise AsperaError(
            404, f"Work step '{step_name}' ({word}) has no output '{variable}'"
        ) from None
    return _text(ruby_text(value))


RUN_ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"})
STEP_ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT", "SKIPPED"})


async def _wait_for(call: Call, run: dict[str, Any], step_name: str) -> dict[str, Any]:
    """Long-polls (at most :data:`SYNC_WAIT` seconds) until the named step or the run ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SYNC_WAIT
    while True:
        if run["status"] in RUN_ENDED:
            return run
        if step_name:
            step = next((s for s in run["steps"] if step_name in (s["name"], s["key"])), None)
            if step is not None and step["status"] in STEP_ENDED:
                return run
        left = deadline - loop.time()
        if left <= 0:
            return run
        await call.app.runs.wait_for_change(run["id"], min(left, 1.0))
        run = await call.app.runs.get(call.principal, run["id"])


# -- lists -----------------------------------------------------------------------------------


async def workflows_list(call: Call) -> Response:
    """``{"workflows": {"workflow": [...]}}``, the fields ``ascli orchestrator workflows list``
    shows; a workflow's portable id is its uuid, every version is published."""
    p, app = call.principal, call.app
    ids = await app.aspera_support.workflow_ids(p)
    docs: list[Doc] = [
        [
            ("id", ids.get(w["name"])),
            ("portable_id", w["uuid"]),
            ("name", w["name"]),
            ("published_status", "published"),
            ("published_revision_id", w["version"]),
            ("latest_revision_id", w["version"]),
            ("last_modification", _time(w["created_at"])),
            ("description", w["description"] or ""),
        ]
        for w in await app.workflows.list(p)
    ]
    return _wrapped_list(call, "workflows", "workflow", docs)


def _wrapped_list(call: Call, root: str, item: str, docs: list[Any]) -> Response:
    """``{root: {item: [...]}}`` in JSON (always a list), ``<root><item/>…</root>`` in XML."""
    if call.fmt == "json":
        body = {root: {item: [to_json_data(d) for d in docs]}}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return _render(call.fmt, root, [(item, d) for d in docs])


async def work_orders_list(call: Call) -> Response:
    p, app = call.principal, call.app
    ref = call.target or call.params.get("workflow_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: workflow_id", ["workflow_id"])
    name = await app.aspera_support.workflow_name(p, ref)
    workflow_id = await app.aspera_support.workflow_id(p, name)
    limit_text = call.params.get("limit", str(PAGE_DEFAULT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= PAGE_MAX:
        raise AsperaError(400, f"limit must be between 1 and {PAGE_MAX}")
    page = await app.runs.list_runs(
        p,
        RunFilter(namespace_id=p.namespace_id, workflow=name),
        int(limit_text),
        call.params.get("page_token") or None,
    )
    docs: list[Doc] = [
        [
            ("id", r["id"]),
            ("name", r["labels"].get("name") or r["workflow"]),
            ("workflow-id", workflow_id),
            ("revision-id", r["workflow_version"]),
            ("status", STATE_WORDS["run"][r["status"]]),
            ("statusDetails", r["status_message"] or ""),
            ("priority", _aspera_priority(r["priority"])),
            ("created-at", _time(r["created_at"])),
            ("initiated-at", _time(r["started_at"])),
            ("completed-at", _time(r["finished_at"])),
        ]
        for r in page["runs"]
    ]
    if call.fmt == "json":
        body = {"work_orders": [to_json_data(d) for d in docs]}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return _render_list(call, "work-orders", Array("work-order", docs))


def _render_list(call: Call, root: str, items: Array) -> Response:
    if call.fmt == "json":
        body = json.dumps(to_json_data(items), ensure_ascii=False)
        return Response(body, media_type=MEDIA["json"])
    return Response(to_xml(root, items), media_type=MEDIA["xml"])


# -- the rest of the family ------------------------------------------------------------------


def _ping(fmt: str, target: str | None) -> Response:
    """``remote_node_ping``, answered to anyone: ``remote_orchestrator_info`` with the version
    (``orchestrator-version``, which clients read to detect the API) and that the node
    answers."""
    if target is not None:
        raise AsperaError(404, f"Method not found: remote_node_ping/{target}")
    info: Doc = [
        ("orchestrator-version", __version__),
        ("product", "Legato"),
        ("status", "OK"),
        ("time", _now()),
    ]
    if fmt == "json":
        body = {"remote_orchestrator_info": dict(info)}
        return Response(json.dumps(body), media_type=MEDIA["json"])
    return _render(fmt, "remote_orchestrator_info", info)


async def work_step_cancel(call: Call) -> Response:
    """Cancels the work order the step belongs to; answers the step at ``Canceling``."""
    step_id = _integer(call.target or call.params.get("work_step_id", ""), "Work step")
    p, app = call.principal, call.app
    try:
        run_id = await app.aspera_support.run_of_step(p, step_id)
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} not found") from None
    try:
        await app.runs.cancel(p, run_id)
    except Conflict:
        raise AsperaError(409, f"Work step {step_id} has already ended") from None
    step = await app.runs.step(p, run_id, str(step_id))
    doc = Attr(
        {"time": _now(), "action": "cancel", "id": str(step_id)},
        [
            ("name", step["name"]),
            ("work_order_id", str(run_id)),
            ("status", "Canceling"),
        ],
    )
    if call.fmt == "json":
        body = {"work_step": _order_json(doc)}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    if call.fmt == "txt":
        return _text("Canceling")
    return Response(to_xml("work_step", doc), media_type=MEDIA["xml"])


async def _all_runs(call: Call, name: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    token: str | None = None
    flt = RunFilter(namespace_id=call.principal.namespace_id, workflow=name)
    while True:
        page = await call.app.runs.list_runs(call.principal, flt, PAGE_MAX, token)
        runs.extend(page["runs"])
        token = page["next_page_token"]
        if not token:
            return runs


def _by_word(runs: list[dict[str, Any]]) -> dict[str, tuple[int, str | None]]:
    """Per status word (in first-seen order of the table): work orders and last activity."""
    counts: dict[str, tuple[int, str | None]] = {}
    for word in dict.fromkeys(STATE_WORDS["run"].values()):
        of_word = [r for r in runs if STATE_WORDS["run"][r["status"]] == word]
        if of_word:
            last = max(r["updated_at"] or r["created_at"] for r in of_word)
            counts[word] = (len(of_word), last)
    return counts


async def workflow_details(call: Call) -> Response:
    ref = call.target or call.params.get("workflow_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: workflow_id", ["workflow_id"])
    p, app = call.principal, call.app
    name = await app.aspera_support.workflow_name(p, ref)
    workflow_id = await app.aspera_support.workflow_id(p, name)
    counts = _by_word(await _all_runs(call, name))
    docs: list[Doc] = [
        [("status", word), ("count", n), ("last-activity", _time(last))]
        for word, (n, last) in counts.items()
    ]
    doc: Doc = [
        ("id", workflow_id),
        ("name", name),
        ("statuses", Array("status-count", docs)),
    ]
    if call.fmt == "json":
        body = {"workflows": {"workflow": to_json_data(doc)}}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return _render(call.fmt, "workflows", [("workflow", doc)])


async def work_order_reset(call: Call) -> Response:
    """Retries a failed work order from its failed steps."""
    ref = call.target or call.params.get("work_order_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    run = await _work_order(call, ref)
    return await _reset(call, run)


async def workstep_reset(call: Call) -> Response:
    """Retries the failed work order a step belongs to, from its failed steps."""
    step_id = _integer(call.target or call.params.get("work_step_id", ""), "Work step")
    try:
        run_id = await call.app.aspera_support.run_of_step(call.principal, step_id)
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} not found") from None
    return await _reset(call, await call.app.runs.get(call.principal, run_id))


async def _reset(call: Call, run: dict[str, Any]) -> Response:
    try:
        run = await call.app.runs.retry(call.principal, run["id"])
    except Conflict:
        word = STATE_WORDS["run"][run["status"]]
        raise AsperaError(409, f"Work order {run['id']} has not failed ({word})") from None
    return _order_response(call, await _order_doc(call, run, "reset"))


async def workflows_status(call: Call) -> Response:
    p, app = call.principal, call.app
    ids = await app.aspera_support.workflow_ids(p)
    workflows = await app.workflows.list(p)
    if call.target is not None:
        name = await app.aspera_support.workflow_name(p, call.target)
        workflows = [w for w in workflows if w["name"] == name]
    docs: list[Doc] = []
    for w in workflows:
        counts = _by_word(await _all_runs(call, w["name"]))
        docs.append(
            [
                ("id", ids.get(w["name"])),
                ("name", w["name"]),
                (
                    "statuses",
                    Array(
                        "status-count",
                        [[("status", word), ("count", n)] for word, (n, _) in counts.items()],
                    ),
                ),
            ]
        )
    return _wrapped_list(call, "workflows", "workflow", docs)


# -- workflow specs, export, plugins, processes, monitor -----------------------------------


async def _workflow(call: Call) -> tuple[int | None, dict[str, Any]]:
    """The workflow the path (or ``workflow_id``) names: its integer id and latest version."""
    ref = call.target or call.params.get("workflow_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: workflow_id", ["workflow_id"])
    name = await call.app.aspera_support.workflow_name(call.principal, ref)
    workflow = await call.app.workflows.get(call.principal, name)
    return await call.app.aspera_support.workflow_id(call.principal, name), workflow


def _spec(call: Call, root: str, item: str, head: Doc, items: list[Doc]) -> Response:
    """``{root: {…head, item: [...]}}`` (JSON, the list always a list) or
    ``<root>…head<item/>…</root>`` (XML)."""
    if call.fmt == "json":
        data = {**to_json_data(head), item: [to_json_data(d) for d in items]}
        return Response(json.dumps({root: data}, ensure_ascii=False), media_type=MEDIA["json"])
    return _render(call.fmt, root, [*head, *((item, d) for d in items)])


def _workflow_head(workflow_id: int | None, workflow: dict[str, Any]) -> Doc:
    return [
        ("workflow_id", workflow_id),
        ("workflow_name", workflow["name"]),
        ("revision_id", workflow["version"]),
    ]


async def workflow_inputs_spec(call: Call) -> Response:
    """The workflow's declared inputs: name, type, whether required, default, description."""
    workflow_id, workflow = await _workflow(call)
    declared: dict[str, Any] = workflow["definition"].get("inputs") or {}
    items: list[Doc] = []
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        items.append(
            [
                ("name", name),
                ("type", spec.get("type", "any")),
                ("required", "default" not in spec),
                ("default", Raw(spec.get("default"))),
                ("description", spec.get("description", "")),
            ]
        )
    head = _workflow_head(workflow_id, workflow)
    return _spec(call, "workflow_inputs_spec", "input", head, items)


async def workflow_outputs_spec(call: Call) -> Response:
    """The workflow's declared outputs: each name with the expression that gives it."""
    workflow_id, workflow = await _workflow(call)
    declared: dict[str, Any] = workflow["definition"].get("outputs") or {}
    items: list[Doc] = [
        [
            ("name", name),
            ("type", value_type(expression) if not isinstance(expression, str) else "string"),
            ("expression", Raw(expression)),
        ]
        for name, expression in declared.items()
    ]
    head = _workflow_head(workflow_id, workflow)
    return _spec(call, "workflow_outputs_spec", "output", head, items)


async def export_workflow(call: Call) -> Response:
    """The workflow's definition: its YAML source as applied when no format is asked, the
    parsed definition in JSON, the source inside ``<workflow>`` in XML."""
    workflow_id, workflow = await _workflow(call)
    source = str(workflow.get("source") or "")
    if not call.asked:
        return Response(source, media_type="application/yaml")
    if call.fmt == "txt":
        return _text(source)
    head = _workflow_head(workflow_id, workflow)
    if call.fmt == "json":
        body = {"workflow": {**to_json_data(head), "definition": workflow["definition"]}}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return _render("xml", "workflow", [*head, ("source", source)])


async def plugin_version(call: Call) -> Response:
    """The step kinds this Legato runs (``uses:``), as the plugins of the API."""
    items: list[Doc] = [
        [("name", kind), ("version", __version__), ("schema", schema.__name__)]
        for kind, schema in sorted(KIND_SCHEMAS.items())
    ]
    if call.fmt == "json":
        body = {"Plugin": [to_json_data(d) for d in items]}
        return Response(json.dumps(body), media_type=MEDIA["json"])
    return _render(call.fmt, "plugins", [("Plugin", d) for d in items])


async def processes_status(call: Call) -> Response:
    """The live worker processes, each a ``<process>``."""
    items: list[Doc] = [
        [
            ("name", str(w["id"])),
            ("host", str(w["host"])),
            ("pid", w["pid"]),
            ("concurrency", w["concurrency"]),
            ("status", "running"),
            ("started-at", _time(w["started_at"])),
            ("heartbeat-at", _time(w["heartbeat_at"])),
        ]
        for w in await call.app.workers()
    ]
    if call.fmt == "json":
        body = {"process": [to_json_data(d) for d in items]}
        return Response(json.dumps(body), media_type=MEDIA["json"])
    return _render(call.fmt, "processes", [("process", d) for d in items])


async def monitor_snapshot(call: Call) -> Response:
    """The namespace's queue (work orders waiting and running) and the workers serving it."""
    workers = await call.app.workers()
    queued = await _count(call, ("QUEUED",))
    running = await _count(call, ("RUNNING", "CANCELING"))
    monitor: Doc = [
        ("time", _now()),
        ("queued-work-orders", queued),
        ("running-work-orders", running),
        ("workers", len(workers)),
        ("capacity", sum(int(w["concurrency"]) for w in workers)),
    ]
    return _render(call.fmt, "monitor-snapshot", [("monitor", monitor)])


async def _count(call: Call, statuses: tuple[str, ...]) -> int:
    flt = RunFilter(namespace_id=call.principal.namespace_id, statuses=statuses)
    total, token = 0, None
    while True:
        page = await call.app.runs.list_runs(call.principal, flt, PAGE_MAX, token)
        total += len(page["runs"])
        token = page["next_page_token"]
        if not token:
            return total


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
