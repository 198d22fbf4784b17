"""JSON request bodies read strictly, by orjson: a lone surrogate (``"\\ud800"``), a NUL
character, a value nested past orjson's depth limit or an integer past 64 bits is malformed
JSON (422 ``validation_error`` at ``body``) rather than text the store cannot write, a
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
#: JSON's escape of the NUL character, which no text column of PostgreSQL can hold
_NUL = re.compile(rb"\\u0000", re.IGNORECASE)


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value <= 2**63 - 1:
        raise json.JSONDecodeError("integer does not fit in 64 bits", text, 0)
    return value


def _holds_nul(value: Any) -> bool:
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            value = orjson.loads(body)
            if _NUL.search(body) and _holds_nul(value):
                raise json.JSONDecodeError("text holds a NUL character (\\u0000)", "", 0)
            if _LONG_NUMBER.search(body):  # orjson reads integers past 64 bits as floats
                value = json.loads(body, parse_int=_int64)
            self._json = value
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handle(_StrictJSONRequest(request.scope, request.receive))

        return strict
