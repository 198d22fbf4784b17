"""Watchers as light clients: raw HTTP/1.1 on asyncio streams, spread over a few processes.

A full Python HTTP client spends more time per answer than the server does, and on a machine
shared with the server, a thousand answers arriving at once would then measure the client.
These clients only send one request per connection and read its answer (a long-poll's
status, headers and body; a stream's lines until its first ``event: run``), noting when it
was complete (``time.monotonic()``, one clock for every process of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Watchers", "watchers"]


class Watchers:
    """Watchers that are waiting in the server; :meth:`arrivals` once the change was made."""

    def __init__(self, results: Any, processes: int) -> None:
        self._results = results
        self._processes = processes

    def arrivals(self, timeout: float = 90.0) -> list[float]:
        """When each watcher had its news; raises if any had an error or none came."""
        times: list[float] = []
        deadline = time.monotonic() + timeout
        for _ in range(self._processes):
            got = self._results.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(got, str):
                raise AssertionError(got)
            times.extend(got)
        return times


@contextlib.contextmanager
def watchers(
    host: str, port: int, request: bytes, kind: str, n: int, processes: int
) -> Iterator[Watchers]:
    """``n`` connections over ``processes`` processes, each sending ``request`` (a complete
    HTTP/1.1 request); yields once every request is sent (and, for ``kind`` ``sse``, every
    stream has its headers)."""
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    shares = [n // processes + (i < n % processes) for i in range(processes)]
    procs = [
        ctx.Process(
            target=_child, args=(host, port, request, kind, share, ready, results), daemon=True
        )
        for share in shares
        if share
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            got = ready.get(timeout=60)
            if isinstance(got, str):
                raise AssertionError(got)
        yield Watchers(results, len(procs))
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        with contextlib.suppress(queue.Empty):
            while True:
                results.get_nowait()


def _child(
    host: str, port: int, request: bytes, kind: str, n: int, ready: Any, results: Any
) -> None:
    try:
        asyncio.run(_watch(host, port, request, kind, n, ready, results))
    except BaseException as exc:  # reported to the bench, which raises it
        message = f"watcher client: {type(exc).__name__}: {exc}"
        ready.put(message)
        results.put(message)


async def _watch(
    host: str, port: int, request: bytes, kind: str, n: int, ready: Any, results: Any
) -> None:
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        conns.append((reader, writer))
    for _, writer in conns:
        await writer.drain()
    if kind == "sse":
        for reader, _ in conns:
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
    tasks = [asyncio.ensure_future(_news(reader, kind)) for reader, _ in conns]
    ready.put(n)
    times = await asyncio.wait_for(asyncio.gather(*tasks), 90)
    results.put(times)
    for _, writer in conns:
        writer.close()


async def _news(reader: asyncio.StreamReader, kind: str) -> float:
    if kind == "sse":
        while True:
            line = await reader.readline()
            if not line:
                raise AssertionError("the stream ended without news")
            if line.startswith(b"event: run"):
                return time.monotonic()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return time.monotonic()
