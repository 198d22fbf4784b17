"""Steps used by the benchmark workflows."""

from __future__ import annotations

from typing import Any


def noop(**_: Any) -> None:
    """Does nothing: the benchmark measures the engine, not the step."""
    return None
