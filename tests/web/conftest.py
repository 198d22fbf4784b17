"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
``legato serve`` process, once on SQLite and once on PostgreSQL (one server per store and
module). Every test leaves a screenshot under ``tests/web/artifacts/``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_BASE, ROOT, _outside_loop, _pg_admin

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ADMIN_KEY = "lg_web_admin_key_0123456789"
PASSWORD = "a long enough password"

playwright_sync = pytest.importorskip("playwright.sync_api")
# a loaded CI machine runs the suite two at a time: patience, never a timing assert
playwright_sync.expect.set_options(timeout=20_000)


def _chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (as CI does)."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
            shell=True,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            raise RuntimeError("chromium is not installed and could not be installed")
        pytest.skip("chromium is not installed")
    return found


def _axe_source() -> str:
    """axe-core from the npm registry (tests/web/package.json), installed when missing."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            if os.environ.get("CI"):
                raise RuntimeError("npm is needed to install axe-core")
            pytest.skip("npm is not installed")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=HERE,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return AXE.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = _chromium()
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _axe_source()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    def start(self, workflow: str, key: str = ADMIN_KEY, **inputs: Any) -> dict[str, Any]:
        with self.client(key) as c:
            r = c.post("/api/v1/runs", json={"workflow": workflow, "inputs": inputs})
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

    def wait(self, run_id: int, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                run = c.get(f"/api/v1/runs/{run_id}").json()
                if run["status"] in statuses or time.monotonic() > deadline:
                    assert run["status"] in statuses, run
                    return run  # type: ignore[no-any-return]
                time.sleep(0.1)


WORKFLOWS = {
    "paced": """
name: paced
description: Ticks on stdout, then echoes a word
inputs:
  count: {type: integer, default: 4, description: how many ticks}
  word: {type: string, description: what to echo}
steps:
  - id: first
    uses: shell
    with:
      argv:
        - python3
        - -c
        - |
          import sys, time
          for i in range(int(sys.argv[1])):
              print(f"tick {i}", flush=True)
              time.sleep(0.5)
        - ${{ inputs.count }}
  - id: second
    needs: [first]
    uses: python
    with: {function: "demo_steps:echo", word: "${{ inputs.word }}"}
""",
    "gated": """
name: gated
steps:
  - id: approve
    uses: approval
  - id: go
    needs: [approve]
    uses: python
    with: {function: "demo_steps:echo", by: "${{ steps.approve.outputs.by }}"}
""",
    "sleepy": """
name: sleepy
steps:
  - id: nap
    uses: shell
    with: {argv: [sleep, "30"]}
    timeout: 60s
""",
    "flag": """
name: flag
inputs:
  path: {type: string}
steps:
  - id: check
    uses: python
    with: {function: "demo_steps:fail_unless", flag: "${{ inputs.path }}"}
""",
    "child": """
name: child
steps:
  - id: inner
    uses: python
    with: {function: "demo_steps:echo", said: "hi"}
""",
    "fan": """
name: fan
inputs:
  items: {type: array, default: [a, b, c]}
steps:
  - id: each
    foreach: ${{ inputs.items }}
    uses: python
    with: {function: "demo_steps:echo", item: "${{ item }}"}
  - id: sub
    uses: workflow
    with: {workflow: child}
""",
}


def _prepare(server: Server) -> None:
    with server.client() as c:
        for name, source in WORKFLOWS.items():
            r = c.put(
                f"/api/v1/workflows/{name}",
                content=source,
                headers={"Content-Type": "application/yaml"},
            )
            assert r.status_code in (200, 201), r.text
        for role in ("operator", "viewer"):
            r = c.post("/api/v1/keys", json={"name": f"web {role}", "role": role})
            assert r.status_code == 201, r.text
            server.keys[role] = r.json()["key"]
        r = c.post("/api/v1/keys", json={"name": "other", "role": "operator", "namespace": "other"})
        assert r.status_code == 201, r.text
        server.keys["other"] = r.json()["key"]
        r = c.post(
            "/api/v1/users",
            json={"username": "olivia", "password": PASSWORD, "role": "operator"},
        )
        assert r.status_code == 201, r.text
    with server.client(server.keys["other"]) as c:
        r = c.put(
            "/api/v1/workflows/child",
            content=WORKFLOWS["child"],
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("web")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'legato.db'}"
        dropped = None
    else:
        name = f"legato_web_{os.getpid()}_{home.name}".replace("-", "_")[:60]
        try:
            _outside_loop(
                _pg_admin(
                    [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"']
                )
            )
        except OSError as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
        url, dropped = f"{PG_BASE}/{name}", name
    port = _free_port()
    env = {
        **os.environ,
        "LEGATO_ADMIN_KEY": ADMIN_KEY,
        "LEGATO_LOG_LEVEL": "WARNING",
        "LEGATO_STEP_MODULES": "demo_steps,aspera_steps,encoding_com_steps",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "steps"), str(ROOT)]),
    }
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "legato", "serve", "--port", str(port), "--database-url", url],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError((home / "serve.log").read_text())
        time.sleep(0.1)
    server = Server(base, home)
    try:
        _prepare(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if dropped is not None:
            _outside_loop(_pg_admin([f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)']))


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) at a laptop's size; a screenshot at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
        assert errors == [], errors
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        finally:
            context.close()
