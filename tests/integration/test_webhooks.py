"""Webhooks end to end on both stores: a real HTTP receiver gets every transition of a run,
in order, signed, after failing the first deliveries; subscriptions filter; the delivery log
shows each attempt; redelivery sends again; another tenant sees none of it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from helpers import admin, apply, sleep_until, wait_for

from legato.engine.delivery import DeliveryConfig
from legato.engine.worker import WorkerConfig
from legato.model.errors import NotFound
from legato.model.starts import StartRun
from legato.runtime import Legato
from legato.settings import Settings
from legato.store.outbox import purge_settled
from tests.conftest import LOCAL_RECEIVERS

FAST = WorkerConfig(concurrency=16, lease_seconds=2.0, poll_interval=0.05, flush_interval=0.05)
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
TWO_STEPS = """
name: two-steps
steps:
  - id: first
    uses: python
    with: {function: "demo_steps:add", a: 1, b: 2}
  - id: second
    needs: [first]
    uses: python
    with: {function: "demo_steps:add", a: 3, b: 4}
"""
EXPECTED = [
    ("run.queued", None),
    ("run.started", None),
    ("step.started", "first"),
    ("step.succeeded", "first"),
    ("step.started", "second"),
    ("step.succeeded", "second"),
    ("run.succeeded", None),
]


@pytest.fixture
def settings() -> Settings:
    """These tests post to a receiver on 127.0.0.1: the installation allows it."""
    return LOCAL_RECEIVERS


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A local HTTP server that answers 500 to the first ``fail_first`` requests of each path
    (and to every request of a path in ``always_fail``), 204 otherwise."""

    url: str = ""
    fail_first: int = 0
    always_fail: set[str] = field(default_factory=set)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self, path: str = "/hook") -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path and r.status == 204]

    def all(self, path: str = "/hook") -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                seen = sum(1 for r in state.requests if r.path == self.path)
                failing = self.path in state.always_fail or seen < state.fail_first
                status = 500 if failing else 204
                state.requests.append(
                    Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                    )
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def hooked(legato: Legato) -> AsyncIterator[Legato]:
    """The engine with webhook retries shortened for tests."""
    legato.delivery = DeliveryConfig(initial_backoff=0.05, max_attempts=4, poll_interval=0.05)
    legato.start_engine(workers=1, config=FAST, reaper_interval=0.2)
    yield legato


def assert_signed(request: Received, secret: str) -> None:
    timestamp = request.headers["x-legato-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["x-legato-signature"] == "sha256=" + mac.hexdigest()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-legato-event"] == request.json["type"]


async def settled(legato: Legato, **filters: Any) -> list[dict[str, Any]]:
    """The delivery log once nothing is pending any more."""
    p = await admin(legato)
    log: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal log
        log = (await legato.webhooks.deliveries(p, **filters))["deliveries"]
        return all(d["status"] != "PENDING" for d in log)

    try:
        await sleep_until(done, timeout=15)
    except AssertionError:
        raise AssertionError(f"deliveries still pending: {log}") from None
    return log


async def start_run(legato: Legato, workflow: str, notify_url: str | None = None) -> int:
    view, _ = await legato.runs.start(
        await admin(legato), StartRun(workflow, notify_url=notify_url)
    )
    run = await wait_for(legato, view["id"])
    assert run["status"] == "SUCCEEDED", run
    return int(run["id"])


