"""Fixtures of the native API tests: the HTTP kit on the ``api`` client, and a real HTTP server
(uvicorn, in process) for what the in-process transport cannot show, such as a response that
streams while the run goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from apikit import ApiKit


@pytest.fixture
async def kit(api: httpx.AsyncClient) -> ApiKit:
    return ApiKit(api)


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
