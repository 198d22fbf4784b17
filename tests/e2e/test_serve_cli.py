"""`legato serve` in a real process, driven by the `legato` CLI and plain HTTP, as a user
would after `make serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

KEY = "lg_e2e_admin_key_0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {
        **os.environ,
        "LEGATO_ADMIN_KEY": KEY,
        "LEGATO_DATABASE_URL": f"sqlite:///{home / 'legato.db'}",
        "LEGATO_LOG_LEVEL": "WARNING",
        "LEGATO_STEP_MODULES": "tenant_steps",
        "PYTHONPATH": str(ROOT / "tests" / "steps"),
    }
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "legato",
            "serve",
            "--port",
            str(port),
        ],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise AssertionError((home / "serve.log").read_text())
        time.sleep(0.1)
    try:
        yield {"url": url, "home": str(home)}
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def cli(server: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEGATO_URL": server["url"], "LEGATO_API_KEY": KEY, "COLUMNS": "150"}
    return subprocess.run(
        [sys.executable, "-m", "legato", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        cwd=server["home"],
    )


def test_examples_are_loaded(server: dict[str, str]) -> None:
    result = cli(server, "workflow", "list")
    assert result.returncode == 0, result.stderr
    for name in ("hello", "media-pipeline", "faspex-delivery", "ops-change"):
        assert name in result.stdout


def test_hello_runs_to_success_with_step_table(server: dict[str, str]) -> None:
    result = cli(server, "run", "start", "hello", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCEEDED" in result.stdout
    assert "greet" in result.stdout and "announce" in result.stdout
    assert "Hello, world!" in result.stdout


def test_media_pipeline_succeeds_and_http_shows_every_step(server: dict[str, str]) -> None:
    result = cli(server, "--json", "run", "start", "media-pipeline", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = json.loads(result.stdout)["id"]
    run = httpx.get(
        f"{server['url']}/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    assert run["status"] == "SUCCEEDED"
    assert [s["status"] for s in run["steps"]] == ["SUCCEEDED"] * len(run["steps"])
    assert all(s["outputs"] is not None for s in run["steps"])
    assert run["outputs"]["package_id"]
    assert run["outputs"]["package_post_url"].startswith("https://")


def test_failed_run_exits_non_zero(server: dict[str, str], tmp_path: Path) -> None:
    definition = tmp_path / "boom.yaml"
    definition.write_text(
        'name: boom\nsteps:\n  - id: x\n    uses: shell\n    with: {argv: ["false"]}\n'
    )
    assert cli(server, "workflow", "apply", str(definition)).returncode == 0
    result = cli(server, "run", "start", "boom", "--wait")
    assert result.returncode == 1
    assert "FAILED" in result.stdout


def test_invalid_definition_is_reported_with_file_line_and_path(
    server: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nsteps:\n  - id: a\n    uses: python\n"
        '    with: {function: "m:f"}\n  - id: b\n    needs: [nope]\n'
        "    uses: shell\n    with: {argv: [echo]}\n"
    )
    result = cli(server, "workflow", "apply", str(bad))
    assert result.returncode == 1
    assert f"{bad}:7: steps[1].needs[0]: unknown step 'nope'" in result.stdout + result.stderr


def test_logs_of_a_run(server: dict[str, str]) -> None:
    started = cli(server, "--json", "run", "start", "hello", "-i", "name=Ada", "--wait")
    run_id = str(json.loads(started.stdout)["id"])
    result = cli(server, "run", "logs", run_id, "--follow")
    assert result.returncode == 0, result.stderr
    assert "announcing: Hello, Ada!" in result.stdout


def test_readme_tour_file_applies(server: dict[str, str], tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    body = readme.split("# greet.yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "greet.yaml"
    path.write_text(body)
    assert cli(server, "workflow", "apply", str(path)).returncode == 0
    result = cli(server, "--json", "run", "start", "greet", "-i", "who=Ada", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["outputs"] == {"greeting": "Hello, Ada!"}


def test_status_shows_progress_time_left_waiting_reasons_and_counts(
    server: dict[str, str], tmp_path: Path
) -> None:
    definition = tmp_path / "gated.yaml"
    definition.write_text(
        'name: gated\nsteps:\n  - id: prepare\n    uses: shell\n    with: {argv: ["true"]}\n'
        "  - id: approve\n    needs: [prepare]\n    uses: approval\n"
        '  - id: ship\n    needs: [approve]\n    uses: shell\n    with: {argv: ["true"]}\n'
    )
    assert cli(server, "workflow", "apply", str(definition)).returncode == 0
    run_id = str(json.loads(cli(server, "--json", "run", "start", "gated").stdout)["id"])
    deadline = time.monotonic() + 20
    while True:
        status = cli(server, "run", "status", run_id)
        if "waits for approval" in status.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert "waits for approval" in out
    assert "waits for approve" in out  # ship's upstream
    assert "Time left" in out and "unknown (a step waits for a decision)" in out
    assert "1 succeeded" in out and "1 running" in out and "1 pending" in out
    assert "33.3%" in out or "%" in out
    httpx.post(
        f"{server['url']}/api/v1/runs/{run_id}/steps/approve/signal",
        json={"ok": True},
        headers={"Authorization": f"Bearer {KEY}"},
    ).raise_for_status()
    watched = cli(server, "run", "watch", run_id)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "SUCCEEDED" in watched.stdout


def test_steps_find_no_secrets_of_the_server(server: dict[str, str], tmp_path: Path) -> None:
    """The server was started with its admin key and database URL in its environment."""
    echo = 'echo "{\\"key\\": \\"$LEGATO_ADMIN_KEY$LEGATO_DATABASE_URL\\"}"'
    read = "tenant_steps:read_setting"
    started = (
        'n=$(tr "\\0" "\\n" < /proc/$PPID/environ | grep -c -e "^LEGATO_ADMIN_KEY=" '
        '-e "^LEGATO_DATABASE_URL=" -e "lg_e2e_admin_key"); echo "{\\"found\\": $n}"'
    )
    snoop = {
        "name": "snoop",
        "steps": [
            {"id": "python", "uses": "python",
             "with": {"function": read, "name": "LEGATO_ADMIN_KEY"}},
            {"id": "database", "uses": "python",
             "with": {"function": read, "name": "LEGATO_DATABASE_URL"}},
            {"id": "shell", "uses": "shell", "with": {"argv": ["sh", "-c", echo]}},
            # the environment the server process was started with, as /proc keeps it
            {"id": "proc", "uses": "shell", "with": {"argv": ["sh", "-c", started]}},
        ],
    }  # fmt: skip
    definition = tmp_path / "snoop.json"
    definition.write_text(json.dumps(snoop))
    assert cli(server, "workflow", "apply", str(definition)).returncode == 0
    result = cli(server, "--json", "run", "start", "snoop", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    run = json.loads(result.stdout)
    outputs = {s["key"]: s["outputs"] for s in run["steps"]}
    assert outputs == {
        "python": {"value": None},
        "database": {"value": None},
        "shell": {"key": ""},
        "proc": {"found": 0},
    }

    leak = tmp_path / "leak.yaml"
    leak.write_text(
        "name: leak\nsteps:\n  - id: key\n    uses: python\n"
        "    with: {function: 'os:getenv', key: LEGATO_ADMIN_KEY}\n"
    )
    result = cli(server, "workflow", "apply", str(leak))
    assert result.returncode == 1
    assert f"{leak}:5: steps[0].with.function: module 'os' is never allowed in steps" in (
        result.stdout + result.stderr
    )
