"""JSON request bodies read strictly, by orjson: a lone surrogate (``"\\ud800"``), a value
nested past orjson's depth limit or an integer past 64 bits is malformed JSON (422
``validation_error`` at ``body``) rather than text the store cannot write, a
``RecursionError``, or a number quietly turned into another."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["StrictJSONRoute"]


_LONG_NUMBER = re.compile(rb"\d{19}")


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value <= 2**63 - 1:
        raise json.JSONDecodeError("integer does not fit in 64 bits", text, 0)
    return value


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = orjson.loads(body)
            if _LONG_NUMBER.search(body):  # orjson reads integers past 64 bits as floats
                self._json = json.loads(body, parse_int=_int64)
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handle(_StrictJSONRequest(request.scope, request.receive))

        return strict
