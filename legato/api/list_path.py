"""``GET /api/v1/runs`` without the framework's routing and parameter solving.

Dashboards and pollers list runs as often as they read one; for a query the route would take
as it is (only its common parameters, each plainly valid), :func:`list_answer` reads the same
filter with the same functions and answers what the route answers. Anything else (another
parameter, a repeated one, an empty or out-of-range value, a credential other than an API key)
answers None, and the route takes the request: its own validation then answers it exactly as
before.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from legato.api.runs import list_response, run_filter
from legato.http.auth import authenticate
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["LIST_PATH", "api_key_only", "asked_with_api_key", "list_answer"]

LIST_PATH = "/api/v1/runs"
#: The parameters taken here, each once at most; ``status`` and ``label`` may repeat.
_SINGLE = frozenset({"workflow", "requestor", "created_after", "created_before", "page_size"})
_SINGLE |= {"page_token"}
_REPEATED = frozenset({"status", "label"})
_MAX_REQUESTOR = 200  # the route's max_length
_MAX_PAGE_SIZE = 500  # the route's le=


def _query(scope: Scope) -> dict[str, Any] | None:
    """The route's parameters as the route would take them; None for a query it must see."""
    # as Starlette reads a query string
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    out: dict[str, Any] = {"status": [], "label": []}
    for key, value in pairs:
        if not value:
            return None
        if key in _REPEATED:
            out[key].append(value)
        elif key in _SINGLE and key not in out:
            out[key] = value
        else:
            return None
    if len(out.get("requestor", "")) > _MAX_REQUESTOR:
        return None
    size = out.get("page_size")
    if size is not None:
        if not (size.isascii() and size.isdigit() and size[0] != "0"):
            return None
        out["page_size"] = int(size)
        if out["page_size"] > _MAX_PAGE_SIZE:
            return None
    return out


def api_key_only(request: Request) -> bool:
    """Whether the request presents an API key and nothing else: the one credential whose
    check has no side effect (a failed password or token counts towards a lockout, and the
    route, which answers whatever this does not, would count it a second time)."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    value = value.strip()
    return (
        scheme.lower() == "bearer"
        and value.startswith("lg_")
        and "identifier" not in request.headers
    )


async def asked_with_api_key(scope: Scope) -> tuple[Request, Services, Principal] | None:
    """The request, the services and who asks, when the request presents an API key and no
    other credential (see :func:`api_key_only`); else None."""
    request = Request(scope)
    if not api_key_only(request):
        return None
    services: Services = scope["app"].state.legato
    return request, services, await authenticate(request, services.tenancy)


async def list_answer(scope: Scope) -> Response | None:
    """The route's answer to the list request in ``scope``, or None to leave it to the route
    (which must then answer it; so must it when this raises)."""
    params = _query(scope)
    if params is None:
        return None
    asked = await asked_with_api_key(scope)
    if asked is None:
        return None
    _request, services, caller = asked
    flt = run_filter(
        caller.namespace_id,
        params["status"],
        workflow=params.get("workflow"),
        requestor=params.get("requestor"),
        label=params["label"],
        created_after=params.get("created_after"),
        created_before=params.get("created_before"),
    )
    return await list_response(
        services, caller, flt, params.get("page_size"), params.get("page_token")
    )
