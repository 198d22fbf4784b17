"""Outbound requests reach public addresses only (as shipped): webhook subscriptions and a
run's ``notify_url`` are refused when their host is or resolves to a private address, and an
``http`` step fails without sending anything."""

from __future__ import annotations

import httpx
import pytest
from apikit import YAML, ApiKit, assert_problem

FORBIDDEN = [
    ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
    ("http://127.1.2.3/hook", "127.1.2.3 is a loopback address"),
    ("http://[::1]:8080/hook", "::1 is a loopback address"),
    ("http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
    ("http://[::]/hook", ":: is an unspecified address"),
    ("http://[::ffff:127.0.0.1]/hook", "is a loopback address"),
    ("http://localhost:8080/hook", "is a loopback address"),
    ("http://LOCALHOST./hook", "is a loopback address"),
    ("http://2130706433/hook", "127.0.0.1 is a loopback address"),
    ("https://10.0.0.8/hook", "10.0.0.8 is a private address"),
    ("https://192.168.1.1/hook", "192.168.1.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("http://[fd12::1]/hook", "fd12::1 is a private address"),
    ("http://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
]
HELLO = """\
name: hello
steps:
  - {id: hi, uses: python, with: {function: "demo_steps:noop"}}
"""


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN)
async def test_private_destinations_are_refused_at_subscription_and_start(
    api: httpx.AsyncClient, kit: ApiKit, url: str, reason: str
) -> None:
    problem = assert_problem(await api.post("/api/v1/webhooks", json={"url": url}), 422,
                             "url_not_allowed")  # fmt: skip
    assert reason in problem["detail"]
    assert problem["detail"].startswith("destination ")
    assert problem["errors"] == [
        {"path": "url", "message": problem["detail"], "code": "url_not_allowed"}
    ]
    assert (await api.get("/api/v1/webhooks")).json()["webhooks"] == []

    await kit.apply(HELLO)
    r = await api.post("/api/v1/runs", json={"workflow": "hello", "notify_url": url})
    problem = assert_problem(r, 422, "url_not_allowed")
    assert reason in problem["detail"]
    assert problem["errors"][0]["path"] == "notify_url"
    assert (await api.get("/api/v1/runs")).json()["runs"] == []


async def test_public_destinations_are_accepted(api: httpx.AsyncClient, kit: ApiKit) -> None:
    # (names that do not resolve now are checked again at each delivery)
    for url in ["https://hooks.example.com/legato", "http://93.184.215.14/hook"]:
        assert (await api.post("/api/v1/webhooks", json={"url": url})).status_code == 201
    await kit.apply(HELLO)
    r = await api.post(
        "/api/v1/runs", json={"workflow": "hello", "notify_url": "https://hooks.example.com/x"}
    )
    assert r.status_code == 201, r.text


async def test_http_steps_to_a_name_that_resolves_to_loopback_fail_unsent(
    api: httpx.AsyncClient, kit: ApiKit, live_url: str
) -> None:
    port = httpx.URL(live_url).port
    await kit.apply(
        f"name: probe\nsteps:\n  - id: get\n    uses: http\n"
        f"    with: {{url: 'http://localhost:{port}/healthz'}}\n",
        headers=YAML,
    )
    run = await kit.wait((await kit.launch("probe"))["id"])
    assert run["status"] == "FAILED"
    error = run["steps"][0]["error"]
    assert error["code"] == "url_not_allowed"
    assert error["message"].startswith(f"GET http://localhost:{port}/healthz: destination ")
    assert "loopback address" in error["message"]
    assert run["steps"][0]["attempt"] == 1  # not retried
