"""Percentiles and medians shared by the engine's bench and the peers' scripts (stdlib only:
the peers' virtualenvs import it too)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

__all__ = ["median_of", "spread"]


def spread(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of the samples (inclusive method: interpolated between them)."""
    if not samples:
        return {}
    if len(samples) == 1:
        x = float(samples[0])
        return {"p50": x, "p95": x, "p99": x}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": statistics.median(samples), "p95": cuts[94], "p99": cuts[98]}


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the repetitions' figures (None when none was taken)."""
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None
