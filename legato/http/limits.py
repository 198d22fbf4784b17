"""Request body limits, enforced before any route reads a body: from ``Content-Length`` when
the client sends one, and while the body streams in (chunked uploads) otherwise.

Pure ASGI, so that a refused upload costs neither a read nor a parse."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legato.http.problems import problem
from legato.model.ids import parse_id

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DEFINITION_BYTES",
    "BodyLimit",
    "BodyTooLarge",
]

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_DEFINITION_BYTES = 8 << 20
_DEFINITIONS = "/api/v1/workflows/"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes its limit; an ``HTTPException`` so
    that the framework's body parsing lets it through to the problem handlers."""

    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {limit} bytes",
            headers={"Connection": "close"},  # the rest of the body is left unread
        )


class BodyLimit:
    """``max_body`` for every request; ``max_definition`` for ``PUT /api/v1/workflows/…``."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_definition: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_definition = max_definition

    def _limit(self, scope: Scope) -> int:
        if scope["method"] == "PUT" and scope["path"].startswith(_DEFINITIONS):
            return self.max_definition
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = parse_id(value.decode("latin-1"))
                if length is None or length > limit:
                    await _refuse(limit, scope, receive, send)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    # the body is left unread: the connection cannot serve another request
    response = problem(
        413,
        BodyTooLarge.code,
        "Request body too large",
        f"the request body is larger than {limit} bytes",
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)
