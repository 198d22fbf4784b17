"""Operations: Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from legato.api.deps import Caller, ServicesDep
from legato.http.strict_json import StrictJSONRoute

router = APIRouter(tags=["operations"], route_class=StrictJSONRoute)


@router.get("/metrics", response_class=Response)
async def metrics(caller: Caller, services: ServicesDep) -> Response:
    """Runs by namespace and state, queue depth, claim/complete latency, step durations."""
    return Response(await services.metrics.render(caller), media_type=CONTENT_TYPE_LATEST)
