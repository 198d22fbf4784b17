"""Shared FastAPI dependencies of the native API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from legato.http.auth import principal
from legato.service.hub import Services
from legato.service.tenancy import Principal

__all__ = ["App", "Caller", "get_services", "parse_run_ref"]

Caller = Annotated[Principal, Depends(principal)]


def get_services(request: Request) -> Services:
    return request.app.state.legato  # type: ignore[no-any-return]


App = Annotated[Services, Depends(get_services)]


def parse_run_ref(run_id: str) -> int | str:
    """A run is named by its integer id or its UUID."""
    return int(run_id) if run_id.isdigit() else run_id
