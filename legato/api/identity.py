"""Identities: users with passwords and the JWKS registered per namespace (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from legato.api.deps import Caller, ServicesDep
from legato.http.responses import JSONResponse
from legato.http.strict_json import StrictJSONRoute
from legato.model.ids import MAX_ID

router = APIRouter(prefix="/api/v1", tags=["administration"], route_class=StrictJSONRoute)

NAMESPACE = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
ROLE = "^(viewer|operator|admin)$"
UserId = Annotated[int, Path(ge=0, le=MAX_ID)]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=200, pattern=r"^[^:\s]+$")
    password: str = Field(min_length=12, max_length=1024)
    role: str = Field("viewer", pattern=ROLE)
    namespace: str | None = Field(None, pattern=NAMESPACE)


class NewJwks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(min_length=32, max_length=38)
    keys: dict[str, Any]
    issuer: str | None = Field(None, min_length=1, max_length=500)
    #: required: the ``aud`` the tokens carry binds them to this namespace
    audience: str = Field(min_length=1, max_length=500)
    required_scope: str | None = Field(None, min_length=1, max_length=200)
    role: str = Field("viewer", pattern=ROLE)
    namespace: str | None = Field(None, pattern=NAMESPACE)


@router.post("/users", status_code=201)
async def create_user(body: NewUser, caller: Caller, services: ServicesDep) -> JSONResponse:
    view = await services.tenancy.identity.create_user(
        caller, body.username, body.password, body.role, body.namespace
    )
    return JSONResponse(view, status_code=201)


@router.get("/users")
async def users(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    return {"users": await services.tenancy.identity.users(caller)}


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: UserId, caller: Caller, services: ServicesDep) -> Response:
    await services.tenancy.identity.delete_user(caller, user_id)
    return Response(status_code=204)


@router.post("/jwks", status_code=201)
async def register_jwks(body: NewJwks, caller: Caller, services: ServicesDep) -> JSONResponse:
    view = await services.tenancy.identity.register_jwks(
        caller,
        body.identifier,
        body.keys,
        role=body.role,
        audience=body.audience,
        issuer=body.issuer,
        required_scope=body.required_scope,
        namespace=body.namespace,
    )
    return JSONResponse(view, status_code=201)


@router.get("/jwks")
async def list_jwks(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    return {"jwks": await services.tenancy.identity.jwks(caller)}


@router.get("/jwks/{identifier}")
async def get_jwks(identifier: str, caller: Caller, services: ServicesDep) -> JSONResponse:
    return JSONResponse(await services.tenancy.identity.get_jwks(caller, identifier))


@router.delete("/jwks/{identifier}", status_code=204)
async def delete_jwks(identifier: str, caller: Caller, services: ServicesDep) -> Response:
    await services.tenancy.identity.delete_jwks(caller, identifier)
    return Response(status_code=204)
