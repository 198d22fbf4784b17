"""Control of runs: retry from failed steps, delete rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import admin, apply, start, steps_by_key, wait_for

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
