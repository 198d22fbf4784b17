"""Typed errors raised by the client, built from RFC 9457 problem+json answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "ForbiddenError",
    "LegatoConnectionError",
    "LegatoError",
    "NotFoundError",
    "RateLimitedError",
    "ValidationError",
    "connection_error",
    "error_class_for_status",
    "error_from_response",
]


class LegatoError(Exception):
    """An error answer of the Legato API (or a failure to reach it).

    ``status`` is the HTTP status (0 when no answer came), ``code`` the stable snake-case
    problem code, ``detail`` the human-readable explanation and ``errors`` the list of
    problems (dicts with ``path``, ``line``, ``message`` and ``code``) when the server gave one.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int = 0,
        code: str = "error",
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.raw: dict[str, Any] = dict(raw or {})
        super().__init__(detail)

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}" if self.status else self.code
        return f"{prefix}: {self.detail}" if self.detail else prefix

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"detail={self.detail!r}, errors={self.errors!r})"
        )


class AuthenticationError(LegatoError):
    """401: the API key is missing, unknown or revoked."""


class ForbiddenError(LegatoError):
    """403: the API key's role or namespace does not allow the call."""


class NotFoundError(LegatoError):
    """404: no such workflow, run, step or key."""


class ConflictError(LegatoError):
    """409: the call conflicts with the current state (e.g. deleting an unfinished run)."""


class ValidationError(LegatoError):
    """422 or 400: the request or a workflow definition is invalid; see ``errors``."""


class RateLimitedError(LegatoError):
    """429: a queue or rate limit was reached; ``retry_after`` is in seconds when known."""

    retry_after: float | None = None


class LegatoConnectionError(LegatoError):
    """The server could not be reached (connection refused, DNS, timeout, dropped answer)."""

    def __init__(self, detail: str, *, url: str, reason: str = "") -> None:
        super().__init__(detail, status=0, code="connection_error")
        self.url = url
        self.reason = reason or detail


_BY_STATUS: dict[int, type[LegatoError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_class_for_status(status: int) -> type[LegatoError]:
    """The exception class for an HTTP error status."""
    return _BY_STATUS.get(status, LegatoError)


# --- parsing error answers ------------------------------------------------------------------

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "queue_limit",
}


def _problems(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    problems: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        problem = dict(item)
        if "path" not in problem and isinstance(item.get("loc"), list):  # FastAPI's shape
            problem["path"] = ".".join(str(part) for part in item["loc"])
        if "message" not in problem and "msg" in item:
            problem["message"] = item["msg"]
        problems.append(problem)
    return problems


def error_from_response(response: httpx.Response) -> LegatoError:
    """The typed exception for an error answer (its body must have been read)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    data: dict[str, Any] = dict(body) if isinstance(body, Mapping) else {}
    detail = data.get("detail")
    errors = _problems(data.get("errors"))
    if isinstance(detail, list):  # a validation answer that was not turned into problem+json
        errors = errors or _problems(detail)
        detail = None
    title = data.get("title")
    text = detail or title or response.text.strip()[:500] or response.reason_phrase
    code = data.get("code") or _DEFAULT_CODES.get(status) or f"http_{status}"
    exc = error_class_for_status(status)(
        str(text),
        status=status,
        code=str(code),
        title=str(title) if title else None,
        errors=errors,
        raw=data,
    )
    if isinstance(exc, RateLimitedError):
        try:
            exc.retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            exc.retry_after = None
    return exc


def connection_error(exc: httpx.TransportError, base_url: str) -> LegatoConnectionError:
    """A transport failure as a :class:`LegatoConnectionError` naming the URL."""
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or "connection refused"
    elif isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    else:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    error = LegatoConnectionError(f"{base_url}: {reason}", url=base_url, reason=reason)
    error.__cause__ = exc
    return error
