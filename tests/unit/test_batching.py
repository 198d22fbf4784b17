"""Group commit: a transaction that fails for one item is tried again item by item. Shared
reads: a caller is answered by a read sent after it asked, never by one already in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from legato.service.batching import GroupCommit, SharedReads


async def test_a_failing_shared_transaction_fails_only_the_bad_item() -> None:
    batches: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        await asyncio.sleep(0)
        if any(item < 0 for item in items):  # the database refuses the whole transaction
            raise ValueError("refused")
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    answers = await asyncio.gather(
        *(group.submit(item) for item in (1, 2, -3, 4)), return_exceptions=True
    )
    assert answers[:2] == [10, 20] and answers[3] == 40, answers
    assert isinstance(answers[2], ValueError), answers
    assert batches == [[1, 2, -3, 4], [1], [2], [-3], [4]], batches


async def test_a_shared_read_is_sent_after_every_caller_it_answers() -> None:
    """The version of each key rises while a read is in flight: a caller that asked
    meanwhile must see the newer version, so it waits for the next read."""
    versions = {1: 0, 2: 0}
    reads: list[list[int]] = []
    gate = asyncio.Event()

    async def read_many(keys: Sequence[int]) -> dict[int, int]:
        reads.append(list(keys))
        seen = {k: versions[k] for k in keys if k in versions}  # the statement's snapshot
        await gate.wait()
        return seen

    shared: SharedReads[int, int] = SharedReads(read_many)
    first = asyncio.create_task(shared.get(1))
    while not reads:  # until the first read is in flight
        await asyncio.sleep(0)
    versions[1] = versions[2] = 1  # a commit
    later = [asyncio.create_task(shared.get(k)) for k in (1, 2, 2, 3)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 0
    assert [await t for t in later] == [1, 1, 1, None]  # 3 names nothing
    assert reads == [[1], [1, 2, 3]]  # one statement for the four that waited


async def test_a_failed_shared_read_fails_its_callers_only() -> None:
    calls = 0

    async def read_many(keys: Sequence[int]) -> dict[int, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise ConnectionError("the database went away")
        return {k: k for k in keys}

    shared: SharedReads[int, int] = SharedReads(read_many)
    failed = await asyncio.gather(shared.get(1), shared.get(2), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed), failed
    assert await shared.get(5) == 5
