"""Fixtures of the native API tests: the HTTP kit on the ``api`` client, and a real HTTP server
(uvicorn, in process) for what the in-process transport cannot show, such as a response that
streams while the run goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from apikit import ApiKit

from legato.app import create_app
from legato.runtime import Legato


@pytest.fixture
async def kit(api: httpx.AsyncClient) -> ApiKit:
    return ApiKit(api)


@pytest.fixture
async def live_url(engine: Legato) -> AsyncIterator[str]:
    """The app behind a real HTTP server on a free local port; answers its base URL."""
    app = create_app(engine)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done(), "the test server did not start"
        assert time.monotonic() < deadline, "the test server did not start in time"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture(autouse=True)
async def settle(kit: ApiKit) -> AsyncIterator[None]:
    """After each test, wait (briefly) for the runs it left going, so that no test ends with
    steps in flight; what a test asserts never depends on this."""
    yield
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = await kit.api.get("/api/v1/runs", params={"status": "QUEUED,RUNNING,CANCELING"})
        if r.status_code != 200 or not r.json()["runs"]:
            return
        for run in r.json()["runs"]:
            if run["workflow"] == "sleepy" and run["status"] != "CANCELING":
                await kit.api.post(f"/api/v1/runs/{run['id']}/cancel")
        await asyncio.sleep(0.05)
