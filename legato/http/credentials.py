"""Credentials to a principal: the one authentication path of every face.

Each face finds the credentials where its clients put them (headers, query or form
parameters, a field of the body) and hands them to :func:`principal_of`, which decides who
is asking the same way for all of them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Request

from legato.model.errors import Unauthorized
from legato.service.principal import Principal
from legato.service.tenancy import TenancyService

__all__ = [
    "Credentials",
    "basic_credentials",
    "client_address",
    "from_authorization",
    "principal_of",
]


def client_address(request: Request) -> str | None:
    """The peer's address, what failed logins are also counted by (behind a proxy, run
    uvicorn with ``--forwarded-allow-ips`` so that this is the client's)."""
    return request.client.host if request.client else None


@dataclass(frozen=True)
class Credentials:
    """What a request presents: an API key, a user's name and password, or a bearer token
    (a JWT, verified against the JWKS named by ``jwks``, or else an API key)."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    bearer: str | None = None
    jwks: str | None = None  # the GUID of the JWKS a JWT is verified with (``Identifier``)
    address: str | None = None  # the client's, by which failed logins are also counted

    @property
    def empty(self) -> bool:
        return not (self.api_key or self.bearer or self.username is not None)


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


def from_authorization(request: Request) -> Credentials:
    """The ``Authorization`` header (Bearer or Basic) and ``Identifier``; empty without one."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return Credentials(bearer=value, jwks=request.headers.get("identifier"))
    if scheme == "basic" and value:
        username, password = basic_credentials(value)
        return Credentials(username=username, password=password, address=client_address(request))
    return Credentials()


async def principal_of(credentials: Credentials, tenancy: TenancyService) -> Principal:
    """Who presents these credentials; :class:`Unauthorized` when nobody (or none given)."""
    if credentials.api_key:
        return await tenancy.authenticate(credentials.api_key)
    if credentials.username is not None:
        return await tenancy.identity.authenticate_password(
            credentials.username, credentials.password or "", credentials.address
        )
    token = credentials.bearer
    if not token:
        return await tenancy.authenticate(None)
    if credentials.jwks is not None:
        return await tenancy.identity.authenticate_jwt(token, credentials.jwks)
    if token.count(".") == 2 and not token.startswith("lg_"):
        try:
            return await tenancy.identity.authenticate_jwt(token, None)
        except Unauthorized:
            try:  # an API key that merely holds two dots
                return await tenancy.authenticate(token)
            except Unauthorized:
                pass
            raise
    return await tenancy.authenticate(token)
