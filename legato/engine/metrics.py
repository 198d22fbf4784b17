"""What the engine measures as it works, for ``/metrics`` (Prometheus)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "CLAIM_SECONDS",
    "COMPLETE_SECONDS",
    "REGISTRY",
    "RUNS",
    "STEPS_WAITING",
    "STEP_RESULTS",
    "STEP_SECONDS",
]

REGISTRY = CollectorRegistry(auto_describe=True)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

CLAIM_SECONDS = Histogram(
    "legato_claim_seconds",
    "Time to claim a batch of ready steps",
    buckets=_FAST,
    registry=REGISTRY,
)
COMPLETE_SECONDS = Histogram(
    "legato_complete_seconds",
    "Time to record a batch of results and advance their runs",
    buckets=_FAST,
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "legato_step_seconds",
    "Duration of step attempts run by this process",
    ["kind"],
    buckets=(0.005, 0.05, 0.25, 1, 5, 30, 120, 600, 3600),
    registry=REGISTRY,
)
STEP_RESULTS = Counter(
    "legato_step_results_total",
    "Step attempts ended in this process, by outcome",
    ["status"],
    registry=REGISTRY,
)
RUNS = Gauge(
    "legato_runs",
    "Runs in the store by namespace and state",
    ["namespace", "status"],
    registry=REGISTRY,
)
STEPS_WAITING = Gauge(
    "legato_steps_ready", "Steps ready to run and not yet claimed (queue depth)", registry=REGISTRY
)