async def test_notify_url_gets_every_transition_in_order_after_two_failures(
    hooked: Legato, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    await apply(hooked, TWO_STEPS)
    run_id = await start_run(hooked, "two-steps", f"{receiver.url}/hook")
    log = await settled(hooked, run=run_id)
    p = await admin(hooked)
    secret = (await hooked.webhooks.signing_secret(p))["secret"]
    assert secret.startswith("whsec_")

    accepted = receiver.accepted()
    assert [(r.json["type"], (r.json["step"] or {}).get("key")) for r in accepted] == EXPECTED
    # the first delivery failed twice; nothing later overtook it
    assert [(r.json["type"], r.status) for r in receiver.all()[:3]] == [
        ("run.queued", 500),
        ("run.queued", 500),
        ("run.queued", 204),
    ]
    assert len(receiver.all()) == len(EXPECTED) + 2
    for r in receiver.all():
        assert_signed(r, secret)
        assert list(r.json) == ["id", "type", "time", "run", "step", "message", "data"]
        assert re.match(ISO, r.json["time"])
    assert len({r.json["id"] for r in accepted}) == len(EXPECTED)
    assert len({r.headers["x-legato-delivery"] for r in accepted}) == len(EXPECTED)

    run = await hooked.runs.get(p, run_id)
    last = accepted[-1].json
    assert last == {
        "id": last["id"],
        "type": "run.succeeded",
        "time": last["time"],
        "run": {
            "id": run_id,
            "uuid": run["uuid"],
            "workflow": "two-steps",
            "status": "SUCCEEDED",
            "namespace": "default",
        },
        "step": None,
        "message": "Succeeded",
        "data": None,
    }
    assert last["time"] == run["finished_at"]
    step = accepted[3].json
    first = next(s for s in run["steps"] if s["key"] == "first")
    assert step["step"] == {"id": first["id"], "key": "first", "status": "SUCCEEDED"}
    assert step["run"]["status"] == "RUNNING"

    # the log: newest first, every attempt with its answer
    assert [d["event_type"] for d in reversed(log)] == [t for t, _ in EXPECTED]
    queued = log[-1]
    assert queued["status"] == "DELIVERED"
    assert queued["webhook_id"] is None
    assert queued["url"] == f"{receiver.url}/hook"
    assert queued["in_flight"] is False
    assert queued["next_attempt_at"] is None
    assert queued["last_error"] is None
    assert queued["payload"] == accepted[0].json
    assert [(a["attempt"], a["status_code"], a["error"]) for a in queued["attempts"]] == [
        (1, 500, "HTTP 500"),
        (2, 500, "HTTP 500"),
        (3, 204, None),
    ]
    assert all(a["duration_ms"] >= 0 for a in queued["attempts"])
    assert str(queued["id"]) == accepted[0].headers["x-legato-delivery"]
    assert all(len(d["attempts"]) == 1 for d in log[:-1])


async def test_subscriptions_filter_by_event_type_and_workflow(
    hooked: Legato, receiver: Receiver
) -> None:
    p = await admin(hooked)
    await apply(hooked, TWO_STEPS)
    runs_only = await hooked.webhooks.create(p, f"{receiver.url}/runs", ["run.*"])
    other_wf = await hooked.webhooks.create(p, f"{receiver.url}/other", [], ["another"])
    steps_ok = await hooked.webhooks.create(
        p, f"{receiver.url}/steps", ["step.succeeded"], ["two-steps"], secret="s" * 20
    )
    everything = await hooked.webhooks.create(p, f"{receiver.url}/all")
    assert steps_ok["secret"] == "s" * 20
    assert runs_only["secret"].startswith("whsec_")

    await start_run(hooked, "two-steps")
    await settled(hooked)

    def types(path: str) -> list[str]:
        return [r.json["type"] for r in receiver.accepted(path)]

    assert types("/runs") == ["run.queued", "run.started", "run.succeeded"]
    assert types("/other") == []
    assert types("/steps") == ["step.succeeded", "step.succeeded"]
    assert types("/all") == [t for t, _ in EXPECTED]
    for path, sub in (("/runs", runs_only), ("/steps", steps_ok), ("/all", everything)):
        for r in receiver.accepted(path):
            assert_signed(r, sub["secret"])
    log = (await hooked.webhooks.deliveries(p, webhook_id=runs_only["id"]))["deliveries"]
    assert [d["event_type"] for d in log] == ["run.succeeded", "run.started", "run.queued"]
    assert other_wf["id"] not in {d["webhook_id"] for d in (await settled(hooked))}

    # a deleted subscription gets nothing more
    await hooked.webhooks.delete(p, everything["id"])
    await start_run(hooked, "two-steps")
    await settled(hooked)
    assert len(types("/all")) == len(EXPECTED)
    assert len(types("/runs")) == 6


async def test_failed_delivery_gives_up_then_the_next_event_goes(
    hooked: Legato, receiver: Receiver
) -> None:
    receiver.always_fail = {"/hook"}
    p = await admin(hooked)
    await apply(hooked, TWO_STEPS)
    await hooked.webhooks.create(p, f"{receiver.url}/hook", ["run.queued", "run.succeeded"])
    await start_run(hooked, "two-steps")
    log = await settled(hooked)
    assert [(d["event_type"], d["status"], len(d["attempts"])) for d in log] == [
        ("run.succeeded", "FAILED", 4),
        ("run.queued", "FAILED", 4),
    ]
    assert log[0]["last_error"] == "HTTP 500"
    assert [r.json["type"] for r in receiver.all()] == ["run.queued"] * 4 + ["run.succeeded"] * 4
    failed = (await hooked.webhooks.deliveries(p, status="FAILED"))["deliveries"]
    assert len(failed) == 2
    assert (await hooked.webhooks.deliveries(p, status="DELIVERED"))["deliveries"] == []


async def test_redelivery_and_tenant_isolation(hooked: Legato, receiver: Receiver) -> None:
    p = await admin(hooked)
    await apply(hooked, TWO_STEPS)
    run_id = await start_run(hooked, "two-steps", f"{receiver.url}/hook")
    log = await settled(hooked, run=run_id)
    original = log[0]
    assert original["event_type"] == "run.succeeded"

    again = await hooked.webhooks.redeliver(p, original["id"])
    assert again["redelivery_of"] == original["id"]
    assert again["status"] == "PENDING"
    assert again["payload"] == original["payload"]
    assert again["id"] > original["id"]
    await settled(hooked, run=run_id)
    last = receiver.accepted()[-1]
    assert last.json == original["payload"]
    assert last.headers["x-legato-delivery"] == str(again["id"])
    assert len(receiver.accepted()) == len(EXPECTED) + 1
    secret = (await hooked.webhooks.signing_secret(p))["secret"]
    assert_signed(last, secret)

    # another tenant sees nothing of it
    key = await hooked.tenancy.create_key(p, "other", "admin", "tenant-b")
    other = await hooked.tenancy.authenticate(key["key"])
    assert (await hooked.webhooks.deliveries(other))["deliveries"] == []
    with pytest.raises(NotFound):
        await hooked.webhooks.deliveries(other, run=run_id)
    with pytest.raises(NotFound):
        await hooked.webhooks.redeliver(other, original["id"])
    with pytest.raises(NotFound):
        await hooked.webhooks.delivery(other, original["id"])
    sub = await hooked.webhooks.create(p, f"{receiver.url}/a")
    with pytest.raises(NotFound):
        await hooked.webhooks.delete(other, sub["id"])
    assert await hooked.webhooks.list(other) == []
    assert (await hooked.webhooks.signing_secret(other))["secret"] != secret


async def test_old_settled_deliveries_are_purged(hooked: Legato, receiver: Receiver) -> None:
    p = await admin(hooked)
    await apply(hooked, TWO_STEPS)
    run_id = await start_run(hooked, "two-steps", f"{receiver.url}/hook")
    assert len(await settled(hooked, run=run_id)) == len(EXPECTED)
    assert await purge_settled(hooked.db, time.time() - 3600) == 0
    assert await purge_settled(hooked.db, time.time() + 1, batch=3) == len(EXPECTED)
    assert (await hooked.webhooks.deliveries(p))["deliveries"] == []


async def test_nothing_queued_without_destinations(hooked: Legato) -> None:
    p = await admin(hooked)
    await apply(hooked, TWO_STEPS)
    await start_run(hooked, "two-steps")
    await start_run(hooked, "two-steps")
    assert (await hooked.webhooks.deliveries(p))["deliveries"] == []
