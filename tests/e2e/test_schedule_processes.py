"""Three real processes on one PostgreSQL database fire a schedule every second for 20
seconds: each fire time starts exactly one run, none is missing, also when one of them is
killed with SIGKILL halfway."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import admin, apply

from legato.model.filters import RunFilter
from legato.runtime import Legato
from tests.conftest import ROOT

QUICK = """
name: tick
steps:
  - id: only
    uses: sleep
    with: {duration: 1ms}
"""
FIRES = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(database_url: str, log: Path, *command: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "tests" / "steps"),
        "LEGATO_LOG_LEVEL": "WARNING",
        "LEGATO_LEASE_SECONDS": "2",
    }
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "legato", *command, "--database-url", database_url],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def test_three_processes_fire_each_second_once_one_killed_halfway(
    legato: Legato, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("processes share a database across hosts on PostgreSQL")
    await apply(legato, QUICK)
    p = await admin(legato)
    processes = [
        _spawn(database_url, tmp_path / "a.log", "worker", "--concurrency", "4", "--name", "a"),
        _spawn(database_url, tmp_path / "b.log", "worker", "--concurrency", "4", "--name", "b"),
        _spawn(database_url, tmp_path / "c.log", "api", "--port", str(_free_port())),
    ]
    try:
        await asyncio.sleep(3)  # let them start: the schedule begins after that
        for proc, name in zip(processes, "abc", strict=True):
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
        begin = float(int(time.time()) + 2)
        end = begin + FIRES - 1
        schedule = await legato.schedules.create(
            p,
            {
                "name": "each-second",
                "workflow": "tick",
                "cron": "* * * * * *",
                "overlap": "allow",
                "start_at": begin,
                "end_at": end,
                "catchup": "1m",
            },
        )
        await asyncio.sleep(max(0.0, begin + FIRES / 2 - time.time()))
        victim = processes[0]
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
        await asyncio.sleep(max(0.0, end + 3 - time.time()))
        for proc, name in zip(processes[1:], "bc", strict=True):
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    page = await legato.runs.list_runs(
        p, RunFilter(p.namespace_id, schedule_id=schedule["id"]), 500, None
    )
    fire_times = sorted(r["fire_time"] for r in page["runs"])
    expected = [
        time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(begin + i)) for i in range(FIRES)
    ]
    assert fire_times == expected  # one run per fire time, none missing, none twice
    fires = await legato.schedules.fires(p, "each-second", 100)
    assert sorted((f["fire_time"], f["outcome"]) for f in fires) == [
        (t, "started") for t in expected
    ]
    got = await legato.schedules.get(p, "each-second")
    assert got["state"] == "ended" and got["counts"]["started"] == FIRES
