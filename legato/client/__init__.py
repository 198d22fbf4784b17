"""Python client of the Legato API, blocking (:class:`Client`) and asyncio (:class:`AsyncClient`).

>>> from legato.client import Client
>>> with Client() as legato:  # doctest: +SKIP
...     run = legato.start_run("hello", {"name": "Ada"})
...     run = legato.wait(run.id)
...     print(run.status, run.outputs)
"""

from __future__ import annotations

from legato.client._async import AsyncClient
from legato.client._base import DEFAULT_URL, DefinitionTextError
from legato.client._errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    LegatoConnectionError,
    LegatoError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from legato.client._models import (
    TERMINAL_STATUSES,
    ApiKey,
    Event,
    LogLine,
    Progress,
    Run,
    RunPage,
    Step,
    Workflow,
)
from legato.client._schedules import Schedule, ScheduleFire
from legato.client._sync import Client

__all__ = [
    "DEFAULT_URL",
    "TERMINAL_STATUSES",
    "ApiKey",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "DefinitionTextError",
    "Event",
    "ForbiddenError",
    "LegatoConnectionError",
    "LegatoError",
    "LogLine",
    "NotFoundError",
    "Progress",
    "RateLimitedError",
    "Run",
    "RunPage",
    "Schedule",
    "ScheduleFire",
    "Step",
    "ValidationError",
    "Workflow",
]
