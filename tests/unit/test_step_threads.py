"""The threads of a worker's synchronous steps: answers, errors, cancels, shutdown."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from legato.engine.step_threads import StepThreads


async def test_calls_run_on_the_threads_and_answer_in_order_of_their_own() -> None:
    threads = StepThreads(4)
    names = await asyncio.gather(
        *(threads.run(lambda: threading.current_thread().name) for _ in range(20))
    )
    assert all(n.startswith("legato-step_") for n in names)
    assert 1 <= len(set(names)) <= 4  # never more threads than its size
    assert await threads.run(lambda: 41 + 1) == 42
    threads.shutdown()


async def test_calls_run_at_once_up_to_its_size() -> None:
    threads = StepThreads(3)
    barrier = threading.Barrier(3, timeout=5)
    # three calls that each wait for the other two: they finish only if all three run at once
    assert sorted(await asyncio.gather(*(threads.run(barrier.wait) for _ in range(3)))) == [0, 1, 2]
    threads.shutdown()


async def test_an_error_reaches_the_caller_and_the_threads_go_on() -> None:
    threads = StepThreads(2)

    def fails() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await threads.run(fails)

    def exits() -> None:
        sys.exit(3)

    with pytest.raises(RuntimeError, match="SystemExit"):
        await threads.run(exits)

    def stops() -> None:
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration"):
        await threads.run(stops)
    assert await threads.run(lambda: "still here") == "still here"
    threads.shutdown()


async def test_a_cancelled_wait_leaves_the_threads_working() -> None:
    threads = StepThreads(1)
    task = asyncio.ensure_future(threads.run(lambda: time.sleep(0.2)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await threads.run(lambda: "next") == "next"
    threads.shutdown()


async def test_shutdown_cancels_what_waits_and_refuses_more() -> None:
    threads = StepThreads(1)
    started = threading.Event()
    ran: list[str] = []

    def slow() -> str:
        started.set()
        time.sleep(0.2)
        return "slow"

    running = threads.run(slow)
    queued = threads.run(lambda: ran.append("queued"))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
    threads.shutdown()
    assert queued.cancelled()
    assert await running == "slow"  # the call under way ends as it would
    await asyncio.sleep(0.05)
    assert ran == []  # the queued call never ran
    with pytest.raises(RuntimeError, match="shut down"):
        threads.run(lambda: None)
