"""Inputs no store can keep are refused at the door: lone surrogates, integers past 64 bits,
values nested too deeply, booleans or fractions where whole numbers are meant, times that are
neither ISO 8601 nor epoch seconds. And an unhandled error says it closes the connection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import uvicorn
from apikit import ApiKit, assert_problem

from legato.asgi import create_app
from legato.runtime import Legato

JSON = {"Content-Type": "application/json"}
OPEN = """\
name: open
inputs:
  data: {type: object, default: {}}
  text: {type: string, default: ""}
  n: {type: integer, default: 0}
steps:
  - id: noop
    uses: shell
    with: {argv: ["true"]}
"""


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_lone_surrogates_are_422_never_500(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(OPEN)
    for raw in (
        b'{"workflow": "open", "inputs": {"text": "\\ud800"}}',
        b'{"workflow": "open", "inputs": {"data": {"\\udfff": 1}}}',
        b'{"workflow": "open", "labels": {"team": "\\ud800"}}',
        b'{"workflow": "open", "requestor": "a\\udc00b"}',
    ):
        r = await api.post("/api/v1/runs", content=raw, headers=JSON)
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"] == [
            {"path": "body", "message": "JSON decode error", "code": "json_invalid"}
        ], body
    assert (await api.get("/api/v1/runs")).json()["runs"] == []


async def test_nul_characters_are_422_never_500(api: httpx.AsyncClient, kit: ApiKit) -> None:
    """PostgreSQL's text holds no NUL: refused on both stores alike, in any field; the text
    ``\\u0000`` (a backslash, then u0000) is no NUL and is kept."""
    await kit.apply(OPEN)
    for raw in (
        b'{"workflow": "open", "external_id": "a\\u0000b"}',
        b'{"workflow": "open", "inputs": {"text": "\\u0000"}}',
        b'{"workflow": "open", "labels": {"team\\u0000": "x"}}',
        b'{"workflow": "open", "requestor": "\\u0000"}',
    ):
        r = await api.post("/api/v1/runs", content=raw, headers=JSON)
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == "body", body
    assert (await api.get("/api/v1/runs")).json()["runs"] == []
    raw = b'{"workflow": "open", "external_id": "a\\\\u0000b"}'
    r = await api.post("/api/v1/runs", content=raw, headers=JSON)
    assert r.status_code == 201, r.text
    assert r.json()["external_id"] == "a\\u0000b"


async def test_deep_nesting_is_refused_cleanly(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(OPEN)
    r = await api.post(
        "/api/v1/runs",
        content=b'{"workflow": "open", "inputs": {"data": {"x": ' + b"[" * 100_000 + b"]" * 100_000
        + b"}}}",
        headers=JSON,
    )  # fmt: skip
    assert_problem(r, 422, "validation_error")
    r = await api.post(
        "/api/v1/runs", json={"workflow": "open", "inputs": {"data": {"x": nested(64)}}}
    )
    body = assert_problem(r, 422, "invalid_inputs")
    assert [(e["path"].split("[")[0], e["code"], e["message"]) for e in body["errors"]] == [
        ("inputs.data.x", "too_deep", "nested deeper than 64 levels")
    ], body
    fits = await api.post(
        "/api/v1/runs", json={"workflow": "open", "inputs": {"data": {"x": nested(62)}}}
    )
    assert fits.status_code == 201, fits.text
    r = await api.post(
        "/datasourcesvc/api/v1/orchrun",
        params={"nsfilter": "default"},
        content=b'{"orchestratorId": "open", "inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        headers=JSON,
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "the body is not valid JSON", r.json()


async def test_integers_past_64_bits_are_422(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(OPEN)
    for number in (2**63, -(2**63) - 1, 2**64, 10**30):
        raw = b'{"workflow": "open", "inputs": {"data": {"list": [%d]}}}' % number
        r = await api.post("/api/v1/runs", content=raw, headers=JSON)
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == "body", body
    assert (await api.get("/api/v1/runs")).json()["runs"] == []
    edge = {"workflow": "open", "inputs": {"data": {"a": 2**63 - 1, "b": -(2**63)}},
            "labels": {"order": "12345678901234567890123"}}  # fmt: skip
    r = await api.post("/api/v1/runs", json=edge)
    assert r.status_code == 201, r.text
    assert (await kit.get_run(r.json()["id"]))["inputs"]["data"] == edge["inputs"]["data"]


async def test_whole_numbers_are_strict(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(OPEN)
    for field, value in (
        ("priority", True),
        ("priority", 1.0),
        ("version", True),
        ("version", 1.5),
    ):
        r = await api.post("/api/v1/runs", json={"workflow": "open", field: value})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == field, body
    for value in (True, 1.0, "3"):
        r = await api.patch("/api/v1/namespaces/default", json={"max_queued_runs": value})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == "max_queued_runs", body
        r = await api.post("/api/v1/namespaces", json={"name": "other", "retention_days": value})
        assert_problem(r, 422, "validation_error")
    r = await api.patch("/api/v1/namespaces/default", json={"max_queued_runs": 3})
    assert r.status_code == 200 and r.json()["max_queued_runs"] == 3, r.text
    r = await api.post("/api/v1/status/batch", json={"ids": [True]})
    assert r.status_code in (404, 405, 422), r.text


async def test_created_before_and_after_take_iso_times_or_epoch_seconds(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(OPEN)
    run = await kit.launch("open")
    for name in ("created_before", "created_after"):
        for bad in ("0.5", "1e9", "-5", "yesterday", "2024-13-01", "9" * 20):
            r = await api.get("/api/v1/runs", params={name: bad})
            body = assert_problem(r, 422, "validation_error")
            assert body["errors"] == [
                {"path": name, "message": "expected an ISO 8601 time or epoch seconds"}
            ], body
    now = int(time.time())
    cases = [
        ({"created_after": str(now - 3600)}, [run["id"]]),
        ({"created_before": str(now - 3600)}, []),
        ({"created_after": "2000-01-01"}, [run["id"]]),
        ({"created_after": "2000-01-01T00:00:00Z",
          "created_before": "2000-01-02T00:00:00+02:00"}, []),
        ({"created_before": "9999-12-31T00:00:00"}, [run["id"]]),
    ]  # fmt: skip
    for params, ids in cases:
        r = await api.get("/api/v1/runs", params=params)
        assert r.status_code == 200, (params, r.text)
        assert [x["id"] for x in r.json()["runs"]] == ids, params


@pytest.fixture
async def failing_url(engine: Legato) -> Any:
    """A real server whose app has one route that fails unexpectedly."""
    app = create_app(engine)

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("a bug")

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="critical")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def test_an_unhandled_error_answers_500_with_connection_close(failing_url: str) -> None:
    async with httpx.AsyncClient(base_url=failing_url) as client:
        r = await client.get("/fails")
        body = assert_problem(r, 500, "internal_error")
        assert body["detail"] == "the server met an unexpected error; it has been logged"
        assert r.headers["connection"] == "close", r.headers
        assert (await client.get("/healthz")).status_code == 200
