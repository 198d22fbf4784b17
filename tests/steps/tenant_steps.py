"""Steps only some namespaces may call (their admins allow ``tenant_steps``)."""

from __future__ import annotations

from os import getenv  # a step module's imports are not steps: ``tenant_steps:getenv`` is refused


def whoami(tenant: str) -> dict[str, str]:
    return {"tenant": tenant}


def read_setting(name: str) -> dict[str, str | None]:
    """Returns what the worker's environment holds under ``name``."""
    return {"value": getenv(name)}
