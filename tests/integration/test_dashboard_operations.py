"""The dashboard's operations page lists a failed webhook delivery, and its redeliver button's
call (the API with the session cookie and CSRF token) queues it again."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from helpers import ADMIN_KEY, admin, apply, sleep_until

from legato.asgi import create_app
from legato.engine.delivery import DeliveryConfig
from legato.model.starts import StartRun
from legato.runtime import Legato
from legato.settings import Settings
from tests.conftest import FAST, LOCAL_RECEIVERS

ONE_STEP = """
name: one
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
"""


@pytest.fixture
def settings() -> Settings:
    """The failing destination is a closed port on 127.0.0.1: the installation allows it."""
    return LOCAL_RECEIVERS


@pytest.fixture
async def hooked(legato: Legato) -> AsyncIterator[Legato]:
    legato.delivery = DeliveryConfig(initial_backoff=0.05, max_attempts=2, poll_interval=0.05)
    legato.start_engine(workers=1, config=FAST, reaper_interval=0.2)
    yield legato


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


async def test_a_failed_delivery_is_listed_and_redelivered_with_the_session(
    hooked: Legato,
) -> None:
    await apply(hooked, ONE_STEP)
    p = await admin(hooked)
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    await hooked.runs.start(p, StartRun("one", notify_url=url))

    async def failed() -> bool:
        found = await hooked.webhooks.deliveries(p, status="FAILED")
        return bool(found["deliveries"])

    await sleep_until(failed, timeout=30)
    delivery = (await hooked.webhooks.deliveries(p, status="FAILED"))["deliveries"][0]

    transport = httpx.ASGITransport(app=create_app(hooked))
    async with httpx.AsyncClient(transport=transport, base_url="http://legato.test") as browser:
        r = await browser.post("/ui/login", data={"key": ADMIN_KEY})
        assert r.status_code == 303
        page = (await browser.get("/ui/operations")).text
        assert f'<button type="button" class="redeliver" data-id="{delivery["id"]}">' in page
        assert url in page
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
        assert csrf is not None
        r = await browser.post(
            f"/api/v1/webhooks/deliveries/{delivery['id']}/redeliver",
            headers={"X-CSRF-Token": csrf.group(1)},
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "PENDING"
