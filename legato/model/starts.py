"""What a start of a run asks for, whichever face it came through."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StartRun"]


@dataclass(frozen=True)
class StartRun:
    workflow: str
    version: int | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    external_id: str | None = None
    notify_url: str | None = None
    operation_type: str | None = None
    requestor: str | None = None
    idempotency_key: str | None = None
    start_at: float | None = None  # held QUEUED until then
