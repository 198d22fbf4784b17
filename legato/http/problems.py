"""RFC 9457 problem+json for every error, each with a stable ``code``; never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from legato.http.responses import ProblemResponse
from legato.model.errors import LegatoError

__all__ = ["install_problem_handlers", "problem"]

log = logging.getLogger("legato.http")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://legato.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or ".".join(str(p) for p in loc)


def _error_path(error: Any) -> str:
    if error["type"] == "json_invalid":  # its loc holds a character offset, not a field
        return "body"
    return _field_path(tuple(error["loc"]))


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(LegatoError)
    async def _legato(_req: Request, exc: LegatoError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        retry_after = getattr(exc, "retry_after", None)  # 429s and 503s say when to come back
        if retry_after:
            headers = {"Retry-After": str(retry_after)}
        return problem(exc.status, exc.code, exc.title, exc.detail, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"path": _error_path(e), "message": e["msg"], "code": e["type"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"path": "", "message": "invalid request"}
        return problem(
            422, "validation_error", "Invalid input", f"{first['path']}: {first['message']}", errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> Response:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        return problem(
            exc.status_code,
            code,
            code.replace("_", " ").capitalize(),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        # the server closes the connection after an unhandled error: say so
        return problem(
            500,
            "internal_error",
            "Internal error",
            "the server met an unexpected error; it has been logged",
            headers={"Connection": "close"},
        )
