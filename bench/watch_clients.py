"""Watchers as light clients: raw HTTP/1.1 on plain sockets, spread over a few processes.

A full Python HTTP client spends more time per answer than the server does, and on a machine
shared with the server, a thousand answers arriving at once would then measure the client.
These clients only send one request per connection and wait in one epoll loop per process
for its answer (a long-poll's status line, then checked to be 200; a stream's first
``event: run``), noting when it came (``time.monotonic()``, one clock for every process of
the machine).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import selectors
import socket
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
        _watch(host, port, request, kind, n, ready, results)
    except BaseException as exc:  # reported to the bench, which raises it
        message = f"watcher client: {type(exc).__name__}: {exc}"
        ready.put(message)
        results.put(message)


def _watch(
    host: str, port: int, request: bytes, kind: str, n: int, ready: Any, results: Any
) -> None:
    """One epoll loop over all of this process's connections: a few microseconds per answer,
    so that the time noted is when the news came, not when a busy client got to it."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection((host, port))
        sock.sendall(request)
        socks.append(sock)
    if kind == "sse":  # the stream's headers come at once; its news after the change
        for sock in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError("the stream ended before its headers")
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            assert b"event: run" not in head, "news before the change"
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    ready.put(n)
    marker = b"event: run" if kind == "sse" else b"HTTP/1.1 "
    got: dict[socket.socket, bytes] = {sock: b"" for sock in socks}
    times: dict[socket.socket, float] = {}
    deadline = time.monotonic() + 90
    while len(times) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{n - len(times)} of {n} watchers had no news")
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            chunk = sock.recv(65536)
            now = time.monotonic()
            if not chunk:
                raise AssertionError("a connection ended without news")
            got[sock] += chunk
            if sock not in times and marker in got[sock]:
                times[sock] = now
                selector.unregister(sock)
    for sock, data in got.items():
        if kind != "sse":
            assert data.startswith(b"HTTP/1.1 200"), data[:200]
        sock.close()
    results.put(list(times.values()))
