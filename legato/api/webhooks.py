"""``/api/v1/webhooks``: subscriptions, the delivery log, redelivery, the signing secret."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from starlette.responses import Response

from legato.api.deps import Caller, DbId, ServicesDep, parse_run_ref
from legato.http.responses import JSONResponse
from legato.http.strict_json import StrictJSONRoute
from legato.model.ids import MAX_ID

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=StrictJSONRoute)
PathId = Annotated[int, Path(ge=0, le=MAX_ID)]


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    event_types: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=50, description="empty: every event; run.* allowed"
    )
    workflows: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=100, description="empty: every workflow"
    )
    secret: str | None = Field(None, min_length=16, max_length=200)
    active: bool = True


@router.post("", status_code=201)
async def create_webhook(body: NewWebhook, caller: Caller, services: ServicesDep) -> JSONResponse:
    view = await services.webhooks.create(
        caller, str(body.url), body.event_types, body.workflows, body.secret, body.active
    )
    return JSONResponse(
        view, status_code=201, headers={"Location": f"/api/v1/webhooks/{view['id']}"}
    )


@router.get("")
async def list_webhooks(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    return {"webhooks": await services.webhooks.list(caller)}


@router.get("/signing-secret")
async def signing_secret(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    """The secret that signs the deliveries to runs' ``notify_url``s of this namespace."""
    return await services.webhooks.signing_secret(caller)


@router.get("/deliveries")
async def deliveries(
    caller: Caller,
    services: ServicesDep,
    run: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    webhook: DbId | None = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 100,
    page_token: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    return await services.webhooks.deliveries(
        caller,
        run=parse_run_ref(run) if run is not None else None,
        status=status,
        webhook_id=webhook,
        page_size=page_size,
        page_token=page_token,
    )


@router.get("/deliveries/{delivery_id}")
async def delivery(delivery_id: PathId, caller: Caller, services: ServicesDep) -> dict[str, Any]:
    return await services.webhooks.delivery(caller, delivery_id)


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(delivery_id: PathId, caller: Caller, services: ServicesDep) -> JSONResponse:
    return JSONResponse(await services.webhooks.redeliver(caller, delivery_id), status_code=202)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: PathId, caller: Caller, services: ServicesDep) -> Response:
    await services.webhooks.delete(caller, webhook_id)
    return Response(status_code=204)
