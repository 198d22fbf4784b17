"""The hottest native reads, answered without the framework's routing and dependency solving.

Pollers ask "where does this run stand?" thousands of times a second; for ``GET`` of a run, of
the top level of its steps and of one step (any format, by suffix or ``Accept``, conditional or
not, long-polled with ``?wait=`` or not), :func:`native_answer` does what the routes do — the
same authentication, negotiation and :meth:`StatusQuery.answer` — minus the framework's
per-request machinery, which costs more than the read itself. The list of runs takes the same
shortcut (``list_path``). It answers None for anything else (another path or parameter, a
credential other than an API key, whose failure would count towards a lockout twice): the
routes then answer it, as they do when this raises before sending anything.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import Scope

from legato.api.deps import parse_run_ref
from legato.api.list_path import LIST_PATH, asked_with_api_key, list_answer
from legato.api.status import SUFFIXED, StatusQuery, run_resource, step_resource, steps_resource
from legato.http.negotiation import without_suffix
from legato.http.watch import parse_etags, parse_wait

__all__ = ["native_answer"]

_PATH = re.compile(r"^/api/v1/runs/(?P<run>[^/:]+)(?:/steps(?:/(?P<step>[^/]+))?)?$")
_SUFFIXED = [re.compile(p) for p in SUFFIXED]


def _wait(query: bytes) -> str | None:
    """The ``wait`` of a query string that holds nothing else ("" without one); None for any
    other query, which the routes validate."""
    if not query:
        return ""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "wait":
        return None
    return pairs[0][1]


async def native_answer(scope: Scope) -> Response | None:
    """The route's answer to the ``GET`` in ``scope``, or None to leave it to the routes."""
    if scope["path"] == LIST_PATH:
        return await list_answer(scope)
    scope = without_suffix(scope, _SUFFIXED)
    found = _PATH.match(scope["path"])
    if found is None or parse_run_ref(found["run"]) == "-":
        return None
    wait = _wait(scope["query_string"])
    if wait is None:
        return None
    asked = await asked_with_api_key(scope)
    if asked is None:
        return None
    request, services, caller = asked
    tags = parse_etags(request.headers.get("if-none-match"))
    status = StatusQuery(request, caller, services, parse_wait(wait), tags)
    run_id, step = found["run"], found["step"]
    if scope["path"].endswith("/steps"):
        return await steps_resource(status, run_id, None)
    if step is not None:
        return await step_resource(status, run_id, step)
    return await run_resource(status, run_id)
