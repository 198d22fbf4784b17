"""The threads a worker's synchronous python steps run on.

``loop.run_in_executor`` costs, for every call, a ``concurrent.futures.Future`` with its
condition variable, a chained asyncio future, and one write to the event loop's self-pipe to
say it is done; with no-op steps that hand-off was a tenth of the engine's CPU. Here a call is
a queue item and its answer goes back in a deque that the loop empties in one go: the pipe is
written only when no emptying is due yet, so steps ending together wake the loop once. No
lock is taken on the way: a thread that held one could lose the interpreter to another and
keep the loop waiting for it (the loop waited in ``run`` for a tenth of a long chain's time).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["StepThreads"]

T = TypeVar("T")

_Call = tuple[asyncio.Future[Any], Callable[[], Any]]
_Answer = tuple[asyncio.Future[Any], Any, Exception | None]


class StepThreads:
    """Up to ``size`` threads, started as calls need them, for one event loop."""

    def __init__(self, size: int, name: str = "legato-step") -> None:
        self._size = max(1, size)
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # calls not answered yet; only the loop's thread changes it
        self._answers: deque[_Answer] = deque()  # appended by the threads, emptied by the loop
        self._delivery_due = False  # an emptying is scheduled and has not begun
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn()`` on one of the threads; its answer (or exception) through the future."""
        if self._closed:
            raise RuntimeError("the step threads are shut down")
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        self._pending += 1
        if self._pending > len(self._threads) and len(self._threads) < self._size:
            self._start_thread()
        self._calls.put((future, fn))
        return future

    def shutdown(self) -> None:
        """No new calls, and none of those still queued (their futures are cancelled); each
        thread ends after the call it is running. Called on the loop's thread."""
        self._closed = True
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                call[0].cancel()
        for _ in self._threads:
            self._calls.put(None)

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"{self._name}_{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            future, fn = call
            try:
                answer: _Answer = (future, fn(), None)
            except Exception as exc:
                answer = (future, None, exc)
            except BaseException as exc:  # SystemExit and the like end the step, not the loop
                answer = (future, None, RuntimeError(f"the step raised {type(exc).__name__}"))
            del call, future, fn
            self._answers.append(answer)
            if not self._delivery_due and self._loop is not None:
                self._delivery_due = True  # two threads may both schedule one: harmless
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _deliver(self) -> None:
        # cleared before emptying: an answer added after this is emptied now or wakes anew
        self._delivery_due = False
        answers = self._answers
        while answers:
            future, value, exc = answers.popleft()
            self._pending -= 1
            if future.cancelled():
                continue
            if exc is None:
                future.set_result(value)
            elif isinstance(exc, StopIteration):  # a future cannot hold one
                future.set_exception(RuntimeError("the step raised StopIteration"))
            else:
                future.set_exception(exc)
