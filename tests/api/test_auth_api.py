"""Authentication, roles and namespaces through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from apikit import ADMIN_KEY, ISO_TIME, YAML, ApiKit, assert_problem, bearer

HELLO = """\
name: hello
steps:
  - id: greet
    uses: python
    with: {function: "demo_steps:echo", who: world}
"""


async def test_missing_or_bad_credentials_are_401(api: httpx.AsyncClient) -> None:
    calls = [
        ("GET", "/api/v1/runs"), ("GET", "/api/v1/runs/1"), ("POST", "/api/v1/runs"),
        ("GET", "/api/v1/workflows"), ("PUT", "/api/v1/workflows/hello"),
        ("POST", "/api/v1/keys"), ("GET", "/api/v1/runs/1/logs"),
    ]  # fmt: skip
    for authorization in (None, "", "Bearer", "Bearer ", f"Basic {ADMIN_KEY}",
                          "Bearer lg_not_a_key", f"Bearer {ADMIN_KEY}x"):  # fmt: skip
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, path in calls:
            request = api.build_request(method, path, headers=headers)
            if authorization is None:
                del request.headers["Authorization"]
            r = await api.send(request)
            assert_problem(r, 401, "unauthorized", "Authentication required")
            assert r.headers["www-authenticate"] == "Bearer", (authorization, path)


async def test_no_credentials_answer_exactly(api: httpx.AsyncClient) -> None:
    request = api.build_request("GET", "/api/v1/runs")
    del request.headers["Authorization"]
    r = await api.send(request)
    assert r.status_code == 401
    body = r.json()
    assert body == {
        "type": "https://legato.dev/problems/unauthorized",
        "title": "Authentication required",
        "status": 401,
        "detail": body["detail"],
        "code": "unauthorized",
    }
    assert "Authorization: Bearer" in body["detail"]


async def test_health_and_openapi_need_no_credentials(api: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/openapi.json"):
        request = api.build_request("GET", path)
        del request.headers["Authorization"]
        r = await api.send(request)
        assert r.status_code == 200, r.text
        if path == "/healthz":
            assert r.json() == {"status": "ok"}
    spec = (await api.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/logs",
                 "/api/v1/workflows/{name}", "/api/v1/keys"):  # fmt: skip
        assert path in spec["paths"], path


async def test_admin_creates_keys_that_work(api: httpx.AsyncClient, kit: ApiKit) -> None:
    r = await api.post(
        "/api/v1/keys", json={"name": "tenant b ops", "role": "operator", "namespace": "tenant-b"}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {
        "id": created["id"], "name": "tenant b ops", "role": "operator",
        "namespace": "tenant-b", "prefix": created["key"][:10], "key": created["key"],
        "created_at": created["created_at"],
    }  # fmt: skip
    assert isinstance(created["id"], int)
    assert created["key"].startswith("lg_") and len(created["key"]) >= 32
    assert ISO_TIME.match(created["created_at"])
    other = await kit.new_key("operator", "tenant-b")
    assert other["key"] != created["key"]

    viewer = await kit.new_key("viewer")
    assert viewer["namespace"] == "default" and viewer["role"] == "viewer"

    for key in (created["key"], viewer["key"]):
        r = await api.get("/api/v1/runs", headers=bearer(key))
        assert r.status_code == 200, r.text


async def test_bad_key_requests_are_422(api: httpx.AsyncClient) -> None:
    bad: list[tuple[Any, str]] = [
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x", "namespace": "Bad NS"}, "namespace"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"role": "viewer"}, "name"),
        ({"name": "x", "extra": 1}, "extra"),
        ([1], "body"),
    ]
    for body, path in bad:
        r = await api.post("/api/v1/keys", json=body)
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"][0]["path"] == path, (body, problem)


async def test_only_admins_create_keys(api: httpx.AsyncClient, kit: ApiKit) -> None:
    for role in ("viewer", "operator"):
        key = (await kit.new_key(role))["key"]
        r = await api.post(
            "/api/v1/keys", json={"name": "mine", "role": "admin"}, headers=bearer(key)
        )
        assert_problem(r, 403, "forbidden")
        r = await api.post(
            "/api/v1/keys",
            json={"name": "mine", "role": "viewer", "namespace": "elsewhere"},
            headers=bearer(key),
        )
        assert_problem(r, 403, "forbidden")


async def test_viewer_reads_but_cannot_change_anything(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(HELLO)
    run = await kit.wait((await kit.launch("hello"))["id"])
    viewer = bearer((await kit.new_key("viewer"))["key"])

    r = await api.post("/api/v1/runs", json={"workflow": "hello"}, headers=viewer)
    assert_problem(r, 403, "forbidden")
    r = await api.put("/api/v1/workflows/hello", content=HELLO, headers={**YAML, **viewer})
    assert_problem(r, 403, "forbidden")
    assert_problem(await api.post(f"/api/v1/runs/{run['id']}/cancel", headers=viewer), 403,
                   "forbidden")  # fmt: skip
    assert_problem(await api.delete(f"/api/v1/runs/{run['id']}", headers=viewer), 403,
                   "forbidden")  # fmt: skip

    assert (await api.get(f"/api/v1/runs/{run['id']}", headers=viewer)).json() == run
    listed = await api.get("/api/v1/runs", headers=viewer)
    assert [x["id"] for x in listed.json()["runs"]] == [run["id"]]
    for path in ("/steps", "/steps/greet", "/logs", "/events"):
        r = await api.get(f"/api/v1/runs/{run['id']}{path}", headers=viewer)
        assert r.status_code == 200, (path, r.text)
        assert r.content == (await api.get(f"/api/v1/runs/{run['id']}{path}")).content
    r = await api.get("/api/v1/workflows/hello", headers=viewer)
    assert r.status_code == 200 and r.json()["version"] == 1
    assert len((await api.get("/api/v1/workflows", headers=viewer)).json()["workflows"]) == 1
    # nothing changed: one run, still there, one workflow version
    assert await kit.get_run(run["id"]) == run


async def test_another_namespace_sees_nothing_of_default(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(HELLO)
    run = await kit.wait((await kit.launch("hello"))["id"])
    tenant_b = bearer((await kit.new_key("admin", "tenant-b"))["key"])

    for ref in (run["id"], run["uuid"]):
        for method, path in [
            ("GET", ""), ("GET", "/steps"), ("GET", "/steps/greet"), ("GET", "/logs"),
            ("GET", "/logs?follow=true"), ("GET", "/events"), ("POST", "/cancel"),
            ("DELETE", ""),
        ]:  # fmt: skip
            r = await api.request(method, f"/api/v1/runs/{ref}{path}", headers=tenant_b)
            assert_problem(r, 404, "run_not_found")

    empty = await api.get("/api/v1/runs", headers=tenant_b)
    assert empty.json() == {"runs": [], "next_page_token": None}
    for params in ({"workflow": "hello"}, {"status": "SUCCEEDED"}):
        r = await api.get("/api/v1/runs", params=params, headers=tenant_b)
        assert r.json() == {"runs": [], "next_page_token": None}
    assert (await api.get("/api/v1/workflows", headers=tenant_b)).json() == {"workflows": []}
    assert_problem(await api.get("/api/v1/workflows/hello", headers=tenant_b), 404,
                   "workflow_not_found")  # fmt: skip
    r = await api.post("/api/v1/runs", json={"workflow": "hello"}, headers=tenant_b)
    assert_problem(r, 404, "workflow_not_found")

    # the default namespace's run is untouched
    assert await kit.get_run(run["id"]) == run


async def test_namespaces_keep_their_own_workflows_and_runs(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(HELLO)
    mine = await kit.wait((await kit.launch("hello"))["id"])
    key_b = (await kit.new_key("operator", "tenant-b"))["key"]
    tenant_b = bearer(key_b)

    r = await api.put("/api/v1/workflows/hello", content=HELLO, headers={**YAML, **tenant_b})
    assert r.status_code == 201, r.text  # a new workflow in tenant-b, not a repeat of default's
    assert (r.json()["namespace"], r.json()["version"]) == ("tenant-b", 1)
    theirs = await kit.wait((await kit.launch("hello", key=key_b))["id"], key=key_b)
    assert theirs["namespace"] == "tenant-b" and theirs["status"] == "SUCCEEDED"

    listed_b = (await api.get("/api/v1/runs", headers=tenant_b)).json()["runs"]
    assert [x["id"] for x in listed_b] == [theirs["id"]]
    listed = (await api.get("/api/v1/runs")).json()["runs"]
    assert [x["id"] for x in listed] == [mine["id"]]
    assert_problem(await api.get(f"/api/v1/runs/{theirs['id']}"), 404, "run_not_found")


async def test_only_admins_list_namespaces(api: httpx.AsyncClient, kit: ApiKit) -> None:
    for role in ("viewer", "operator"):
        key = (await kit.new_key(role))["key"]
        r = await api.get("/api/v1/namespaces", headers=bearer(key))
        assert_problem(r, 403, "forbidden")
    r = await api.get("/api/v1/namespaces")
    assert r.status_code == 200, r.text
    assert [n["name"] for n in r.json()["namespaces"]] == ["default"]
