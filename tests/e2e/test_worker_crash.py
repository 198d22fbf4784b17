"""A worker process killed with SIGKILL mid-step: its step is taken over once the lease lapses,
and the run succeeds. Real subprocess, both stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import admin, apply, sleep_until, start, steps_by_key, wait_for

from legato.runtime import Legato
from tests.conftest import FAST, ROOT


def _spawn_worker(database_url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "tests" / "steps"),
        "LEGATO_LEASE_SECONDS": "1.5",
        "LEGATO_STEP_MODULES": "demo_steps",
        "LEGATO_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as sink:  # the child keeps its own descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "legato",
                "worker",
                "--database-url",
                database_url,
                "--concurrency",
                "2",
                "--name",
                name,
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def test_killed_worker_step_is_taken_over(
    legato: Legato, database_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "attempts"
    await apply(
        legato,
        f"""
name: crash
steps:
  - id: long
    uses: python
    with: {{function: "demo_steps:crash_target", marker: "{marker}", seconds: 30}}
  - id: after
    needs: [long]
    uses: python
    with: {{function: "demo_steps:echo", was: "${{{{ steps.long.outputs.attempt }}}}"}}
""",
    )
    run = await start(legato, "crash")
    log = tmp_path / "victim.log"
    victim = _spawn_worker(database_url, "victim", log)
    try:

        async def victim_runs_step() -> bool:
            if victim.poll() is not None:
                raise AssertionError(log.read_text())
            return marker.exists() and marker.read_text().splitlines() == ["1"]

        await sleep_until(victim_runs_step, timeout=30)
        view = await legato.runs.get(await admin(legato), run["id"])
        assert steps_by_key(view)["long"]["status"] == "RUNNING"
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)

    legato.start_engine(workers=1, config=FAST, reaper_interval=0.2)  # the survivor
    final = await wait_for(legato, run["id"], timeout=30)
    assert final["status"] == "SUCCEEDED", final
    steps = steps_by_key(final)
    assert steps["long"]["attempt"] == 2
    assert steps["long"]["outputs"] == {"attempt": 2}
    assert steps["after"]["outputs"] == {"was": 2}
    assert marker.read_text().splitlines() == ["1", "2"]
    events = await legato.runs.events(await admin(legato), run["id"])
    retry = [e for e in events if e["type"] == "step.retrying"]
    assert len(retry) == 1
    assert retry[0]["data"]["error"] == {
        "code": "lease_expired",
        "message": "worker victim stopped responding",
    }


async def test_worker_process_runs_steps_from_another_process(
    legato: Legato, database_url: str, tmp_path: Path
) -> None:
    """API and worker in different processes: wake-ups cross the process boundary."""
    await apply(
        legato,
        """
name: remote
steps:
  - id: one
    uses: python
    with: {function: "demo_steps:add", a: 1, b: 2}
  - id: two
    needs: [one]
    uses: python
    with: {function: "demo_steps:add", a: "${{ steps.one.outputs.sum }}", b: 3}
""",
    )
    worker = _spawn_worker(database_url, "remote-worker", tmp_path / "worker.log")
    try:
        run = await start(legato, "remote")
        final = await wait_for(legato, run["id"], timeout=30)
        assert final["status"] == "SUCCEEDED"
        assert steps_by_key(final)["two"]["outputs"] == {"sum": 6}
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
