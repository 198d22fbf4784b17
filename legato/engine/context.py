"""The ``ctx`` a step receives, and the sink that collects what steps report while running."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from legato.engine.outbound import OutboundGuard
from legato.model.step_modules import ModulePolicy
from legato.store.step_reports import StepReports

__all__ = ["StepContext", "StepLogger", "StepReportSink"]


class StepReportSink:
    """Thread-safe buffer of logs, progress, carried values and resources; the worker drains it
    into the database in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = StepReports()
        self.has_data = threading.Event()

    def take(self) -> StepReports:
        with self._lock:
            self.has_data.clear()
            return self._pending.take()

    def log(
        self, run_id: int, step_id: int, step_key: str, attempt: int, level: str, message: str
    ) -> None:
        with self._lock:
            self._pending.logs.append(
                {
                    "run_id": run_id,
                    "step_id": step_id,
                    "step_key": step_key,
                    "attempt": attempt,
                    "level": level,
                    "message": message,
                    "time": time.time(),
                }
            )
            self.has_data.set()

    def progress(self, run_id: int, step_id: int, fraction: float, message: str | None) -> None:
        with self._lock:
            self._pending.progress[step_id] = (run_id, fraction, message)
            self._pending.points.append(
                {
                    "run_id": run_id,
                    "step_id": step_id,
                    "fraction": fraction,
                    "message": message,
                    "time": time.time(),
                }
            )
            self.has_data.set()

    def var(self, run_id: int, step_id: int, name: str, value: Any) -> None:
        with self._lock:
            self._pending.vars.append((run_id, step_id, name, value))
            self.has_data.set()

    def resource(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._pending.resources.append(row)
            self.has_data.set()


class StepLogger:
    """``ctx.log``: the familiar logger methods, each line stored with the step."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx

    def _emit(self, level: str, message: str, *args: Any) -> None:
        text = message % args if args else str(message)
        c = self._ctx
        c.sink.log(c.run_id, c.step_id, c.step_key, c.attempt, level, text)

    def debug(self, message: str, *args: Any) -> None:
        self._emit("DEBUG", message, *args)

    def info(self, message: str, *args: Any) -> None:
        self._emit("INFO", message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self._emit("WARNING", message, *args)

    def error(self, message: str, *args: Any) -> None:
        self._emit("ERROR", message, *args)

    def __call__(self, message: str, *args: Any) -> None:
        self._emit("INFO", message, *args)


class StepContext:
    """What a running step can see and report. Safe to use from threads."""

    def __init__(
        self,
        sink: StepReportSink,
        *,
        run_id: int,
        step_id: int,
        step_key: str,
        attempt: int,
        item: Any = None,
        modules: ModulePolicy | None = None,
        outbound: OutboundGuard | None = None,
    ) -> None:
        self.sink = sink
        self.run_id = run_id
        self.step_id = step_id
        self.step_key = step_key
        self.attempt = attempt
        self.item = item
        #: the modules this step's namespace may call (none unless the worker says so)
        self.modules = modules or ModulePolicy()
        #: the installation's rule for outbound requests (public addresses only by default)
        self.outbound = outbound or OutboundGuard()
        # Stable across attempts, so a step can make its side effects idempotent.
        self.idempotency_key = f"legato-{run_id}-{step_key}"
        self.cancelled = threading.Event()  # for the step's own code, also in threads
        self.cancel_requested = asyncio.Event()  # for the engine's kinds, on the loop
        self.log = StepLogger(self)

    def cancel(self) -> None:
        """Called by the worker on the event loop when the run is canceled or times out."""
        self.cancelled.set()
        self.cancel_requested.set()

    def progress(self, fraction: float, details: str | None = None) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        self.sink.progress(self.run_id, self.step_id, fraction, details)

    def set_var(self, name: str, value: Any) -> None:
        self.sink.var(self.run_id, self.step_id, name, value)

    def add_resource(
        self,
        type: str,
        id: str,
        action_result: str = "CREATED",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.sink.resource(
            {
                "run_id": self.run_id,
                "step_id": self.step_id,
                "type": type,
                "resource_id": str(id),
                "action_result": action_result,
                "metadata": metadata,
            }
        )
