"""Fixtures of the dialect tests: a real HTTP server (uvicorn, in process) for the vendors'
client libraries, which speak HTTP themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn

from legato.app import create_app
from legato.runtime import Legato


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
