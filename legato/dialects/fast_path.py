"""The dialects' status reads, served without the framework's routing and dependency solving.

Dialect clients poll as the native API's do, thousands of times a second. For the status read
of each dialect, the middleware below calls the very endpoint function its route calls, with
the same request, and sends what it answers: the route's answer, minus FastAPI's per-request
machinery (matching the path against every route of the application, solving the endpoint's
parameters), which costs more than the read itself. Every endpoint here answers every error of
its own in its dialect's shape, so nothing it raises is handled differently on either way. Any
other request (another path or method, a body without ``Content-Length``, which the body limit
checks while it streams) goes to the routes. The ``GET`` reads are answered before any
middleware (:func:`dialect_answer`, called by the application itself); Encoding.com's ``POST``
inside the body limit (:class:`DialectFastPath`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from legato.dialects.aspera.routes import PREFIX as ASPERA
from legato.dialects.aspera.routes import call_with_target
from legato.dialects.datasourcesvc.routes import get_orch_run
from legato.dialects.datasourcesvc.routes import router as datasourcesvc
from legato.dialects.encoding_com.routes import endpoint as encoding_com
from legato.dialects.oac.routes import get_work_request
from legato.dialects.oac.routes import router as oac
from legato.dialects.oracle_selfservice.routes import execution_status
from legato.dialects.oracle_selfservice.routes import router as oracle

__all__ = ["SHORTCUTS", "DialectFastPath", "dialect_answer"]

Endpoint = Callable[..., Awaitable[Response]]

#: (method, path, endpoint): the path's named groups are the endpoint's path parameters,
#: matched as the routes match them (a parameter is one path segment).
SHORTCUTS: tuple[tuple[str, re.Pattern[str], Endpoint], ...] = (
    (
        "GET",
        re.compile(rf"^{ASPERA}/(?P<call>work_step_status)/(?P<target>[^/]+)$"),
        call_with_target,
    ),
    ("POST", re.compile(r"^/(?:encoding/)?$"), encoding_com),
    (
        "GET",
        re.compile(rf"^{oac.prefix}/workRequests/(?P<work_request_id>[^/]+)$"),
        get_work_request,
    ),
    ("GET", re.compile(rf"^{oracle.prefix}/executions/status$"), execution_status),
    (
        "GET",
        re.compile(rf"^{datasourcesvc.prefix}/orchrun/(?P<run_id>[^/]+)$"),
        get_orch_run,
    ),
)


def shortcut(scope: Scope) -> tuple[Endpoint, dict[str, Any]] | None:
    """The endpoint that answers this request without routing, and its path parameters."""
    if scope["type"] != "http":
        return None
    method = scope["method"]
    for wanted, path, endpoint in SHORTCUTS:
        if method != wanted:
            continue
        found = path.match(scope["path"])
        if found is None:
            continue
        if method == "POST" and not _sized(scope):
            return None
        return endpoint, found.groupdict()
    return None


def _sized(scope: Scope) -> bool:
    return any(name == b"content-length" for name, _ in scope["headers"])


async def dialect_answer(scope: Scope, receive: Receive) -> Response | None:
    """The answer to a dialect's status read (a ``GET``, which has no body to limit), or None
    for any other request."""
    found = shortcut(scope) if scope["method"] == "GET" else None
    if found is None:
        return None
    endpoint, params = found
    return await endpoint(Request(scope, receive), **params)


class DialectFastPath:
    """The shortcut for what comes with a body (Encoding.com's ``POST``), inside the body
    limit; :func:`dialect_answer` takes the ``GET`` reads before any middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = shortcut(scope)
        if found is None:
            return await self.app(scope, receive, send)
        endpoint, params = found
        response = await endpoint(Request(scope, receive), **params)
        await response(scope, receive, send)
