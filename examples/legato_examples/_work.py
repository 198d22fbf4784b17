"""Simulated work shared by the example steps: short pauses that report progress and stop
promptly when the run is canceled."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from legato.engine.kinds import StepFailure

if TYPE_CHECKING:
    from legato.engine.context import StepContext

__all__ = ["digest", "pause", "simulate"]


def pause(ctx: StepContext, seconds: float, label: str) -> None:
    """Wait ``seconds``; fail the step as canceled if the run is canceled meanwhile.

    Waiting on ``ctx.cancelled`` instead of sleeping lets a canceled run stop the step at once.
    """
    if ctx.cancelled.wait(seconds):
        raise StepFailure("canceled", f"{label}: canceled", retryable=False)


def simulate(ctx: StepContext, seconds: float, label: str, chunks: int = 4) -> None:
    """Spend ``seconds`` in ``chunks`` equal parts, reporting progress after each part."""
    for done in range(1, chunks + 1):
        pause(ctx, seconds / chunks, label)
        ctx.progress(done / chunks, f"{label}: {done * 100 // chunks}%")


def digest(*parts: object, length: int = 10) -> str:
    """A short, stable hex digest of ``parts``: the examples' stand-in for generated ids."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
