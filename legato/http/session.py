"""The dashboard's session cookie as a way to call the API: a browser page signed in to the
dashboard calls ``/api/v1`` with its cookie, and with the session's CSRF token in the
``X-CSRF-Token`` header on anything but a read."""

from __future__ import annotations

import hmac

from fastapi import Request

from legato.model.errors import Forbidden
from legato.service.principal import Principal
from legato.service.sessions import Session

__all__ = ["CSRF_HEADER", "SESSION_COOKIE", "session_of", "session_principal"]

SESSION_COOKIE = "legato_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def session_of(request: Request) -> Session | None:
    """The session of the request's cookie; None without one (401 when it is not valid)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    session: Session = await request.app.state.legato.sessions.open(token)
    return session


async def session_principal(request: Request) -> Principal | None:
    session = await session_of(request)
    if session is None:
        return None
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise Forbidden(
                f"missing or wrong {CSRF_HEADER} header for this session", code="csrf_failed"
            )
    return session.principal
