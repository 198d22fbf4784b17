"""What every call of the Aspera Orchestrator dialect shares: the request (:class:`Call`), its
format, the state words, times, rendering, this API's error body and the lookups by id."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

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
from legato.model.durations import parse_duration
from legato.model.errors import (
    NotFound,
)
from legato.model.ids import parse_id
from legato.service.principal import Principal
from legato.service.services import Services

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
PAGE_DEFAULT, PAGE_MAX = 50, 500
SYNC_WAIT = 60.0  # seconds a synchronous initiate waits at most


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


def split_format(segment: str) -> tuple[str, str | None]:
    stem, dot, ext = segment.rpartition(".")
    if dot and ext.lower() in FORMATS:
        return stem, ext.lower()
    return segment, None


def format_of(request: Request, ext: str | None, params: dict[str, str]) -> str:
    return asked_format(request, ext, params) or "xml"


def asked_format(request: Request, ext: str | None, params: dict[str, str]) -> str | None:
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


def rails_time(iso: str | None) -> Time | None:
    """Legato's ISO time (milliseconds) in this API's ``YYYY-MM-DDTHH:MM:SSZ``."""
    return None if iso is None else Time(iso[:19] + "Z")


def utc_text(iso: str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` (work order documents); empty when unset."""
    return "" if iso is None else f"{iso[:10]} {iso[11:19]} UTC"


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_doc(fmt: str, root: str, doc: Any, status: int = 200) -> Response:
    if fmt == "json":
        body = json.dumps(to_json_data(doc), ensure_ascii=False)
        return Response(body, status_code=status, media_type=MEDIA["json"])
    if fmt == "txt":
        return Response(ruby_text(to_json_data(doc)), status_code=status, media_type=MEDIA["txt"])
    return Response(to_xml(root, doc), status_code=status, media_type=MEDIA["xml"])


def text_answer(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type=MEDIA["txt"])


def failure(fmt: str, status: int, message: str, missing: list[str] | None = None) -> Response:
    """This API's error document: ``{"work_order": {"statusDetails": …},
    "missing_parameters": […]}`` (XML: the same hash, as Rails writes one)."""
    if fmt == "txt":
        return text_answer(message, status)
    doc: Doc = [
        ("work-order", [("statusDetails", message)]),
        ("missing-parameters", Array("missing-parameter", list(missing or []))),
    ]
    if fmt == "json":
        body = {"work_order": {"statusDetails": message}, "missing_parameters": missing or []}
        return Response(json.dumps(body), status_code=status, media_type=MEDIA["json"])
    xml = to_xml("hash", doc)
    return Response(xml, status_code=status, media_type=MEDIA["xml"])


def required(call: Call, *names: str) -> list[str]:
    missing = [n for n in names if not call.params.get(n, "").strip()]
    if missing:
        raise AsperaError(400, f"Missing parameters: {', '.join(missing)}", missing)
    return [call.params[n].strip() for n in names]


def integer_id(text: str, what: str) -> int:
    number = parse_id(text, low=1)
    if number is None:
        raise AsperaError(404, f"{what} {text} not found")
    return number


async def work_order_of(call: Call, ref: str) -> dict[str, Any]:
    run_id = integer_id(ref, "Work order")
    try:
        return await call.app.runs.get(call.principal, run_id)
    except NotFound:
        raise AsperaError(404, f"Work order {run_id} not found") from None


def latest_values(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One value per name, the latest, at the place the name first appeared."""
    by_name: dict[str, dict[str, Any]] = {}
    for v in values:
        by_name[v["name"]] = v
    return list(by_name.values())


def value_doc(v: dict[str, Any]) -> Doc:
    return [
        ("name", v["name"]),
        ("id", v["id"]),
        ("type", value_type(v["value"])),
        ("value", Raw(v["value"])),
    ]


def definition_step(definition: dict[str, Any], key: str) -> dict[str, Any]:
    for step in definition.get("steps") or []:
        if step.get("id") == key:
            return dict(step)
    return {}


def seconds_of(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return round(parse_duration(value))
    except (ValueError, TypeError):
        return None


def wrapped_list(call: Call, root: str, item: str, docs: list[Any]) -> Response:
    """``{root: {item: [...]}}`` in JSON (always a list), ``<root><item/>…</root>`` in XML."""
    if call.fmt == "json":
        body = {root: {item: [to_json_data(d) for d in docs]}}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return render_doc(call.fmt, root, [(item, d) for d in docs])


def render_list(call: Call, root: str, items: Array) -> Response:
    if call.fmt == "json":
        body = json.dumps(to_json_data(items), ensure_ascii=False)
        return Response(body, media_type=MEDIA["json"])
    return Response(to_xml(root, items), media_type=MEDIA["xml"])


def order_json(value: Any) -> Any:
    if isinstance(value, Attr):
        data: dict[str, Any] = dict(value.attrs)
        if isinstance(value.content, list):
            data.update(order_json(value.content))
        else:
            data["value"] = value.content
        return data
    if isinstance(value, list):
        grouped: dict[str, Any] = {}
        for key, child in value:
            if key == "work_step":
                grouped.setdefault(key, []).append(order_json(child))
            else:
                grouped[json_key(key)] = order_json(child)
        return grouped
    return value
