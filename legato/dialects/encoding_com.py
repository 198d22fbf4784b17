"""Encoding.com's API: one endpoint (``POST /`` and ``POST /encoding/``) for every action.

The query comes as the form parameter ``xml`` or ``json``, or as the raw body; it carries
``userid`` (a Legato API key's numeric id) and ``userkey`` (that key's secret). Media = run;
a format = a top-level step, or each item of a ``foreach`` step. Every answer, errors
included, is HTTP 200 in the format the query came in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from legato import __version__
from legato.dialects.encoding_com_render import Node, error_node, render, vendor_date
from legato.http.xml import parse_xml
from legato.model.errors import Conflict, LegatoError, NotFound, Unauthorized
from legato.model.filters import RunFilter
from legato.model.ids import parse_id
from legato.service.hub import Services
from legato.service.runs import StartRun
from legato.service.tenancy import Principal
from legato.service.views import resource_view

__all__ = ["STATE_WORDS", "STEP_WORDS", "WORKFLOW", "router"]

router = APIRouter(tags=["dialect: encoding.com"])

#: The workflow that ``AddMedia`` starts in the caller's namespace.
WORKFLOW = "encoding-com"

#: Legato run status -> media status (RUNNING is refined by the running step, see _media_word).
STATE_WORDS: dict[str, str] = {
    "QUEUED": "New",
    "RUNNING": "Processing",
    "CANCELING": "Processing",
    "SUCCEEDED": "Finished",
    "FAILED": "Error",
    "TIMED_OUT": "Error",
    "CANCELED": "Error",
}
#: Legato step status -> format (task) status; SKIPPED steps are not shown.
STEP_WORDS: dict[str, str] = {
    "PENDING": "New",
    "READY": "New",
    "RUNNING": "Processing",
    "SUCCEEDED": "Finished",
    "FAILED": "Error",
    "TIMED_OUT": "Error",
    "CANCELED": "Error",
}
_HELD = ("concurrency_limit", "queue_limit")
_MAX_BODY = 1_000_000
_MAX_IDS = 100
_DESTINATION_FIELDS = ("s3_destination", "cf_destination")
_OWN_FIELDS = {"id", "status", "created", "started", "finished", "destination", "task_status"}


class QueryError(Exception):
    """A request the API answers with its ``<errors>`` document (in JSON when the query was
    meant as JSON)."""

    def __init__(self, message: str, *, as_json: bool = False) -> None:
        super().__init__(message)
        self.as_json = as_json


@dataclass
class Query:
    fields: dict[str, Any]
    as_json: bool

    def text(self, name: str) -> str:
        value = self.fields.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or isinstance(value, dict):
            return ""
        return str(value).strip()

    def require(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise QueryError(f"Field '{name}' is required")
        return value

    def flag(self, name: str) -> bool:
        return self.text(name).lower() == "yes"


# -- parsing ---------------------------------------------------------------------------------


def _element_value(element: Any) -> Any:
    if len(element) == 0:
        return (element.text or "").strip()
    fields: dict[str, Any] = {}
    for child in element:
        value = _element_value(child)
        if child.tag in fields:
            previous = fields[child.tag]
            fields[child.tag] = (
                [*previous, value] if isinstance(previous, list) else [previous, value]
            )
        else:
            fields[child.tag] = value
    return fields


def _parse_xml(text: str) -> Query:
    try:
        root = parse_xml(text)
    except LegatoError:
        raise QueryError("Malformed XML: the query is not well-formed XML") from None
    if root.tag != "query":
        raise QueryError("Malformed XML: the root element must be 'query'")
    value = _element_value(root)
    return Query(value if isinstance(value, dict) else {}, as_json=False)


def _parse_json(text: str) -> Query:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise QueryError("Malformed JSON: the query is not valid JSON", as_json=True) from None
    query = document.get("query") if isinstance(document, dict) else None
    if not isinstance(query, dict):
        message = 'Malformed JSON: the query must be an object {"query": {...}}'
        raise QueryError(message, as_json=True)
    return Query(query, as_json=True)


async def _read_query(request: Request) -> Query:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise QueryError(f"The query is too large (at most {_MAX_BODY} bytes)")
    text = body.decode("utf-8", errors="replace")
    content_type = request.headers.get("content-type", "")
    form: dict[str, list[str]] = {}
    if "application/x-www-form-urlencoded" in content_type:
        form = parse_qs(text)
    for name, values in parse_qs(request.url.query).items():
        form.setdefault(name, values)
    if form.get("json"):
        return _parse_json(form["json"][0])
    if form.get("xml"):
        return _parse_xml(form["xml"][0])
    stripped = text.strip()
    if not stripped:
        raise QueryError("No query: send it as the form parameter 'xml' or 'json'")
    if stripped.startswith(("{", "[")):
        return _parse_json(stripped)
    return _parse_xml(stripped)


# -- the endpoint ----------------------------------------------------------------------------


@router.post("/", include_in_schema=False)
@router.post("/encoding/", include_in_schema=False)
async def endpoint(request: Request) -> Response:
    as_json = False
    try:
        query = await _read_query(request)
        as_json = query.as_json
        node = await _dispatch(request, query)
    except QueryError as exc:
        as_json = as_json or exc.as_json
        node = error_node(str(exc))
    except LegatoError as exc:
        node = error_node(exc.detail)
    body, media_type = render(node, as_json)
    return Response(body, media_type=media_type)


async def _authenticate(request: Request, query: Query) -> Principal:
    userid, userkey = query.text("userid"), query.text("userkey")
    if not userid or not userkey:
        raise QueryError("Wrong user id or key: 'userid' and 'userkey' are required")
    try:
        principal: Principal = await request.app.state.legato.tenancy.authenticate(userkey)
    except Unauthorized:
        raise QueryError("Wrong user id or key") from None
    if str(principal.key_id) != userid:
        raise QueryError("Wrong user id or key")
    return principal


async def _dispatch(request: Request, query: Query) -> Node:
    action = query.require("action")
    handler = _ACTIONS.get(action.lower())
    if handler is None:
        raise QueryError(f"Unknown action '{action}'")
    principal = await _authenticate(request, query)
    return await handler(request.app.state.legato, principal, query)


def _media_ids(query: Query) -> list[int]:
    raw = query.require("mediaid")
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        number = parse_id(part, low=1)
        if number is None:
            raise QueryError(f"Wrong mediaid '{part}': a positive integer is expected")
        ids.append(number)
    if len(ids) > _MAX_IDS:
        raise QueryError(f"At most {_MAX_IDS} media ids per query")
    return ids


async def _run(legato: Any, p: Principal, media_id: int) -> dict[str, Any]:
    try:
        run: dict[str, Any] = await legato.runs.get(p, media_id)
    except NotFound:
        raise QueryError(f"Media ID {media_id} not found") from None
    return run


# -- GetStatus -------------------------------------------------------------------------------


def _media_word(run: dict[str, Any]) -> str:
    status = str(run["status"])
    top = [s for s in run.get("steps", []) if s["status"] != "SKIPPED"]
    if status == "QUEUED" and any(s.get("waiting_reason") in _HELD for s in top):
        return "Waiting for encoder"
    if status == "RUNNING" and top:
        running = [s for s in top if s["status"] == "RUNNING"]
        if running and running[0]["id"] == top[0]["id"] and len(top) > 1:
            return "Downloading"
        if running and running[-1]["id"] == top[-1]["id"] and len(top) > 1:
            return "Saving"
    return STATE_WORDS.get(status, "Processing")


def _step_word(step: dict[str, Any]) -> str:
    if step["status"] == "READY" and step.get("waiting_reason") in _HELD:
        return "Waiting for encoder"
    return STEP_WORDS.get(str(step["status"]), "Processing")


def _prev_word(events: list[dict[str, Any]], current: str) -> str:
    words = [STATE_WORDS.get(str(e["status"]), "") for e in events if e["step"] is None]
    words = [w for w in words if w]
    for word in reversed(words):
        if word != current:
            return word
    return current


def _seconds(value: float | None) -> str:
    return "" if value is None else str(max(0, math.ceil(value)))


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _current(run: dict[str, Any], formats: list[dict[str, Any]]) -> tuple[str, str]:
    """Time left and progress of the task running now."""
    if run["status"] in ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED"):
        return "0", "100.0"
    running = [s for s in formats if s["status"] == "RUNNING"]
    if not running:
        return "", "0.0"
    step = running[0]
    fraction = float(step.get("progress") or 0.0)
    started = _epoch(step.get("started_at"))
    left: float | None = None
    if started is not None and fraction > 0:
        elapsed = max(0.0, time.time() - started)
        left = elapsed * (1 - fraction) / fraction
    elif started is not None and (step.get("baseline") or {}).get("p50_ms"):
        left = step["baseline"]["p50_ms"] / 1000 - (time.time() - started)
    return _seconds(left), _percent(100.0 * fraction)


async def _formats(legato: Any, p: Principal, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Top-level steps, a step with items replaced by its items; skipped steps left out."""
    formats: list[dict[str, Any]] = []
    for step in run.get("steps", []):
        if step["status"] == "SKIPPED":
            continue
        if step.get("counts_by_status"):
            items = await legato.runs.steps(p, run["id"], parent=step["id"])
            formats.extend(s for s in items if s["status"] != "SKIPPED")
        else:
            formats.append(step)
    return formats


