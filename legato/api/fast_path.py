"""The hottest reads, served without the framework's routing and dependency solving.

Pollers ask "where does this run stand?" thousands of times a second; for ``GET`` of a run, of
the top level of its steps and of one step (any format, conditional or not), the handler
below does what the routes do — the same authentication, negotiation and
:meth:`StatusQuery.answer` — minus FastAPI's per-request machinery, which costs more than the
read itself. Anything else (another path, a query string such as ``wait=``, any error, the
database being out of reach) goes to the regular routes, which answer it as before: this is only
a shortcut to the same answer. The list of runs takes the same shortcut (``list_path``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from legato.api.deps import parse_run_ref
from legato.api.list_path import LIST_PATH, list_answer
from legato.api.status import StatusQuery, run_resource, step_resource, steps_resource
from legato.http.auth import authenticate
from legato.http.watch import parse_etags

__all__ = ["StatusFastPath"]

_PATH = re.compile(r"^/api/v1/runs/(?P<run>[^/:]+)(?:/steps(?:/(?P<step>[^/]+))?)?$")


class StatusFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        listing = scope["path"] == LIST_PATH
        found = None if listing or scope.get("query_string") else _PATH.match(scope["path"])
        if found is None and not listing:
            return await self.app(scope, receive, send)
        try:
            response = await (list_answer(scope) if found is None else self._answer(scope, found))
        except Exception:  # nothing was sent yet: the regular route answers it, problem and all
            response = None
        if response is None:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, found: re.Match[str]) -> Any:
        request = Request(scope)
        services = scope["app"].state.legato
        caller = await authenticate(request, services.tenancy)
        tags = parse_etags(request.headers.get("if-none-match"))
        status = StatusQuery(request, caller, services, 0.0, tags)
        run_id, step = found["run"], found["step"]
        if parse_run_ref(run_id) == "-":
            return None
        if scope["path"].endswith("/steps"):
            return await steps_resource(status, run_id, None)
        if step is not None:
            return await step_resource(status, run_id, step)
        return await run_resource(status, run_id)
