"""The outbound guard at delivery and execution time, on both stores, with an installation that
allows 127.0.0.1/32 only: a webhook to another loopback address is refused without
connecting (the log cannot tell an open port from a closed one), and an ``http`` step's
redirect from an allowed address to a refused one is refused at the hop."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from helpers import admin, apply, run_workflow, sleep_until, start, wait_for

from legato.engine.delivery import DeliveryConfig
from legato.runtime import Legato
from legato.settings import Settings
from legato.store import outbox as outbox_store
from legato.store import webhooks as webhook_store
from legato.store.database import Tx
from tests.conftest import FAST, SETTINGS


@pytest.fixture
def settings() -> Settings:
    return SETTINGS.model_copy(update={"allowed_cidrs": (ipaddress.ip_network("127.0.0.1/32"),)})


class Local:
    """A local HTTP server that records its requests; ``/redirect?to=URL`` answers 302."""

    def __init__(self, host: str) -> None:
        self.requests: list[str] = []
        local = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                local.requests.append(f"{self.command} {self.path}")
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/redirect?to="))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allowed() -> Iterator[Local]:
    server = Local("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def refused() -> Iterator[Local]:
    server = Local("127.0.0.2")  # loopback, outside 127.0.0.1/32
    yield server
    server.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return int(s.getsockname()[1])


HELLO = 'name: hello\nsteps:\n  - {id: hi, uses: python, with: {function: "demo_steps:noop"}}\n'


async def test_refused_webhooks_are_logged_as_refused_without_connecting(
    legato: Legato, refused: Local
) -> None:
    legato.delivery = DeliveryConfig(initial_backoff=0.05, max_attempts=4, poll_interval=0.05)
    legato.start_engine(config=FAST, reaper_interval=0.2)
    p = await admin(legato)
    open_url, closed_url = f"{refused.url}/hook", f"http://127.0.0.2:{_closed_port()}/hook"
    for url in (open_url, closed_url):  # (stored as an older installation would have)

        async def subscribe(tx: Tx, url: str = url) -> None:
            await webhook_store.insert_webhook(
                tx.conn, p.namespace_id, url, "whsec_x", ["run.succeeded"], [], True, time.time()
            )
            tx.wake(outbox_store.WEBHOOKS_TOPIC)

        await legato.db.write(subscribe)
    await apply(legato, HELLO)
    run = await wait_for(legato, (await start(legato, "hello"))["id"])
    assert run["status"] == "SUCCEEDED"

    async def settled() -> bool:
        log = (await legato.webhooks.deliveries(p))["deliveries"]
        return len(log) == 2 and all(d["status"] != "PENDING" for d in log)

    await sleep_until(settled, timeout=15)
    log = {d["url"]: d for d in (await legato.webhooks.deliveries(p))["deliveries"]}
    refusal = (
        "url_not_allowed: destination 127.0.0.2 is not allowed: 127.0.0.2 is a loopback "
        "address, which outbound requests may not reach"
    )
    for url in (open_url, closed_url):
        entry = log[url]
        assert entry["status"] == "FAILED"
        assert entry["last_error"] == refusal
        assert [(a["attempt"], a["status_code"], a["error"], a["duration_ms"])
                for a in entry["attempts"]] == [(1, None, refusal, 0)]  # fmt: skip
    assert refused.requests == []


async def test_http_step_redirects_are_checked_at_every_hop(
    engine: Legato, allowed: Local, refused: Local
) -> None:
    source = f"""\
name: hops
steps:
  - id: stays
    uses: http
    with: {{url: "{allowed.url}/redirect?to={allowed.url}/ok", follow_redirects: true}}
  - id: leaves
    uses: http
    with: {{url: "{allowed.url}/redirect?to={refused.url}/ok", follow_redirects: true}}
  - id: direct
    uses: http
    with: {{url: "{refused.url}/ok"}}
"""
    run = await run_workflow(engine, source)
    steps = {s["key"]: s for s in run["steps"]}
    assert steps["stays"]["status"] == "SUCCEEDED"
    assert steps["stays"]["outputs"]["json"] == {"ok": True}
    refusal = (
        "destination 127.0.0.2 is not allowed: 127.0.0.2 is a loopback address, which "
        "outbound requests may not reach"
    )
    assert steps["leaves"]["error"] == {
        "code": "url_not_allowed",
        "message": f"GET {allowed.url}/redirect?to={refused.url}/ok: {refusal}",
    }
    assert steps["direct"]["error"] == {
        "code": "url_not_allowed",
        "message": f"GET {refused.url}/ok: {refusal}",
    }
    assert sorted(allowed.requests) == [  # (the steps ran side by side)
        "GET /ok",
        f"GET /redirect?to={allowed.url}/ok",
        f"GET /redirect?to={refused.url}/ok",
    ]
    assert refused.requests == []