def _item_fields(run: dict[str, Any], step: dict[str, Any]) -> Node:
    """The codec fields AddMedia gave this format (the run's ``formats`` input item)."""
    key = str(step["key"])
    if step.get("parent_step_id") is None or not key.endswith("]") or "[" not in key:
        return []
    index = key[key.rindex("[") + 1 : -1]
    given = (run.get("inputs") or {}).get("formats")
    position = parse_id(index)
    if position is None or not isinstance(given, list) or position >= len(given):
        return []
    item = given[position]
    if not isinstance(item, dict):
        return []
    return [
        (str(k), _scalar(v))
        for k, v in item.items()
        if k not in _OWN_FIELDS and k not in _DESTINATION_FIELDS and k != "destination_status"
        if not isinstance(v, dict | list)
    ]


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _destination_status(resource: dict[str, Any]) -> str:
    result = str(resource.get("action_result") or "")
    if result.upper().startswith(("ERROR", "FAILED")):
        if result.startswith("Error (") and result.endswith(")"):
            return result
        metadata = resource.get("metadata") or {}
        reason = metadata.get("error") or metadata.get("message") or result
        return f"Error ({reason})"
    return "Saved"


def _format_node(
    run: dict[str, Any],
    step: dict[str, Any],
    resources: list[dict[str, Any]],
    events: list[dict[str, Any]],
    task_status: bool,
) -> Node:
    node: Node = [
        ("id", str(step["id"])),
        ("status", _step_word(step)),
        ("created", vendor_date(step.get("created_at"))),
        ("started", vendor_date(step.get("started_at"))),
        ("finished", vendor_date(step.get("finished_at"))),
    ]
    node += _item_fields(run, step)
    mine = [r for r in resources if r.get("step") == step["key"]]
    for kind in _DESTINATION_FIELDS:
        node += [(kind, str(r["resource_id"])) for r in mine if r["type"] == kind]
    for r in mine:
        if r["type"] == "destination":
            node += [("destination", str(r["resource_id"]))]
            node += [("destination_status", _destination_status(r))]
    if task_status:
        states: Node = [
            ("state", [("time", vendor_date(e["time"])), ("message", str(e["message"] or ""))])
            for e in events
            if e.get("step_id") == step["id"]
        ]
        node.append(("task_status", states))
    return node


