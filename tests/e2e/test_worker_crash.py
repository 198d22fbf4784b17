"""A worker process killed with SIGKILL mid-step: its step is taken over once the lease lapses,
and the run succeeds. Real subprocess, both stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import admin, apply, sleep_until, start, steps_by_key, wait_for

from legato.model.starts import StartRun
from legato.runtime import Legato
from legato.service.principal import Principal
from tests.conftest import FAST, ROOT


def _spawn_worker(database_url: str, name: str, log: Path, *more: str) -> subprocess.Popen[bytes]:
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
                *more,
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


async def test_a_worker_process_bound_to_a_namespace_leaves_the_others_steps(
    legato: Legato, database_url: str, tmp_path: Path
) -> None:
    p = await admin(legato)
    await legato.tenancy.create_namespace(p, "team-a", {})
    team_a = Principal(await legato.tenancy.namespace_id("team-a"), "team-a", "admin")
    source = 'name: one\nsteps:\n  - {id: s, uses: python, with: {function: "demo_steps:noop"}}\n'
    for principal in (p, team_a):
        await legato.workflows.apply(principal, source)
    theirs = await start(legato, "one")  # namespace default, first in line
    ours, _ = await legato.runs.start(team_a, StartRun("one"))
    worker = _spawn_worker(
        database_url, "team-a-worker", tmp_path / "worker.log", "--namespace", "team-a"
    )
    try:
        deadline = time.monotonic() + 30
        while (run := await legato.runs.get(team_a, ours["id"]))["status"] != "SUCCEEDED":
            assert time.monotonic() < deadline and worker.poll() is None, run
            await legato.runs.wait_for_change(ours["id"], 0.2)
        assert (await legato.runs.get(p, theirs["id"]))["status"] == "QUEUED"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
