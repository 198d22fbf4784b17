"""Query specifications the faces build and the store answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RunFilter"]


@dataclass(frozen=True)
class RunFilter:
    namespace_id: int
    statuses: Sequence[str] = ()
    workflow: str | None = None
    requestor: str | None = None
    labels: dict[str, str] | None = None
    created_after: float | None = None
    created_before: float | None = None
    parent_run_id: int | None = None
    top_level_only: bool = False
    schedule_id: int | None = None  # runs a schedule started (at ``fire_time``, if given)
    fire_time: float | None = None
