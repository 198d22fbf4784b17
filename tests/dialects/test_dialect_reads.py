"""The status read of each dialect, on both stores: kept with the run's version (a change of
the run shows in the next answer), one statement once read, and the same bytes whether the
shortcut that skips the framework's routing answers it or the routes do."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import ADMIN_KEY, admin
from statements import HEAD_READS, counting

from legato.asgi import create_app
from legato.dialects.fast_path import DialectFastPath
from legato.runtime import Legato

GATED = """\
name: gated
steps:
  - id: gate
    name: Wait for approval
    uses: approval
"""
IDENTIFIER = "0b7f3c52-1d2e-4f60-8a9b-3c4d5e6f7a81"
AUDIENCE = "legato-dialect-reads"
LOGIN, PASSWORD = "poller", "poller-password-1"
#: What a read sends that is not the read itself: authentication, kept a second.
AUTH_TABLES = ("api_keys", "users", "login_failures", "jwks")


@dataclass
class Pollers:
    """A client of each dialect, all polling the same run."""

    api: httpx.AsyncClient
    key_id: str
    key: str
    private: rsa.RSAPrivateKey
    run: dict[str, Any]
    step_id: int

    def requests(self) -> dict[str, httpx.Request]:
        """Each dialect's status read of the run, as its clients send it."""
        basic = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
        query = {
            "userid": self.key_id,
            "userkey": self.key,
            "action": "GetStatus",
            "mediaid": str(self.run["id"]),
        }
        now = int(time.time())
        claims = {
            "sub": "poller@example.com",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "scope": "mcs:oci:api:User",
        }
        token = jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": "k1"})
        bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
        build = self.api.build_request
        return {
            "aspera": build(
                "GET",
                f"/aspera/orchestrator/api/work_step_status/{self.step_id}.json",
                headers={"Authorization": f"Basic {basic}"},
            ),
            "encoding.com": build(
                "POST",
                "/",
                content=urlencode({"json": json.dumps({"query": query})}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            "oac": build(
                "GET",
                f"/api/20210901/workRequests/{self.run['uuid']}",
                headers={**bearer, "opc-request-id": "poll-1"},
            ),
            "oracle": build(
                "GET",
                f"/selfservice/v1/executions/status?id={self.run['id']}&requestor=TESTER",
                headers={"Authorization": f"Bearer {token}", "Identifier": IDENTIFIER},
            ),
            "datasourcesvc": build(
                "GET",
                f"/datasourcesvc/api/v1/orchrun/{self.run['uuid']}?nsfilter=default",
                headers=bearer,
            ),
        }

    async def words(self) -> dict[str, str]:
        """The status each dialect reads now."""
        answers = {name: await self.api.send(r) for name, r in self.requests().items()}
        for name, r in answers.items():
            assert r.status_code == 200, (name, r.text)
        return {
            "aspera": answers["aspera"].json()["work_step"]["status"],
            "encoding.com": answers["encoding.com"].json()["response"]["status"],
            "oac": answers["oac"].json()["status"],
            "oracle": answers["oracle"].json()["response"][0]["status"],
            "datasourcesvc": answers["datasourcesvc"].json()[0]["_status"],
        }


async def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://legato.test")


@pytest.fixture
async def pollers(engine: Legato, api: httpx.AsyncClient) -> AsyncIterator[Pollers]:
    """A run waiting for its approval, and the credentials each dialect's clients use."""
    p = await admin(engine)
    await engine.tenancy.identity.create_user(p, LOGIN, PASSWORD, "viewer")
    key = await engine.tenancy.create_key(p, "encoding poller", "viewer")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    r = await api.post(
        "/api/v1/jwks",
        json={
            "identifier": IDENTIFIER,
            "keys": {"keys": [{**public, "kid": "k1", "use": "sig"}]},
            "role": "viewer",
            "audience": AUDIENCE,
        },
    )
    assert r.status_code == 201, r.text
    r = await api.put(
        "/api/v1/workflows/gated", content=GATED, headers={"Content-Type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    r = await api.post("/api/v1/runs", json={"workflow": "gated", "requestor": "TESTER"})
    assert r.status_code == 201, r.text
    run = r.json()
    deadline = time.monotonic() + 20
    while True:
        step = (await api.get(f"/api/v1/runs/{run['id']}/steps/gate")).json()
        if step["waiting_reason"] == {"reason": "approval"}:
            break
        assert time.monotonic() < deadline, step
        await asyncio.sleep(0.05)
    async with await _client(create_app(engine)) as client:
        yield Pollers(client, str(key["id"]), key["key"], private, run, int(step["id"]))


async def _finish(pollers: Pollers) -> None:
    run_id = pollers.run["id"]
    r = await pollers.api.post(
        f"/api/v1/runs/{run_id}/steps/gate/signal",
        json={"ok": True},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20
    while True:
        r = await pollers.api.get(
            f"/api/v1/runs/{run_id}.txt", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        if r.text == "SUCCEEDED":
            return
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.05)


async def test_a_kept_answer_changes_with_its_run(pollers: Pollers) -> None:
    running = {
        "aspera": "In Progress",
        "encoding.com": "Downloading",  # its one step is the download
        "oac": "IN_PROGRESS",
        "oracle": "in-progress",
        "datasourcesvc": "RUNNING",
    }
    assert await pollers.words() == running
    assert await pollers.words() == running  # kept, for a moment, while the run runs
    await _finish(pollers)
    finished = {
        "aspera": "Complete",
        "encoding.com": "Finished",
        "oac": "SUCCEEDED",
        "oracle": "success",
        "datasourcesvc": "COMPLETED",
    }
    assert await pollers.words() == finished
    assert await pollers.words() == finished  # kept for good


async def test_a_dialect_read_costs_one_statement_once_read(
    pollers: Pollers, engine: Legato
) -> None:
    await _finish(pollers)
    await engine.stop_engine()  # the worker's claim polls would be counted too
    await pollers.words()  # builds and keeps each answer; the credentials are checked
    for name, request in pollers.requests().items():
        with counting(engine.db) as seen:
            r = await pollers.api.send(request)
        assert r.status_code == 200, (name, r.text)
        read = [sql for sql in seen.sql if not any(t in sql for t in AUTH_TABLES)]
        # the run's head (for Aspera, the head of the step's run; for Oracle, the run's
        # row with whom it was started for): one read through the driver, no transaction
        assert len(read) == 1 and read[0].startswith(HEAD_READS), (name, seen)


def _routed(engine: Legato) -> Any:
    """The application without the dialects' shortcut: every request goes to the routes."""
    app = create_app(engine)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DialectFastPath]
    app.hot_reads = False  # type: ignore[attr-defined]
    return app


async def test_the_shortcut_answers_what_the_routes_answer(
    pollers: Pollers, engine: Legato
) -> None:
    app = _routed(engine)
    async with await _client(app) as routed:
        await routed.get("/healthz")
        assert not any(isinstance(layer, DialectFastPath) for layer in _layers(app))
        for phase in ("running", "finished"):
            if phase == "finished":
                await _finish(pollers)
            requests = list(pollers.requests().items())
            requests += _variants(pollers)
            for name, request in requests:
                fast, slow = await _both(pollers.api, routed, request)
                what = (phase, name, str(request.url))
                assert fast.status_code == slow.status_code, what
                assert fast.content == slow.content, what
                for header in ("content-type", "etag", "oa-work-request-id", "opc-request-id"):
                    assert fast.headers.get(header) == slow.headers.get(header), (what, header)


async def _both(
    fast_client: httpx.AsyncClient, routed: httpx.AsyncClient, request: httpx.Request
) -> tuple[httpx.Response, httpx.Response]:
    """The same request through the shortcut and through the routes. A running run's time
    left is whole seconds of the clock at rendering: two renders a second boundary apart
    differ there, so a differing pair is asked for again (a real difference stays)."""
    for _ in range(3):
        fast = await fast_client.send(request)
        slow = await routed.send(request)
        if fast.content == slow.content:
            break
        await asyncio.sleep(0.2)  # past the 100 ms a running run's answer is kept
    return fast, slow


def _layers(app: Any) -> list[Any]:
    """The middleware the application built, outermost first."""
    layers, layer = [], app.middleware_stack
    while layer is not None:
        layers.append(layer)
        layer = getattr(layer, "app", None)
    return layers


def _variants(pollers: Pollers) -> list[tuple[str, httpx.Request]]:
    """Other formats and parameters of the same reads, and their errors."""
    build = pollers.api.build_request
    basic = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
    aspera = {"Authorization": f"Basic {basic}"}
    bearer = {"Authorization": f"Bearer {ADMIN_KEY}", "opc-request-id": "poll-2"}
    base = "/aspera/orchestrator/api/work_step_status"
    run = pollers.run
    query = {"userid": pollers.key_id, "userkey": pollers.key, "action": "GetStatus"}
    xml = (
        '<?xml version="1.0"?>\n<query><userid>{}</userid><userkey>{}</userkey>'
        "<action>GetStatus</action><mediaid>{}</mediaid></query>"
    )
    out = [
        build("GET", f"{base}/{pollers.step_id}.xml", headers=aspera),
        build("GET", f"{base}/{pollers.step_id}.txt", headers=aspera),
        build("GET", f"{base}/{pollers.step_id}?status_only=true", headers=aspera),
        build(
            "GET",
            f"{base}/work_order.xml?work_order_id={run['id']}&step_name=Wait for approval",
            headers=aspera,
        ),
        build("GET", f"{base}/999999999.json", headers=aspera),
        build("GET", f"{base}/{pollers.step_id}.json", headers={"Authorization": "Basic eDp5"}),
        build(
            "POST",
            "/encoding/",
            content=urlencode({"xml": xml.format(pollers.key_id, pollers.key, run["id"])}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        build(
            "POST",
            "/",
            content=urlencode({"json": json.dumps({"query": {**query, "mediaid": "999999"}})}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        build(
            "POST",
            "/",
            content=json.dumps(
                {"query": {**query, "mediaid": f"{run['id']},{run['id']}", "extended": "yes"}}
            ),
        ),
        build("POST", "/", content=json.dumps({"query": {**query, "userkey": "wrong"}})),
        build("GET", f"/api/20210901/workRequests/{run['id']}", headers=bearer),
        build("GET", "/api/20210901/workRequests/nope", headers=bearer),
        build(
            "GET",
            f"/api/20210901/workRequests/{run['uuid']}",
            headers={**bearer, "if-match": 'W/"1.1.oac"'},
        ),
        build("GET", f"/api/20210901/workRequests/{run['uuid']}", headers={"opc-request-id": "x"}),
        build(
            "GET",
            f"/selfservice/v1/executions/status?id={run['id']},404&requestor=TESTER",
            headers=pollers.requests()["oracle"].headers,
        ),
        build(
            "GET",
            f"/selfservice/v1/executions/status?id={run['id']}",
            headers=pollers.requests()["oracle"].headers,
        ),
        build("GET", "/selfservice/v1/executions/status?id=1&requestor=TESTER"),
        build("GET", f"/datasourcesvc/api/v1/orchrun/{run['id']}?nsfilter=default", headers=bearer),
        build("GET", f"/datasourcesvc/api/v1/orchrun/{run['uuid']}", headers=bearer),
        build("GET", "/datasourcesvc/api/v1/orchrun/nope?nsfilter=default", headers=bearer),
        build("GET", "/datasourcesvc/api/v1/orchrun/nope?nsfilter=elsewhere", headers=bearer),
    ]
    return [("variant", r) for r in out]
