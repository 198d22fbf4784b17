"""``/api/v1/webhooks`` over HTTP: subscriptions, the delivery log, redelivery, the signing
secret, bad input, roles and tenants."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from apikit import ISO_TIME, YAML, ApiKit, assert_problem, bearer

from legato.settings import Settings
from tests.conftest import LOCAL_RECEIVERS

HELLO = """
name: hooked
steps:
  - id: only
    uses: python
    with: {function: "demo_steps:noop"}
"""


@pytest.fixture
def settings() -> Settings:
    """These tests post to a receiver on 127.0.0.1: the installation allows it."""
    return LOCAL_RECEIVERS


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that accepts every POST; answers its URL and what it got."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"delivery": self.headers["X-Legato-Delivery"], "payload": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/in", got
    finally:
        server.shutdown()
        server.server_close()


async def test_create_list_delete(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/webhooks",
        json={
            "url": "https://hooks.example.com/legato",
            "event_types": ["run.*", "step.failed"],
            "workflows": ["hooked"],
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"/api/v1/webhooks/{created['id']}"
    assert re.match(r"^whsec_[A-Za-z0-9_-]{43}$", created["secret"])
    assert re.match(ISO_TIME, created["created_at"])
    view = {
        "id": created["id"],
        "url": "https://hooks.example.com/legato",
        "event_types": ["run.*", "step.failed"],
        "workflows": ["hooked"],
        "active": True,
        "created_at": created["created_at"],
    }
    assert created == {**view, "secret": created["secret"]}

    r = await api.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "my-own-secret-123"}
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["secret"] == "my-own-secret-123"
    assert (second["event_types"], second["workflows"]) == ([], [])

    r = await api.get("/api/v1/webhooks")
    assert r.status_code == 200
    assert r.json()["webhooks"] == [view, {k: v for k, v in second.items() if k != "secret"}]

    assert (await api.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
    assert_problem(await api.delete(f"/api/v1/webhooks/{created['id']}"), 404, "not_found")
    assert [w["id"] for w in (await api.get("/api/v1/webhooks")).json()["webhooks"]] == [
        second["id"]
    ]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({}, "url"),
        ({"url": "https://example.com", "event_types": ["bogus"]}, "event_types[0]"),
        ({"url": "https://example.com", "event_types": ["run.*", "job.done"]}, "event_types[1]"),
        ({"url": "https://example.com", "workflows": [" "]}, "workflows[0]"),
        ({"url": "https://example.com", "secret": "short"}, "secret"),
        ({"url": "https://example.com", "color": "red"}, "color"),
    ],
)
async def test_bad_subscriptions_are_422(
    api: httpx.AsyncClient, body: dict[str, Any], path: str
) -> None:
    problem = assert_problem(await api.post("/api/v1/webhooks", json=body), 422, "validation_error")
    assert path in [e["path"] for e in problem["errors"]], problem


async def test_unknown_ids_are_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.delete("/api/v1/webhooks/987654"), 404, "not_found")
    assert_problem(await api.get("/api/v1/webhooks/deliveries/987654"), 404, "not_found")
    assert_problem(await api.post("/api/v1/webhooks/deliveries/987654/redeliver"), 404, "not_found")
    assert_problem(await api.get("/api/v1/webhooks/deliveries?run=987654"), 404, "not_found")
    assert_problem(
        await api.get("/api/v1/webhooks/deliveries?status=LOST"), 422, "validation_error"
    )
    assert_problem(await api.delete("/api/v1/webhooks/abc"), 422, "validation_error")
    r = await api.get("/api/v1/webhooks/deliveries")
    assert r.status_code == 200
    assert r.json() == {"deliveries": [], "next_page_token": None}


async def test_roles(api: httpx.AsyncClient, kit: ApiKit) -> None:
    viewer = bearer((await kit.new_key("viewer"))["key"])
    operator = bearer((await kit.new_key("operator"))["key"])
    url = {"url": "https://example.com/h"}
    assert_problem(await api.post("/api/v1/webhooks", json=url, headers=operator), 403, "forbidden")
    assert_problem(
        await api.get("/api/v1/webhooks/signing-secret", headers=viewer), 403, "forbidden"
    )
    created = (await api.post("/api/v1/webhooks", json=url)).json()
    assert (await api.get("/api/v1/webhooks", headers=viewer)).status_code == 200
    assert (await api.get("/api/v1/webhooks/deliveries", headers=viewer)).status_code == 200
    assert_problem(
        await api.delete(f"/api/v1/webhooks/{created['id']}", headers=operator), 403, "forbidden"
    )
    assert_problem(
        await api.post("/api/v1/webhooks/deliveries/1/redeliver", headers=viewer), 403, "forbidden"
    )


async def test_delivery_log_redelivery_and_tenants(
    api: httpx.AsyncClient, kit: ApiKit, inbox: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = inbox
    await api.put("/api/v1/workflows/hooked", content=HELLO, headers=YAML)
    r = await api.post("/api/v1/runs", json={"workflow": "hooked", "notify_url": url})
    assert r.status_code == 201, r.text
    run = r.json()
    await kit.wait(run["id"])
    types = ["run.queued", "run.started", "step.started", "step.succeeded", "run.succeeded"]

    deadline = time.monotonic() + 10
    while len(got) < len(types):
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.05)
    assert [g["payload"]["type"] for g in got] == types

    deadline = time.monotonic() + 10
    while True:  # the receiver answered; the log records it right after
        r = await api.get(f"/api/v1/webhooks/deliveries?run={run['uuid']}")
        assert r.status_code == 200
        log = r.json()["deliveries"]
        if all(d["status"] == "DELIVERED" for d in log) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [d["event_type"] for d in log] == types[::-1]
    assert {d["status"] for d in log} == {"DELIVERED"}
    newest = log[0]
    assert newest == {
        "id": newest["id"],
        "run_id": run["id"],
        "webhook_id": None,
        "url": url,
        "event_type": "run.succeeded",
        "status": "DELIVERED",
        "in_flight": False,
        "next_attempt_at": None,
        "last_error": None,
        "created_at": newest["created_at"],
        "delivered_at": newest["delivered_at"],
        "payload": got[-1]["payload"],
        "attempts": [
            {
                "attempt": 1,
                "time": newest["attempts"][0]["time"],
                "status_code": 200,
                "error": None,
                "duration_ms": newest["attempts"][0]["duration_ms"],
            }
        ],
    }
    one = await api.get(f"/api/v1/webhooks/deliveries/{newest['id']}")
    assert one.json() == newest

    page = (await api.get("/api/v1/webhooks/deliveries?page_size=3")).json()
    assert [d["id"] for d in page["deliveries"]] == [d["id"] for d in log[:3]]
    rest = await api.get(f"/api/v1/webhooks/deliveries?page_token={page['next_page_token']}")
    assert [d["id"] for d in rest.json()["deliveries"]] == [d["id"] for d in log[3:]]
    assert rest.json()["next_page_token"] is None
    assert len(
        (await api.get("/api/v1/webhooks/deliveries?status=DELIVERED")).json()["deliveries"]
    ) == len(types)

    # another tenant sees and touches nothing of it
    other = bearer((await kit.new_key("admin", namespace="tenant-b"))["key"])
    assert (await api.get("/api/v1/webhooks/deliveries", headers=other)).json()["deliveries"] == []
    assert_problem(
        await api.get(f"/api/v1/webhooks/deliveries?run={run['id']}", headers=other),
        404,
        "not_found",
    )
    for call in (
        api.get(f"/api/v1/webhooks/deliveries/{newest['id']}", headers=other),
        api.post(f"/api/v1/webhooks/deliveries/{newest['id']}/redeliver", headers=other),
    ):
        assert_problem(await call, 404, "not_found")

    r = await api.post(f"/api/v1/webhooks/deliveries/{newest['id']}/redeliver")
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["redelivery_of"] == newest["id"]
    assert again["status"] == "PENDING"
    assert again["payload"] == newest["payload"]
    deadline = time.monotonic() + 10
    while len(got) < len(types) + 1:
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.05)
    assert got[-1] == {"delivery": str(again["id"]), "payload": newest["payload"]}


async def test_signing_secret_is_stable_per_namespace(api: httpx.AsyncClient, kit: ApiKit) -> None:
    r = await api.get("/api/v1/webhooks/signing-secret")
    assert r.status_code == 200
    body = r.json()
    assert body["namespace"] == "default"
    assert body["secret"].startswith("whsec_")
    assert (await api.get("/api/v1/webhooks/signing-secret")).json() == body
    other = bearer((await kit.new_key("admin", namespace="tenant-b"))["key"])
    theirs = (await api.get("/api/v1/webhooks/signing-secret", headers=other)).json()
    assert theirs["namespace"] == "tenant-b"
    assert theirs["secret"] != body["secret"]
