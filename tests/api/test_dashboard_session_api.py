"""The dashboard's sign-in and session cookie, in process: the cookie's attributes, the API
called with it (CSRF header on anything but a read), forged, expired and revoked sessions,
namespace switching, and the pages' redirects."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from apikit import ADMIN_KEY, assert_problem, bearer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from legato.asgi import create_app
from legato.runtime import Legato
from legato.service import sessions as session_module

HELLO = """\
name: hello
steps:
  - id: greet
    uses: python
    with: {function: "demo_steps:echo", who: world}
"""
PASSWORD = "a long enough password"


@pytest.fixture
async def browser(engine: Legato) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials but its cookies, as a browser."""
    app = create_app(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://legato.test") as client:
        yield client


async def sign_in(browser: httpx.AsyncClient, key: str = ADMIN_KEY) -> str:
    """Signs in with a key; answers the session's CSRF token (as the page shows it)."""
    r = await browser.post("/ui/login", data={"method": "key", "key": key, "next": "/ui"})
    assert r.status_code == 303, r.text
    page = await browser.get("/ui")
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


async def test_the_session_cookie_is_httponly_strict_and_expiring(
    browser: httpx.AsyncClient,
) -> None:
    r = await browser.post("/ui/login", data={"method": "key", "key": ADMIN_KEY, "next": "/ui"})
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("legato_session=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert attributes == {"httponly", "max-age=28800", "path=/", "samesite=strict"}
    assert ADMIN_KEY not in cookie


async def test_the_cookie_is_secure_over_tls(engine: Legato) -> None:
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="https://legato.test") as client:
        r = await client.post("/ui/login", data={"key": ADMIN_KEY})
    assert "secure" in {a.strip().lower() for a in r.headers["set-cookie"].split(";")}


async def test_the_api_accepts_the_session_and_its_csrf_token(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    r = await api.put("/api/v1/workflows/hello", content=HELLO)
    assert r.status_code == 201
    csrf = await sign_in(browser)
    assert (await browser.get("/api/v1/runs")).status_code == 200
    start = {"workflow": "hello"}
    r = await browser.post("/api/v1/runs", json=start)
    assert_problem(r, 403, "csrf_failed")
    r = await browser.post("/api/v1/runs", json=start, headers={"X-CSRF-Token": csrf + "x"})
    assert_problem(r, 403, "csrf_failed")
    r = await browser.post("/api/v1/runs", json=start, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text


async def test_forged_expired_and_revoked_sessions_are_refused(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, engine: Legato
) -> None:
    browser.cookies.set("legato_session", "eyJrIjoxfQ.forged.signature", domain="legato.test")
    assert_problem(await browser.get("/api/v1/runs"), 401, "invalid_session")
    # a page without a valid session sends the browser to the sign-in page
    r = await browser.get("/ui/runs/1")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/runs/1"

    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 9 * 3600

    secret = await engine.sessions._secret()
    old = URLSafeTimedSerializer(secret, salt=session_module._SALT, signer=SignedLongAgo)
    browser.cookies.set(
        "legato_session", old.dumps({"k": 1, "u": None, "c": "x"}), domain="legato.test"
    )
    assert_problem(await browser.get("/api/v1/runs"), 401, "session_expired")

    r = await api.post(
        "/api/v1/users", json={"username": "uma", "password": PASSWORD, "role": "operator"}
    )
    assert r.status_code == 201, r.text
    browser.cookies.clear()
    r = await browser.post(
        "/ui/login", data={"method": "password", "username": "uma", "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    assert (await browser.get("/api/v1/runs")).status_code == 200
    assert (await api.delete(f"/api/v1/users/{await _user_id(api)}")).status_code == 204
    engine.sessions._checked.clear()  # as the recheck after a few seconds does
    assert_problem(await browser.get("/api/v1/runs"), 401, "session_revoked")


async def _user_id(api: httpx.AsyncClient) -> int:
    users = (await api.get("/api/v1/users")).json()["users"]
    return int(next(u["id"] for u in users if u["username"] == "uma"))


async def test_a_failed_sign_in_says_why_and_sets_no_cookie(browser: httpx.AsyncClient) -> None:
    r = await browser.post("/ui/login", data={"method": "key", "key": "lg_nope"})
    assert r.status_code == 401
    assert "invalid or revoked API key" in r.text
    assert "set-cookie" not in r.headers
    r = await browser.post(
        "/ui/login", data={"method": "password", "username": "nobody", "password": "x" * 12}
    )
    assert r.status_code == 401 and "set-cookie" not in r.headers


async def test_cross_site_posts_and_open_redirects_are_refused(
    browser: httpx.AsyncClient,
) -> None:
    r = await browser.post(
        "/ui/login", data={"key": ADMIN_KEY}, headers={"Origin": "https://evil.example"}
    )
    assert_problem(r, 403, "csrf_failed")
    r = await browser.post("/ui/login", data={"key": ADMIN_KEY, "next": "//evil.example/ui"})
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    await sign_in(browser)
    r = await browser.post("/ui/logout", data={"csrf": "wrong"})
    assert_problem(r, 403, "csrf_failed")


async def test_installation_admins_switch_namespaces_others_cannot(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    r = await api.post("/api/v1/keys", json={"name": "o", "role": "operator", "namespace": "other"})
    other_key = r.json()["key"]
    r = await api.put("/api/v1/workflows/hello", content=HELLO, headers=bearer(other_key))
    assert r.status_code == 201
    r = await api.post("/api/v1/runs", json={"workflow": "hello"}, headers=bearer(other_key))
    theirs = r.json()["id"]
    csrf = await sign_in(browser)
    assert (await browser.get(f"/ui/runs/{theirs}")).status_code == 404
    r = await browser.post("/ui/namespace", data={"namespace": "other", "csrf": csrf})
    assert r.status_code == 303
    assert (await browser.get(f"/ui/runs/{theirs}")).status_code == 200
    runs = (await browser.get("/api/v1/runs")).json()["runs"]
    assert [run["namespace"] for run in runs] == ["other"]
    r = await browser.post("/ui/namespace", data={"namespace": "nowhere", "csrf": csrf})
    assert_problem(r, 404, "namespace_not_found")

    browser.cookies.clear()
    csrf = await sign_in(browser, other_key)
    r = await browser.post("/ui/namespace", data={"namespace": "default", "csrf": csrf})
    assert_problem(r, 403, "forbidden")


async def test_slash_sends_a_browser_to_the_dashboard(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui"
    r = await browser.get("/ui/workflows")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/workflows"
    assert (await browser.get("/ui/login")).status_code == 200
    assert (await browser.get("/ui/static/run.js")).status_code == 200


async def test_pages_embed_run_data_safely_and_find_runs_by_any_id(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    r = await api.put("/api/v1/workflows/hello", content=HELLO)
    assert r.status_code == 201
    hostile = "</script><script>alert(1)</script>"
    r = await api.post(
        "/api/v1/runs",
        json={"workflow": "hello", "labels": {"note": hostile}, "external_id": "order-17"},
    )
    run = r.json()
    await sign_in(browser)
    for path in (f"/ui/runs/{run['id']}", "/ui"):
        page = await browser.get(path)
        assert page.status_code == 200
        assert hostile not in page.text
        assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in page.text, path
    for typed in (str(run["id"]), run["uuid"], "order-17", " order-17 "):
        r = await browser.get("/ui", params={"find": typed})
        assert r.status_code == 303 and r.headers["location"] == f"/ui/runs/{run['id']}", typed
    r = await browser.get("/ui", params={"find": "order-18"})
    assert r.status_code == 200
    assert "no run has the id, UUID or external id &#39;order-18&#39;" in r.text


async def test_operations_shows_workers_and_active_runs_per_namespace(
    browser: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    gated = "name: gated\nsteps:\n  - id: gate\n    uses: approval\n"
    assert (await api.put("/api/v1/workflows/gated", content=gated)).status_code == 201
    run = (await api.post("/api/v1/runs", json={"workflow": "gated"})).json()
    await sign_in(browser)
    for _ in range(100):  # until the worker has started the run
        if (await api.get(f"/api/v1/runs/{run['id']}")).json()["status"] == "RUNNING":
            break
        await asyncio.sleep(0.05)
    page = (await browser.get("/ui/operations")).text
    row = re.search(r'<tr><th scope="row">default</th>(.*?)</tr>', page, re.S)
    assert row is not None, page
    assert re.findall(r"<td>([^<]*)</td>", row.group(1))[:2] == ["0", "1"]  # queued, running
    assert re.search(r'<tbody>\s*<tr><th scope="row">[^<]+</th><td>', page)  # a worker row
    assert (await api.post(f"/api/v1/runs/{run['id']}/cancel")).status_code == 200


async def test_the_runs_page_pages_by_token_keeping_its_filters(
    browser: httpx.AsyncClient, api: httpx.AsyncClient, engine: Legato
) -> None:
    assert (await api.put("/api/v1/workflows/hello", content=HELLO)).status_code == 201
    for _ in range(51):
        assert (await api.post("/api/v1/runs", json={"workflow": "hello"})).status_code == 201
    await sign_in(browser)
    page = await browser.get("/ui", params={"workflow": "hello"})
    found = re.search(r'<a id="next-page" href="([^"]+)">', page.text)
    assert found is not None
    link = found.group(1).replace("&amp;", "&")
    assert link.startswith("/ui?workflow=hello&page_token=")
    older = await browser.get(link)
    data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', older.text)
    assert data is not None
    body = json.loads(data.group(1))
    assert len(body["page"]["runs"]) == 1 and body["first_page"] is False
