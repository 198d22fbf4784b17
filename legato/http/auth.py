"""Who is asking, decided by the shape of the request:

- ``Authorization: Bearer <JWT>`` with an ``Identifier: <GUID>`` header (or a bearer token
  that is a JWT): a token verified against the JWKS registered under that identifier;
- ``Authorization: Bearer <api key>``: an API key;
- ``Authorization: Basic …``: a user and password;
- ``login`` and ``password`` query parameters (clients that send nothing else): a user;
- the dashboard's session cookie (with its CSRF header on anything but a read).

Every failure is a 401 problem with a stable code, never a 500; passwords guessed too often are
refused for a while with 429 ``too_many_attempts`` and ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from legato.http.session import session_principal
from legato.model.errors import Unauthorized
from legato.service.tenancy import Principal, TenancyService

__all__ = ["basic_credentials", "bearer_token", "client_address", "principal"]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def client_address(request: Request) -> str | None:
    """The peer's address, what failed logins are also counted by (behind a proxy, run
    uvicorn with ``--forwarded-allow-ips`` so that this is the client's)."""
    return request.client.host if request.client else None


def basic_credentials(value: str) -> tuple[str, str]:
    """The user name and password of an HTTP Basic header's value (RFC 7617)."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthorized(
            "malformed Basic credentials: expected base64 of user:password"
        ) from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials: expected base64 of user:password")
    return username, password


async def authenticate(request: Request, tenancy: TenancyService) -> Principal:
    header = request.headers.get("authorization", "").strip()
    if header:
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            identifier = request.headers.get("identifier")
            if identifier is not None:
                return await tenancy.identity.authenticate_jwt(value, identifier)
            if value.count(".") == 2 and not value.startswith("lg_"):
                try:
                    return await tenancy.identity.authenticate_jwt(value, None)
                except Unauthorized:
                    try:  # an API key that merely holds two dots
                        return await tenancy.authenticate(value)
                    except Unauthorized:
                        pass
                    raise
            return await tenancy.authenticate(value)
        if scheme == "basic" and value:
            username, password = basic_credentials(value)
            return await tenancy.identity.authenticate_password(
                username, password, client_address(request)
            )
        return await tenancy.authenticate(None)
    login = request.query_params.get("login")
    secret = request.query_params.get("password")
    if login is not None and secret is not None:
        return await tenancy.identity.authenticate_password(login, secret, client_address(request))
    from_session = await session_principal(request)
    if from_session is not None:
        return from_session
    return await tenancy.authenticate(None)


async def principal(request: Request) -> Principal:
    """FastAPI dependency for every endpoint except health."""
    return await authenticate(request, request.app.state.legato.tenancy)
