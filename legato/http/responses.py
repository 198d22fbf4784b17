"""Fast JSON and NDJSON responses (orjson)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import StreamingResponse

__all__ = ["JSONResponse", "NDJSONStream", "ProblemResponse", "render_json"]


def render_json(content: Any) -> bytes:
    """JSON as every JSON answer writes it."""
    try:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # what orjson cannot write (a lone surrogate echoed in a message, an integer
        # past 64 bits) is still answered, escaped by the standard encoder
        return json.dumps(content, default=str, separators=(",", ":")).encode()


class JSONResponse(StarletteJSONResponse):
    """A JSON answer (a JSON response class, so that the API description says JSON)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return render_json(content)


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"


def NDJSONStream(items: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for item in items:
            yield orjson.dumps(item) + b"\n"

    return StreamingResponse(
        body(),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
