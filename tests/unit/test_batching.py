"""Group commit: a transaction that fails for one item is tried again item by item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from legato.service.batching import GroupCommit


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
