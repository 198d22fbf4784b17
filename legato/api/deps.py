"""Shared FastAPI dependencies of the native API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from legato.http.auth import principal
from legato.model.ids import MAX_ID, parse_id
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["Caller", "ServicesDep", "get_services", "parse_run_ref"]

#: Integer query parameters that fit the store (64-bit ids, 32-bit versions).
DbId = Annotated[int, Query(ge=0, le=MAX_ID)]
Version = Annotated[int, Query(ge=1, le=2**31 - 1)]

Caller = Annotated[Principal, Depends(principal)]


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain ``def`` dependency on a thread, a hop per request
    return request.app.state.legato  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def parse_run_ref(run_id: str) -> int | str:
    """A run is named by its integer id or its UUID."""
    number = parse_id(run_id)
    if number is not None:
        return number
    # digits of no id a store can hold ('³', 20 digits) name no run: 404 without asking
    return "-" if run_id.isdigit() else run_id
