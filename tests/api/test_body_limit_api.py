"""Request bodies are bounded before anything reads them: 413 ``body_too_large`` from
``Content-Length``, or as soon as a streamed (chunked) body passes the limit, on every face."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from apikit import ADMIN_KEY, YAML, assert_problem, bearer
from pydantic import ValidationError

from legato.asgi import create_app
from legato.runtime import Legato
from legato.settings import Settings

JSON = {"Content-Type": "application/json"}
DEFINITION = "name: tiny\nsteps:\n  - id: noop\n    uses: shell\n    with: {argv: ['true']}\n"


@pytest.fixture
async def small(
    engine: Legato, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a 1000-byte body limit and a 5000-byte definition limit."""
    engine.settings = engine.settings.model_copy(
        update={"max_body_bytes": 1000, "max_definition_bytes": 5000}
    )
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://legato.test", headers=bearer(ADMIN_KEY)
    ) as client:
        yield client


async def _chunks(size: int, chunk: int = 100) -> AsyncIterator[bytes]:
    for _ in range(size // chunk):
        yield b" " * chunk


def _assert_too_large(r: httpx.Response, limit: int) -> None:
    body = assert_problem(r, 413, "body_too_large")
    assert body["detail"] == f"the request body is larger than {limit} bytes", body
    assert r.headers["connection"] == "close", r.headers


async def test_bodies_over_the_limit_are_413_by_length_or_while_streaming(
    small: httpx.AsyncClient,
) -> None:
    assert (
        await small.put("/api/v1/workflows/tiny", content=DEFINITION, headers=YAML)
    ).status_code == 201
    padded = b'{"workflow": "tiny"' + b" " * 1000 + b"}"
    _assert_too_large(await small.post("/api/v1/runs", content=padded), 1000)
    _assert_too_large(
        await small.post(
            "/api/v1/runs", content=_chunks(5000), headers={"Content-Type": "application/json"}
        ),
        1000,
    )
    assert (await small.get("/api/v1/runs")).json()["runs"] == []
    fits = b'{"workflow": "tiny"' + b" " * 900 + b"}"
    assert (await small.post("/api/v1/runs", content=fits, headers=JSON)).status_code == 201


async def test_definitions_have_their_own_larger_limit(small: httpx.AsyncClient) -> None:
    near = DEFINITION + "#" + "x" * 4000 + "\n"
    assert (
        await small.put("/api/v1/workflows/tiny", content=near, headers=YAML)
    ).status_code == 201
    over = DEFINITION + "#" + "x" * 5000 + "\n"
    _assert_too_large(await small.put("/api/v1/workflows/tiny", content=over, headers=YAML), 5000)
    _assert_too_large(
        await small.put("/api/v1/workflows/tiny", content=_chunks(6000), headers=YAML), 5000
    )
    # only definitions get the larger limit
    _assert_too_large(await small.post("/api/v1/webhooks", content=b" " * 4000), 1000)


async def test_dialects_are_bounded_too(small: httpx.AsyncClient) -> None:
    form = {"xml": "<query>" + "x" * 2000 + "</query>"}
    _assert_too_large(await small.post("/", data=form), 1000)
    _assert_too_large(
        await small.post("/api/20210901/workflows/w/actions/run", content=b" " * 2000), 1000
    )
    _assert_too_large(
        await small.post(
            "/datasourcesvc/api/v1/orchrun", params={"nsfilter": "default"}, content=_chunks(3000)
        ),
        1000,
    )


async def test_a_huge_declared_body_is_refused_before_it_is_sent(live_url: str) -> None:
    """A real server answers at once from the headers, and closes the connection."""
    host, port = live_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v1/runs HTTP/1.1\r\nHost: legato\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the server closes: read to the end
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer
    assert b"connection: close" in head.lower(), head
    assert b'"code":"body_too_large"' in body, body


def test_the_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATO_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("LEGATO_MAX_DEFINITION_BYTES", "5000")
    assert (Settings().max_body_bytes, Settings().max_definition_bytes) == (1000, 5000)


@pytest.mark.parametrize("bad", ["1MB", "0", "-5"])
def test_a_malformed_limit_setting_stops_the_server_at_start(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("LEGATO_MAX_BODY_BYTES", bad)
    with pytest.raises(ValidationError, match="max_body_bytes"):
        Settings()
