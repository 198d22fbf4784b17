"""An admin of a tenant administers only that tenant; admins of `default` administer all."""

from __future__ import annotations

import httpx
from apikit import ApiKit, assert_problem, bearer


async def test_tenant_admin_stays_inside_its_namespace(api: httpx.AsyncClient, kit: ApiKit) -> None:
    tenant_admin = bearer((await kit.new_key("admin", "tenant-b"))["key"])
    # its own namespace: fine
    r = await api.post("/api/v1/keys", json={"name": "ci", "role": "operator"},
                       headers=tenant_admin)  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["namespace"] == "tenant-b"
    # another namespace: refused, whatever the call
    for method, path, body in [
        ("POST", "/api/v1/keys", {"name": "x", "role": "admin", "namespace": "default"}),
        ("POST", "/api/v1/users", {"username": "mallory", "password": "correct horse battery",
                                   "role": "admin", "namespace": "default"}),
        ("POST", "/api/v1/namespaces", {"name": "tenant-c"}),
        ("PATCH", "/api/v1/namespaces/default", {"max_queued_runs": 1}),
    ]:  # fmt: skip
        r = await api.request(method, path, json=body, headers=tenant_admin)
        assert_problem(r, 403, "forbidden")
    listed = (await api.get("/api/v1/namespaces", headers=tenant_admin)).json()["namespaces"]
    assert [n["name"] for n in listed] == ["tenant-b"]
    # the installation's admin sees every namespace
    everything = (await api.get("/api/v1/namespaces")).json()["namespaces"]
    assert {n["name"] for n in everything} >= {"default", "tenant-b"}


async def test_tenant_admin_cannot_see_or_delete_other_tenants_users(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    r = await api.post("/api/v1/users", json={"username": "alice", "password": "a long passphrase",
                                              "role": "viewer"})  # fmt: skip
    assert r.status_code == 201, r.text
    alice = r.json()["id"]
    tenant_admin = bearer((await kit.new_key("admin", "tenant-b"))["key"])
    assert (await api.get("/api/v1/users", headers=tenant_admin)).json() == {"users": []}
    r = await api.delete(f"/api/v1/users/{alice}", headers=tenant_admin)
    assert_problem(r, 404, "user_not_found")
    assert [u["username"] for u in (await api.get("/api/v1/users")).json()["users"]] == ["alice"]
