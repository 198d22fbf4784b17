"""No-IO state machines shared by both clients: paging runs, following logs, waiting.

Each tells its client which call to send next and how long to sleep; the clients do the IO.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from legato.client._base import API, Call, RunId, list_runs, log_params, ndjson, seg
from legato.client._errors import connection_error
from legato.client._models import LogLine, Run, RunPage

__all__ = ["LogFollow", "RunPager", "RunWaiter"]


class RunPager:
    """Follows ``next_page_token`` across pages of ``GET /runs``."""

    def __init__(self, filters: Mapping[str, Any], page_token: str | None = None) -> None:
        self._filters = dict(filters)
        self._token = page_token
        self._seen: set[str] = set()
        self.done = False

    def call(self) -> Call[RunPage]:
        return list_runs(**self._filters, page_token=self._token)

    def advance(self, page: RunPage) -> list[Run]:
        """Record a page; returns its runs. ``done`` turns true on the last page."""
        token = page.next_page_token
        if not token or token in self._seen:  # a repeated token would loop forever
            self.done = True
        else:
            self._seen.add(token)
            self._token = token
        return page.runs


class LogFollow:
    """Follows a run's NDJSON log stream, resuming after the last seen ``seq`` on reconnect.

    Feed the bytes of each streamed answer to :meth:`feed`; call :meth:`finish` when the stream
    ended normally and :meth:`dropped` when it broke (it returns the delay before reconnecting,
    or raises once the connection keeps failing without progress).
    """

    def __init__(
        self,
        run_id: RunId,
        step: str | None = None,
        after: int | None = None,
        *,
        max_reconnects: int = 10,
    ) -> None:
        self.run_id = run_id
        self.step = step
        self.after = after
        self.max_reconnects = max_reconnects
        self.failures = 0
        self.connected = False
        self._buffer = b""

    def call(self) -> Call[None]:
        return Call(
            "GET",
            f"{API}/runs/{seg(self.run_id)}/logs",
            lambda r: None,
            log_params(self.step, self.after, follow=True),
            headers={"Accept": "application/x-ndjson"},
            stream=True,
        )

    def opened(self) -> None:
        """Note a successful (2xx) answer; the caller raises error answers itself."""
        self.connected = True
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[LogLine]:
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        return self._accept(complete)

    def finish(self) -> list[LogLine]:
        rest, self._buffer = self._buffer, b""
        return self._accept([rest])

    def dropped(self, exc: httpx.TransportError, base_url: str) -> float:
        """Delay before reconnecting after ``exc``; raises if reconnecting is pointless."""
        self._buffer = b""  # a partial line is sent again after the reconnect
        self.failures += 1
        if not self.connected or self.failures > self.max_reconnects:
            raise connection_error(exc, base_url)
        return 0.0 if self.failures == 1 else min(0.25 * 2 ** (self.failures - 2), 5.0)

    def _accept(self, lines: list[bytes]) -> list[LogLine]:
        out: list[LogLine] = []
        for data in ndjson(lines):
            line = LogLine.from_json(data)
            if "seq" in data and self.after is not None and line.seq <= self.after:
                continue  # already delivered before a reconnect
            if "seq" in data:
                self.after = line.seq
            out.append(line)
        if out:
            self.failures = 0
        return out


class RunWaiter:
    """Decides when polling a run is over (terminal status) or has taken too long."""

    def __init__(
        self,
        run_id: RunId,
        poll_interval: float,
        timeout: float | None,
        now: Callable[[], float],
    ) -> None:
        self.run_id = run_id
        self.poll_interval = max(poll_interval, 0.0)
        self._now = now
        self._deadline = None if timeout is None else now() + timeout
        self._timeout = timeout

    def finished(self, run: Run) -> bool:
        """True when ``run`` is terminal; raises ``TimeoutError`` once the deadline passed."""
        if run.is_terminal:
            return True
        if self._deadline is not None and self._now() >= self._deadline:
            raise TimeoutError(f"run {self.run_id} is still {run.status} after {self._timeout:g}s")
        return False

    def delay(self) -> float:
        if self._deadline is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, self._deadline - self._now()))
