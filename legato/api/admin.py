"""Administration: API keys, namespaces, workers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from legato.api.deps import Caller, ServicesDep
from legato.http.responses import JSONResponse
from legato.http.strict_json import StrictJSONRoute
from legato.model.ids import MAX_ID
from legato.model.times import iso

router = APIRouter(prefix="/api/v1", tags=["administration"], route_class=StrictJSONRoute)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: str = Field("operator", pattern="^(viewer|operator|admin)$")
    namespace: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")


@router.post("/keys", status_code=201)
async def create_key(body: NewKey, caller: Caller, services: ServicesDep) -> JSONResponse:
    view = await services.tenancy.create_key(caller, body.name, body.role, body.namespace)
    view["created_at"] = iso(view["created_at"])
    return JSONResponse(view, status_code=201)


@router.get("/keys")
async def keys(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    """The API keys the caller administers: never their secrets, a prefix to recognise them."""
    return {"keys": await services.tenancy.keys(caller)}


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(
    key_id: Annotated[int, Path(ge=0, le=MAX_ID)], caller: Caller, services: ServicesDep
) -> Response:
    await services.tenancy.revoke_key(caller, key_id)
    return Response(status_code=204)


@router.get("/namespaces")
async def namespaces(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    return {"namespaces": await services.tenancy.namespaces(caller)}


Limit = Field(None, ge=1, le=2**31 - 1, strict=True)  # `true` is no number
#: Module prefixes (``package`` or ``package.module``) the namespace's python steps may call
#: besides the installation's; set by the installation's admins only.
StepModules = Field(None, max_length=100)


class NewNamespace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    max_queued_runs: int | None = Limit
    max_concurrent_runs: int | None = Limit
    retention_days: int | None = Limit
    step_modules: list[Annotated[str, Field(max_length=200)]] | None = StepModules


class NamespaceChanges(BaseModel):
    """Only the fields sent change; ``null`` lifts a limit."""

    model_config = ConfigDict(extra="forbid")

    max_queued_runs: int | None = Limit
    max_concurrent_runs: int | None = Limit
    retention_days: int | None = Limit
    step_modules: list[Annotated[str, Field(max_length=200)]] | None = StepModules


@router.post("/namespaces", status_code=201)
async def create_namespace(
    body: NewNamespace, caller: Caller, services: ServicesDep
) -> JSONResponse:
    limits = body.model_dump(exclude={"name"}, exclude_none=True)
    view = await services.tenancy.create_namespace(caller, body.name, limits)
    return JSONResponse(view, status_code=201)


@router.patch("/namespaces/{name}")
async def update_namespace(
    name: str, body: NamespaceChanges, caller: Caller, services: ServicesDep
) -> JSONResponse:
    changes = body.model_dump(include=body.model_fields_set)
    return JSONResponse(await services.tenancy.update_namespace(caller, name, changes))


@router.get("/workers")
async def workers(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    caller.require("viewer")
    return {"workers": await services.workers()}
