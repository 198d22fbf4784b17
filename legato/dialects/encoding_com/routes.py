"""Encoding.com's API: one endpoint (``POST /`` and ``POST /encoding/``) for every action.

The query comes as the form parameter ``xml`` or ``json``, or as the raw body; it carries
``userid`` (a Legato API key's numeric id) and ``userkey`` (that key's secret). Media = run;
a format = a top-level step, or each item of a ``foreach`` step. Every answer, errors
included, is HTTP 200 in the format the query came in.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from legato import __version__
from legato.dialects.encoding_com.media import STATE_WORDS, STEP_WORDS, media_node, scalar
from legato.dialects.encoding_com.render import (
    MEDIA_TYPES,
    Node,
    error_node,
    render,
    vendor_date,
)
from legato.http.credentials import Credentials, principal_of
from legato.http.xml import parse_xml
from legato.model.errors import Conflict, LegatoError, NotFound, Unauthorized
from legato.model.filters import RunFilter
from legato.model.ids import parse_id
from legato.model.reads import RunHead
from legato.model.starts import StartRun
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["STATE_WORDS", "STEP_WORDS", "WORKFLOW", "router"]

router = APIRouter(tags=["dialect: encoding.com"])

#: The workflow that ``AddMedia`` starts in the caller's namespace.
WORKFLOW = "encoding-com"

T = TypeVar("T")
#: Makes something of a run at one version.
Make = Callable[[RunHead], Awaitable[T]]

_MAX_BODY = 1_000_000
_MAX_IDS = 100


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
    if isinstance(node, bytes):  # rendered already, in the query's format
        return Response(node, media_type=MEDIA_TYPES[as_json])
    body, media_type = render(node, as_json)
    return Response(body, media_type=media_type)


async def _authenticate(request: Request, query: Query) -> Principal:
    userid, userkey = query.text("userid"), query.text("userkey")
    if not userid or not userkey:
        raise QueryError("Wrong user id or key: 'userid' and 'userkey' are required")
    try:
        tenancy = request.app.state.legato.tenancy
        principal = await principal_of(Credentials(api_key=userkey), tenancy)
    except Unauthorized:
        raise QueryError("Wrong user id or key") from None
    if str(principal.key_id) != userid:
        raise QueryError("Wrong user id or key")
    return principal


async def _dispatch(request: Request, query: Query) -> Node | bytes:
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


async def _head(legato: Services, p: Principal, media_id: int) -> RunHead:
    try:
        return await legato.status.head(p, media_id)
    except NotFound:
        raise QueryError(f"Media ID {media_id} not found") from None


async def _kept(legato: Services, p: Principal, media_id: int, key: Hashable, make: Make[T]) -> T:
    """What ``make`` makes of the media now, kept with the run's version as the native reads
    keep their bodies."""
    head = await _head(legato, p, media_id)
    try:
        return await legato.status.kept(head, key, lambda: make(head))
    except NotFound:  # deleted meanwhile
        raise QueryError(f"Media ID {media_id} not found") from None


# -- GetStatus -------------------------------------------------------------------------------


async def get_status(legato: Services, p: Principal, query: Query) -> Node | bytes:
    """The media asked for; one media (the poll) is answered already rendered."""
    ids = _media_ids(query)
    task_status = query.flag("include_task_status")

    async def media(head: RunHead) -> Node:
        return await media_node(legato, p, head, task_status=task_status)

    if len(ids) == 1 and not query.flag("extended"):

        async def rendered(head: RunHead) -> bytes:
            return render(await media(head), query.as_json)[0]

        one = ("encoding.com", "GetStatus", p.key_id, task_status, query.as_json)
        return await _kept(legato, p, ids[0], one, rendered)
    each = ("encoding.com", "media", p.key_id, task_status)
    return [("job", await _kept(legato, p, media_id, each, media)) for media_id in ids]


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
    await _cancel_each(legato, p, _media_ids(query))
    return [("message", "Deleted")]


async def stop_media(legato: Any, p: Principal, query: Query) -> Node:
    """Stops the media (its run is cancelled; what its steps saved stays saved)."""
    await _cancel_each(legato, p, _media_ids(query))
    return [("message", "Stopped")]


async def _cancel_each(legato: Any, p: Principal, media_ids: list[int]) -> None:
    for media_id in media_ids:
        await _run(legato, p, media_id)
        try:
            await legato.runs.cancel(p, media_id)
        except Conflict:
            raise QueryError(f"Media ID {media_id} has already finished") from None


async def restart_media(legato: Any, p: Principal, query: Query) -> Node:
    """Restarts a media that ended in error, from its failed tasks (a Legato retry)."""
    for media_id in _media_ids(query):
        run = await _run(legato, p, media_id)
        try:
            await legato.runs.retry(p, media_id)
        except Conflict:
            word = STATE_WORDS[str(run["status"])]
            raise QueryError(f"Media ID {media_id} can not be restarted: it is {word}") from None
    return [("message", "Restarted")]


def _info_fields(run: dict[str, Any]) -> Node:
    outputs: dict[str, Any] = run.get("outputs") or {}
    nested = outputs.get("media_info")
    info: dict[str, Any] = nested if isinstance(nested, dict) else outputs
    return [(str(k), scalar(v)) for k, v in info.items() if not isinstance(v, dict | list)]


async def get_media_info(legato: Any, p: Principal, query: Query) -> Node:
    [media_id] = _media_ids(query)[:1]
    return _info_fields(await _run(legato, p, media_id))


async def get_media_info_ex(legato: Any, p: Principal, query: Query) -> Node:
    """The media as GetStatus shows it (with its tasks' log), then GetMediaInfo's fields in a
    ``mediainfo`` block."""
    [media_id] = _media_ids(query)[:1]
    head = await _head(legato, p, media_id)
    run = await legato.status.run(p)(head).body()
    node = await media_node(legato, p, head, task_status=True)
    return [*node, ("mediainfo", _info_fields(run))]


async def get_user_info(legato: Any, p: Principal, query: Query) -> Node:
    """The asking key: its id, name, namespace and role."""
    return [
        ("userid", str(p.key_id)),
        ("name", p.name),
        ("namespace", p.namespace),
        ("role", p.role),
        ("version", __version__),
    ]


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
    sort = query.text("sort").lower() or "id"  # the vendor's default: ascending media id
    key = {"id": "id", "mediaid": "id", "status": "status"}.get(sort, "created_at")
    runs.sort(key=lambda r: (r[key] or "", r["id"]), reverse=query.text("order").lower() == "desc")
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
                    ("mediafile", scalar((run.get("inputs") or {}).get("source"))),
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
    "getmediainfoex": get_media_info_ex,
    "stopmedia": stop_media,
    "restartmedia": restart_media,
    "getuserinfo": get_user_info,
}
