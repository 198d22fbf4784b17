"""Who is asking, decided by the shape of the request:

- ``Authorization: Bearer <JWT>`` with an ``Identifier: <GUID>`` header (or a bearer token
  that is a JWT): a token verified against the JWKS registered under that identifier;
- ``Authorization: Bearer <api key>``: an API key;
- ``Authorization: Basic …``: a user and password;
- ``login`` and ``password`` query parameters (clients that send nothing else): a user;
- none of these, but the dashboard's session cookie: whoever signed in (see ``session``).

Every failure is a 401 problem with a stable code, never a 500.
"""

from __future__ import annotations

from fastapi import Request

from legato.http.credentials import (
    Credentials,
    basic_credentials,
    client_address,
    from_authorization,
    principal_of,
)
from legato.http.session import session_principal
from legato.service.principal import Principal
from legato.service.tenancy import TenancyService

__all__ = ["basic_credentials", "bearer_token", "client_address", "principal"]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(request: Request, tenancy: TenancyService) -> Principal:
    credentials = from_authorization(request)
    if not request.headers.get("authorization", "").strip():
        login = request.query_params.get("login")
        secret = request.query_params.get("password")
        if login is not None and secret is not None:
            credentials = Credentials(
                username=login, password=secret, address=client_address(request)
            )
    if credentials.empty:
        from_session = await session_principal(request)
        if from_session is not None:
            return from_session
    return await principal_of(credentials, tenancy)


async def principal(request: Request) -> Principal:
    """FastAPI dependency for every endpoint except health."""
    return await authenticate(request, request.app.state.legato.tenancy)
