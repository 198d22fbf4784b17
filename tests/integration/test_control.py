"""Control of runs: retry from failed steps, delete rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import admin, apply, sleep_until, start, steps_by_key, wait_for

from legato.model.errors import Conflict
from legato.runtime import Legato


async def test_retry_reruns_only_failed_and_skipped_steps(engine: Legato, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    await apply(
        engine,
        f"""
name: retryable
steps:
  - id: first
    uses: python
    with: {{function: "demo_steps:stamp"}}
  - id: second
    needs: [first]
    uses: python
    with: {{function: "demo_steps:fail_unless", flag: "{flag}"}}
  - id: third
    needs: [second]
    uses: python
    with: {{function: "demo_steps:stamp"}}
""",
    )
    p = await admin(engine)
    run = await wait_for(engine, (await start(engine, "retryable"))["id"])
    assert run["status"] == "FAILED"
    before = steps_by_key(run)
    assert [before[k]["status"] for k in ("first", "second", "third")] == [
        "SUCCEEDED",
        "FAILED",
        "SKIPPED",
    ]
    flag.write_text("set")
    retried = await engine.runs.retry(p, run["id"])
    assert retried["status"] == "RUNNING"
    final = await wait_for(engine, run["id"])
    assert final["status"] == "SUCCEEDED", final
    after = steps_by_key(final)
    assert after["first"]["outputs"] == before["first"]["outputs"]  # kept, not re-run
    assert after["first"]["finished_at"] == before["first"]["finished_at"]
    assert after["second"]["outputs"] == {"ok": True}
    assert after["third"]["status"] == "SUCCEEDED"
    events = [e["type"] for e in await engine.runs.events(p, run["id"])]
    assert "run.retrying" in events and events[-1] == "run.succeeded"
    with pytest.raises(Conflict) as exc:
        await engine.runs.retry(p, run["id"])
    assert exc.value.code == "run_not_failed"


async def _limit_concurrent_runs(legato: Legato, limit: int) -> None:
    await legato.tenancy.update_namespace(
        await admin(legato), "default", {"max_concurrent_runs": limit}
    )


async def test_max_concurrent_runs_holds_and_queued_runs_say_why(
    engine: Legato, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    await _limit_concurrent_runs(engine, 2)
    await apply(
        engine,
        f"""
name: holder
steps:
  - id: hold
    uses: shell
    with: {{argv: [sh, -c, "while [ ! -f {flag} ]; do sleep 0.05; done"]}}
""",
    )
    p = await admin(engine)
    ids = [(await start(engine, "holder"))["id"] for _ in range(5)]

    async def statuses() -> list[str]:
        return [(await engine.runs.get(p, i))["status"] for i in ids]

    seen: list[list[str]] = []

    async def two_running() -> bool:
        seen.append(await statuses())
        return seen[-1].count("RUNNING") == 2

    try:
        await sleep_until(two_running, timeout=30)
    except AssertionError:
        raise AssertionError(f"never two running: {seen[-3:]}") from None
    await asyncio.sleep(0.5)  # several claim rounds later, still two
    assert sorted(await statuses()) == ["QUEUED"] * 3 + ["RUNNING"] * 2
    queued = next(i for i, s in zip(ids, await statuses(), strict=True) if s == "QUEUED")
    view = await engine.runs.get(p, queued)
    assert view["steps"][0]["waiting_reason"] == {"reason": "concurrency_limit", "on": "namespace"}
    flag.write_text("go")
    for i in ids:
        assert (await wait_for(engine, i))["status"] == "SUCCEEDED"
