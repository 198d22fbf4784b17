"""Administration: API keys, namespaces, workers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from legato.api.deps import App, Caller
from legato.http.responses import JSONResponse
from legato.http.strict_json import StrictJSONRoute
from legato.service.views import iso

router = APIRouter(prefix="/api/v1", tags=["administration"], route_class=StrictJSONRoute)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: str = Field("operator", pattern="^(viewer|operator|admin)$")
    namespace: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, caller: Caller, app: App) -> JSONResponse:
    view = await app.tenancy.create_key(caller, body.name, body.role, body.namespace)
    view["created_at"] = iso(view["created_at"])
    return JSONResponse(view, status_code=201)


@router.get("/namespaces")
async def namespaces(caller: Caller, app: App) -> dict[str, Any]:
    return {"namespaces": await app.tenancy.namespaces(caller)}


Limit = Field(None, ge=1, le=2**31 - 1, strict=True)  # `true` is no number


class NewNamespace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    max_queued_runs: int | None = Limit
    max_concurrent_runs: int | None = Limit
    retention_days: int | None = Limit


class NamespaceChanges(BaseModel):
    """Only the fields sent change; ``null`` lifts a limit."""

    model_config = ConfigDict(extra="forbid")

    max_queued_runs: int | None = Limit
    max_concurrent_runs: int | None = Limit
    retention_days: int | None = Limit


@router.post("/namespaces", status_code=201)
async def create_namespace(body: NewNamespace, caller: Caller, app: App) -> JSONResponse:
    limits = body.model_dump(exclude={"name"}, exclude_none=True)
    view = await app.tenancy.create_namespace(caller, body.name, limits)
    return JSONResponse(view, status_code=201)


@router.patch("/namespaces/{name}")
async def update_namespace(
    name: str, body: NamespaceChanges, caller: Caller, app: App
) -> JSONResponse:
    changes = body.model_dump(include=body.model_fields_set)
    return JSONResponse(await app.tenancy.update_namespace(caller, name, changes))


@router.get("/workers")
async def workers(caller: Caller, app: App) -> dict[str, Any]:
    caller.require("viewer")
    return {"workers": await app.workers()}
