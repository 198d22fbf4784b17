"""`legato api --processes 2`: server processes forked from one that read the settings; the
port answers from both, a process that dies is replaced, SIGTERM ends them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve_cli import _free_port

KEY = "lg_e2e_processes_key_0123456789"
_LEGATO = [sys.executable, "-m", "legato"]


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(log.read_text())
        time.sleep(0.1)


def test_server_processes_share_the_port_and_are_replaced(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'legato.db'}"
    subprocess.run(
        [sys.executable, "-m", "legato", "db", "upgrade", "--database-url", db], check=True
    )
    port = _free_port()
    log = tmp_path / "api.log"
    env = {**os.environ, "LEGATO_ADMIN_KEY": KEY, "LEGATO_LOG_LEVEL": "WARNING"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_LEGATO, "api", "--database-url", db, "--port", str(port), "--processes", "2"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc, log)
        first = _children(proc.pid)
        assert len(first) == 2, log.read_text()
        # the admin key reached every process through the settings, not the environment
        for child in first:
            assert KEY.encode() not in Path(f"/proc/{child}/environ").read_bytes()
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            assert {client.get("/api/v1/runs").status_code for _ in range(20)} == {200}
            os.kill(min(first), signal.SIGKILL)
            deadline = time.monotonic() + 20
            while len(now := _children(proc.pid)) != 2 or min(first) in now:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert {client.get("/api/v1/runs").status_code for _ in range(20)} == {200}
        assert "ended; starting another" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not _children(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            pytest.fail(log.read_text())
