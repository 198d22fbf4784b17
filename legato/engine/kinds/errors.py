"""The exception a step kind raises to fail with a specific code."""

from __future__ import annotations

__all__ = ["StepFailure"]


class StepFailure(Exception):
    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
