"""Progress, time left and baselines, from what steps reported and from duration history.

Pure: the service hands in the run's top-level steps and the history of its workflow's steps.
Each unfinished step is expected to take its historical mean (a running step: the rest of it,
corrected by the progress it reports); time left is the longest path of such expectations
through the ``needs`` graph, so parallel branches are not added up.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from legato.model.states import RUN_TERMINAL, STEP_TERMINAL, StepStatus

__all__ = ["Estimate", "StepHistory", "baseline", "estimate", "slower_than_usual"]

DEFAULT_STEP_SECONDS = 1.0  # a step nothing is known about
MIN_SAMPLES = 5  # below this, a baseline is not trusted for "slower than usual"


@dataclass(frozen=True)
class StepHistory:
    count: int
    mean_s: float
    samples: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Estimate:
    percent: float
    time_left_s: float | None
    low_s: float | None
    high_s: float | None
    confidence: str  # high | medium | low


def baseline(history: StepHistory | None) -> dict[str, Any] | None:
    if history is None or not history.samples:
        return None
    ordered = sorted(history.samples)
    p95_index = min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))
    return {
        "p50_ms": round(statistics.median(ordered) * 1000),
        "p95_ms": round(ordered[p95_index] * 1000),
        "samples": len(ordered),
    }


def slower_than_usual(step: Any, history: StepHistory | None, now: float) -> bool:
    """Running longer (or having taken longer) than 95% of its past successful attempts."""
    base = baseline(history)
    if base is None or base["samples"] < MIN_SAMPLES or step.started_at is None:
        return False
    end = step.finished_at if step.finished_at is not None else now
    if step.status not in (StepStatus.RUNNING, StepStatus.SUCCEEDED):
        return False
    return bool((end - step.started_at) * 1000 > base["p95_ms"])


def _expected(key: str, histories: Mapping[str, StepHistory], fallback: float) -> float:
    h = histories.get(key)
    return h.mean_s if h is not None and h.count else fallback


def _remaining(step: Any, expected: float, now: float) -> float:
    if step.status in STEP_TERMINAL:
        return 0.0
    if step.status != StepStatus.RUNNING or step.started_at is None:
        return expected
    elapsed: float = max(0.0, now - float(step.started_at))
    if step.progress and 0.0 < step.progress < 1.0 and elapsed > 0.0:
        progress = float(step.progress)
        return elapsed * (1.0 - progress) / progress  # its own reported rate
    return max(expected - elapsed, 0.1 * expected)


def estimate(
    run_status: str, steps: Sequence[Any], histories: Mapping[str, StepHistory], now: float
) -> Estimate:
    """``steps``: the run's top-level steps; ``histories``: by step key."""
    known = [h.mean_s for h in histories.values() if h.count]
    fallback = statistics.mean(known) if known else DEFAULT_STEP_SECONDS
    expected = {s.key: _expected(s.key, histories, fallback) for s in steps}
    total = sum(expected.values()) or 1.0
    done = 0.0
    for s in steps:
        if s.status in STEP_TERMINAL:
            done += expected[s.key]
        elif s.status == StepStatus.RUNNING:
            fraction = s.progress or 0.0
            if not fraction and s.started_at is not None:
                fraction = min(0.95, max(0.0, now - s.started_at) / max(expected[s.key], 1e-6))
            done += expected[s.key] * min(fraction, 0.99)
    percent = 100.0 if run_status == "SUCCEEDED" else round(min(100.0, 100.0 * done / total), 1)
    samples = [histories[s.key].count if s.key in histories else 0 for s in steps]
    confidence = (
        "high" if samples and min(samples) >= MIN_SAMPLES else "medium" if any(samples) else "low"
    )
    if run_status in RUN_TERMINAL:
        return Estimate(percent, 0.0, 0.0, 0.0, confidence)
    finish: dict[str, float] = {}
    by_key = {s.key: s for s in steps}

    def finish_of(key: str, trail: frozenset[str] = frozenset()) -> float:
        if key in finish:
            return finish[key]
        step = by_key[key]
        start = max(
            (
                finish_of(n, trail | {key})
                for n in (step.needs or [])
                if n in by_key and n not in trail
            ),
            default=0.0,
        )
        finish[key] = start + _remaining(step, expected[key], now)
        return finish[key]

    if any(
        s.kind == "approval" and s.status not in STEP_TERMINAL and s.key not in histories
        for s in steps
    ):
        return Estimate(percent, None, None, None, "low")  # a person decides: no guess
    left = max((finish_of(k) for k in by_key), default=0.0)
    spread = {"high": (0.8, 1.25), "medium": (0.6, 1.6), "low": (0.3, 3.0)}[confidence]
    return Estimate(
        percent, round(left, 3), round(left * spread[0], 3), round(left * spread[1], 3), confidence
    )
