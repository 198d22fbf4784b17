"""Which format a status resource is answered in: a ``.json``, ``.xml`` or ``.txt`` suffix on
the path, else the ``Accept`` header, else JSON.

:class:`FormatSuffix` is an ASGI middleware: on the paths it is given it strips a format suffix
and records the format in the scope, so one route serves ``/runs/7`` and ``/runs/7.xml``.
:func:`negotiate` picks the format for a resource that offers some of them; anything else is a
406 problem. Problems themselves stay ``application/problem+json`` whatever was asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from legato.http.xml import to_xml
from legato.model.errors import LegatoError

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "FormatSuffix",
    "NotAcceptable",
    "negotiate",
    "render",
    "without_suffix",
]

FORMATS = ("json", "xml", "txt")
#: The media type each format is answered with.
MEDIA_TYPES = {
    "json": "application/json",
    "xml": "application/xml",
    "txt": "text/plain; charset=utf-8",
}
#: The media types of ``Accept`` each format satisfies.
_ACCEPTED = {
    "json": ("application/json",),
    "xml": ("application/xml", "text/xml"),
    "txt": ("text/plain",),
}
SCOPE_KEY = "legato.format"
_SUFFIX = re.compile(r"^(?P<path>.+)\.(?P<format>json|xml|txt)$")


class NotAcceptable(LegatoError):
    status, code, title = 406, "not_acceptable", "Not acceptable"


def without_suffix(scope: Scope, patterns: Iterable[re.Pattern[str]]) -> Scope:
    """``scope`` with a ``.json``/``.xml``/``.txt`` suffix taken off its path (and the format
    noted under :data:`SCOPE_KEY`) when the path without it fully matches one of
    ``patterns``; else ``scope`` itself."""
    found = _SUFFIX.match(scope["path"])
    if found is None:
        return scope
    root = scope.get("root_path", "")
    route = found["path"]
    if root and route.startswith(root):
        route = route[len(root) :]
    if not any(p.fullmatch(route) for p in patterns):
        return scope
    fmt = found["format"]
    scope = dict(scope)
    scope["path"] = found["path"]
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw.endswith(f".{fmt}".encode()):
        scope["raw_path"] = raw[: -len(fmt) - 1]
    scope[SCOPE_KEY] = fmt
    return scope


class FormatSuffix:
    """Strips ``.json``/``.xml``/``.txt`` from GET and HEAD paths that match one of
    ``patterns`` (full matches, tried on the path without its suffix)."""

    def __init__(self, app: ASGIApp, patterns: Iterable[str]) -> None:
        self.app = app
        self.patterns = [re.compile(p) for p in patterns]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            scope = without_suffix(scope, self.patterns)
        await self.app(scope, receive, send)


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    out = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        kind, sep, sub = media.lower().partition("/")
        if not sep or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((kind, sub, q))
    return out


def _score(media: str, ranges: list[tuple[str, str, float]]) -> tuple[float, int]:
    """The q of the most specific range that matches ``media``, with that specificity."""
    kind, _, sub = media.partition("/")
    best: tuple[float, int] = (0.0, -1)
    for r_kind, r_sub, q in ranges:
        if (r_kind, r_sub) == (kind, sub):
            specificity = 2
        elif r_kind == kind and r_sub == "*":
            specificity = 1
        elif (r_kind, r_sub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (q, specificity)
    return best


def negotiate(request: Request, offered: Sequence[str]) -> str:
    """The format of ``offered`` (in the server's order of preference) to answer in."""
    asked = request.scope.get(SCOPE_KEY)
    if asked is not None:
        if asked not in offered:
            raise NotAcceptable(
                f"{request.url.path} is not available as .{asked}; it is as "
                + ", ".join(f".{f}" for f in offered)
            )
        return str(asked)
    accept = request.headers.get("accept", "").strip()
    ranges = _ranges(accept) if accept else []
    if not ranges:
        return offered[0]
    best: tuple[float, int, int] | None = None
    chosen = None
    for index, fmt in enumerate(offered):
        for media in _ACCEPTED[fmt]:
            q, specificity = _score(media, ranges)
            key = (q, specificity, -index)
            if q > 0 and (best is None or key > best):
                best, chosen = key, fmt
    if chosen is None:
        raise NotAcceptable(
            f"{request.url.path} is available as "
            + ", ".join(_ACCEPTED[f][0] for f in offered)
            + f", none of which 'Accept: {accept}' allows"
        )
    return chosen


def render(body: Any, fmt: str, root: str, text: str | None = None) -> bytes:
    """The body in ``fmt``: JSON, XML with ``root`` as root element, or ``text``."""
    if fmt == "xml":
        return to_xml(root, body)
    if fmt == "txt":
        return (text or "").encode()
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