async def media_node(
    legato: Services, p: Principal, run: dict[str, Any], *, task_status: bool
) -> Node:
    """One media as GetStatus answers it."""
    events = await legato.runs.events(p, run["id"])
    head = await legato.status.head(p, run["id"])
    resources = [resource_view(r) for r in await legato.status.resources_of(head)]
    formats = await _formats(legato, p, run)
    inputs = run.get("inputs") or {}
    top = run.get("steps", [])
    word = _media_word(run)
    time_left = (run.get("time_left") or {}).get("seconds")
    if run["status"] in ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED"):
        time_left = 0
    left_now, progress_now = _current(run, formats)
    node: Node = [
        ("id", str(run["id"])),
        ("userid", str(p.key_id)),
        ("version", __version__),
        ("sourcefile", _scalar(inputs.get("source"))),
        ("status", word),
        ("prevstatus", _prev_word(events, word)),
        ("notifyurl", _scalar(inputs.get("notify"))),
        ("created", vendor_date(run.get("created_at"))),
        ("started", vendor_date(run.get("started_at"))),
        ("finished", vendor_date(run.get("finished_at"))),
        ("downloaded", vendor_date(top[0].get("finished_at") if top else None)),
        ("uploaded", vendor_date(top[-1].get("finished_at") if len(top) > 1 else None)),
        ("time_left", _seconds(time_left)),
        ("progress", _percent(run["progress"]["percent"])),
        ("time_left_current", left_now),
        ("progress_current", progress_now),
    ]
    node += [
        ("format", _format_node(run, step, resources, events, task_status)) for step in formats
    ]
    return node


async def get_status(legato: Any, p: Principal, query: Query) -> Node:
    ids = _media_ids(query)
    task_status = query.flag("include_task_status")
    nodes = [
        await media_node(legato, p, await _run(legato, p, media_id), task_status=task_status)
        for media_id in ids
    ]
    if len(ids) == 1 and not query.flag("extended"):
        return nodes[0]
    return [("job", node) for node in nodes]


# -- AddMedia, CancelMedia, GetMediaInfo, GetMediaList ---------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


