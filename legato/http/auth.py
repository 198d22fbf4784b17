"""Who is asking: the API key in ``Authorization: Bearer``, resolved to a principal."""

from __future__ import annotations

from fastapi import Request

from legato.service.tenancy import Principal

__all__ = ["bearer_token", "principal"]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def principal(request: Request) -> Principal:
    """FastAPI dependency for every endpoint except health."""
    legato = request.app.state.legato
    return await legato.tenancy.authenticate(bearer_token(request))  # type: ignore[no-any-return]
