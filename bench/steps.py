"""Steps used by the benchmark workflow."""

from __future__ import annotations


def noop() -> None:
    """Does nothing: the benchmark measures the engine, not the step."""
    return None
