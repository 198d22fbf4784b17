"""Concurrent requests of one kind share one statement.

:class:`GroupCommit` (writes): callers await ``submit``; while one batch is being written, the
next gathers. A batch function answers one result or exception per item, so one bad item never
fails the others; and should the shared transaction fail all the same (an item the checks let
through that the database refuses), each item is tried again alone, so only the bad one fails.

:class:`SharedReads` (point reads by key): while one read is in flight, the next gathers, so
a caller's answer always comes from a statement sent after it asked (it sees every commit made
before it asked, as a read of its own would).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "SharedReads"]

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)


class GroupCommit(Generic[I, R]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[I]], Awaitable[Sequence[R | BaseException]]],
        max_batch: int = 200,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                results = await self._run_batch([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except BaseException as exc:  # the whole transaction failed
                results = [exc] if len(batch) == 1 else await self._one_by_one(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _one_by_one(
        self, batch: Sequence[tuple[I, asyncio.Future[R]]]
    ) -> list[R | BaseException]:
        results: list[R | BaseException] = []
        for item, _ in batch:
            try:
                [result] = await self._run_batch([item])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                result = exc
            results.append(result)
        return results


class SharedReads(Generic[K, R]):
    """Reads by key, gathered into one statement per round trip (``read_many`` answers what
    it found by key; a key it leaves out answers None)."""

    def __init__(
        self, read_many: Callable[[Sequence[K]], Awaitable[Mapping[K, R]]], max_batch: int = 500
    ) -> None:
        self._read_many = read_many
        self._max_batch = max_batch
        self._waiting: dict[K, list[asyncio.Future[R | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> R | None:
        future: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[: self._max_batch]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self._read_many(keys)
                except asyncio.CancelledError:
                    for futures in batch.values():
                        for future in futures:
                            future.cancel()
                    raise
                except Exception as exc:
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    value = found.get(key)
                    for future in futures:
                        if not future.done():
                            future.set_result(value)
        finally:
            self._task = None