async def add_media(legato: Any, p: Principal, query: Query) -> Node:
    sources = [str(s).strip() for s in _as_list(query.fields.get("source")) if str(s).strip()]
    if not sources:
        raise QueryError("Field 'source' is required")
    formats = [f for f in _as_list(query.fields.get("format")) if isinstance(f, dict)]
    if not formats:
        raise QueryError("Field 'format' is required")
    try:
        workflow = await legato.workflows.get(p, WORKFLOW)
    except NotFound:
        raise QueryError(
            f"No workflow '{WORKFLOW}' in namespace '{p.namespace}' to process media"
        ) from None
    declared = (workflow["definition"].get("inputs") or {}).keys()
    notify = query.text("notify")
    offered: dict[str, Any] = {
        "source": sources[0] if len(sources) == 1 else sources,
        "notify": notify,
        "formats": formats,
    }
    inputs = {k: v for k, v in offered.items() if k in declared}
    start = StartRun(WORKFLOW, inputs=inputs, notify_url=notify or None)
    run, _ = await legato.runs.start(p, start)
    return [("message", "Added"), ("MediaID", str(run["id"]))]


async def cancel_media(legato: Any, p: Principal, query: Query) -> Node:
    [media_id] = _media_ids(query)[:1]
    await _run(legato, p, media_id)
    try:
        await legato.runs.cancel(p, media_id)
    except Conflict:
        raise QueryError(f"Media ID {media_id} has already finished") from None
    return [("message", "Deleted")]


async def get_media_info(legato: Any, p: Principal, query: Query) -> Node:
    [media_id] = _media_ids(query)[:1]
    run = await _run(legato, p, media_id)
    outputs: dict[str, Any] = run.get("outputs") or {}
    nested = outputs.get("media_info")
    info: dict[str, Any] = nested if isinstance(nested, dict) else outputs
    return [(str(k), _scalar(v)) for k, v in info.items() if not isinstance(v, dict | list)]


def _page_number(query: Query, name: str, default: int, low: int, high: int) -> int:
    raw = query.text(name)
    if not raw:
        return default
    number = parse_id(raw, low=low, high=high)
    if number is None:
        raise QueryError(f"Wrong {name} '{raw}': a number from {low} to {high} is expected")
    return number


def _date(query: Query, name: str) -> float | None:
    raw = query.text(name)
    if not raw:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, pattern).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise QueryError(f"Wrong {name} '{raw}': YYYY-MM-DD or YYYY-MM-DD HH:MM:SS is expected")


async def get_media_list(legato: Any, p: Principal, query: Query) -> Node:
    page = _page_number(query, "page", 1, 1, 1_000_000)
    per_page = _page_number(query, "per_page", 10, 5, 100)
    date_to = _date(query, "date_to")
    flt = RunFilter(
        namespace_id=p.namespace_id,
        created_after=_date(query, "date_from"),
        created_before=None if date_to is None else date_to + 1,
        top_level_only=True,
    )
    wanted = set(_media_ids(query)) if query.text("mediaid") else None
    runs: list[dict[str, Any]] = []
    token: str | None = None
    while True:  # the service pages by cursor; this API by number, with a total
        answer = await legato.runs.list_runs(p, flt, 500, token)
        runs += [r for r in answer["runs"] if wanted is None or r["id"] in wanted]
        token = answer["next_page_token"]
        if token is None:
            break
    sort = query.text("sort").lower() or "created"
    key = {"id": "id", "mediaid": "id", "status": "status"}.get(sort, "created_at")
    runs.sort(key=lambda r: (r[key] or "", r["id"]), reverse=query.text("order").lower() != "asc")
    total = len(runs)
    shown = runs[(page - 1) * per_page : page * per_page]
    node: Node = [
        (
            "pagination",
            [
                ("per_page", str(per_page)),
                ("page", str(page)),
                ("count", str(len(shown))),
                ("total", str(total)),
                ("pages", str(max(1, math.ceil(total / per_page)))),
            ],
        )
    ]
    for listed in shown:
        try:
            run = await legato.runs.get(p, listed["id"])  # the list view carries no inputs
        except NotFound:  # deleted meanwhile
            continue
        node.append(
            (
                "media",
                [
                    ("mediafile", _scalar((run.get("inputs") or {}).get("source"))),
                    ("mediaid", str(run["id"])),
                    ("mediastatus", STATE_WORDS.get(str(run["status"]), "Processing")),
                    ("createdate", vendor_date(run.get("created_at"))),
                    ("startdate", vendor_date(run.get("started_at"))),
                    ("finishdate", vendor_date(run.get("finished_at"))),
                ],
            )
        )
    return node


_ACTIONS = {
    "getstatus": get_status,
    "addmedia": add_media,
    "cancelmedia": cancel_media,
    "getmediainfo": get_media_info,
    "getmedialist": get_media_list,
}
