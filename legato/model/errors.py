"""Errors every face renders its own way, each with a stable machine-readable code."""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "LegatoError",
    "NotFound",
    "QueueLimit",
    "TooManyAttempts",
    "Unauthorized",
    "Unavailable",
]


class LegatoError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self, detail: str, *, code: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = errors or []


class Unauthorized(LegatoError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(LegatoError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(LegatoError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(LegatoError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(LegatoError):
    status, code, title = 422, "validation_error", "Invalid input"


class QueueLimit(LegatoError):
    status, code, title = 429, "queue_limit", "Queue limit reached"


class TooManyAttempts(LegatoError):
    """Logins refused for a while (failed too often, or too many at once); ``retry_after``
    is in whole seconds, for the ``Retry-After`` header."""

    status, code, title = 429, "too_many_attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)


class Unavailable(LegatoError):
    """The database cannot be reached (down, restarting, out of connections): try again."""

    status, code, title = 503, "database_unavailable", "Service unavailable"
    retry_after = 5
