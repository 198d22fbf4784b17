"""``/api/v1/workflows``: apply a definition (YAML or JSON), list, get."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from legato.api.deps import Caller, ServicesDep, Version
from legato.http.responses import JSONResponse
from legato.http.strict_json import StrictJSONRoute
from legato.model.errors import LegatoError

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], route_class=StrictJSONRoute)


@router.put(
    "/{name}",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def put_workflow(
    name: str, request: Request, caller: Caller, services: ServicesDep
) -> JSONResponse:
    """Store a definition; a changed definition becomes a new version (201), an unchanged one
    answers the current version (200); its size is bounded by ``LEGATO_MAX_DEFINITION_BYTES``."""
    body = await request.body()
    try:
        source = body.decode("utf-8")
    except UnicodeDecodeError:
        raise LegatoError("the definition must be UTF-8 text", code="bad_encoding") from None
    view, created = await services.workflows.apply(caller, source, name)
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("")
async def list_workflows(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    return {"workflows": await services.workflows.list(caller)}


@router.get("/{name}")
async def get_workflow(
    name: str, caller: Caller, services: ServicesDep, version: Version | None = None
) -> JSONResponse:
    return JSONResponse(await services.workflows.get(caller, name, version))
