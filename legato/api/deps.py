"""Shared FastAPI dependencies of the native API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from legato.http.auth import principal
from legato.runtime import Legato
from legato.service.tenancy import Principal

__all__ = ["Caller", "get_legato", "parse_run_ref"]

Caller = Annotated[Principal, Depends(principal)]


def get_legato(request: Request) -> Legato:
    return request.app.state.legato  # type: ignore[no-any-return]


App = Annotated[Legato, Depends(get_legato)]


def parse_run_ref(run_id: str) -> int | str:
    """A run is named by its integer id or its UUID."""
    return int(run_id) if run_id.isdigit() else run_id
