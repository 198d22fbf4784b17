"""Identities and tenant administration through HTTP: users with passwords (Basic and
``login``/``password``), JWT bearer tokens against a registered JWKS, namespaces."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from apikit import ISO_TIME, YAML, ApiKit, assert_problem, bearer
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HELLO = """\
name: hello
steps:
  - id: greet
    uses: python
    with: {function: "demo_steps:echo", who: world}
"""
PASSWORD = "correct horse battery"
IDENTIFIER = "3f2b8c1e-9d4a-4e6b-8a7c-1b2c3d4e5f60"
ISSUER = "https://idcs.example.com/"
AUDIENCE = "https://legato.example.com/"
SCOPE = "mcs:oci:api:User"


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig"}


def mint(
    claims: dict[str, Any] | None = None,
    *,
    key: Any = None,
    kid: str | None = "k1",
    algorithm: str = "RS256",
    drop: tuple[str, ...] = (),
) -> str:
    now = int(time.time())
    body = {
        "sub": "alice@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "scope": f"openid {SCOPE}",
        **(claims or {}),
    }
    for name in drop:
        body.pop(name)
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(body, key or rsa_key(), algorithm=algorithm, headers=headers)


def jwt_headers(token: str, identifier: str | None = IDENTIFIER) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if identifier is not None:
        headers["Identifier"] = identifier
    return headers


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def no_auth(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Request:
    request = api.build_request(method, path, **kwargs)
    del request.headers["Authorization"]
    return request


async def send(
    api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A request carrying only the given credentials (not the client's admin key)."""
    request = api.build_request(method, path)
    del request.headers["Authorization"]
    request.headers.update(headers or {})
    return await api.send(request)


async def new_user(
    api: httpx.AsyncClient, username: str, role: str, namespace: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "password": PASSWORD, "role": role}
    if namespace is not None:
        body["namespace"] = namespace
    r = await api.post("/api/v1/users", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def register(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": IDENTIFIER,
        "keys": {"keys": [public_jwk(rsa_key(), "k1")]},
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "required_scope": SCOPE,
        "role": "operator",
        "namespace": "tenant-b",
        **overrides,
    }
    r = await api.post("/api/v1/jwks", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# -- users ---------------------------------------------------------------------------------


async def test_users_are_created_listed_and_deleted(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/users",
        json={"username": "ops", "password": PASSWORD, "role": "operator", "namespace": "tenant-b"},
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user == {
        "id": user["id"], "username": "ops", "role": "operator", "namespace": "tenant-b",
        "created_at": user["created_at"],
    }  # fmt: skip
    assert isinstance(user["id"], int) and ISO_TIME.match(user["created_at"])
    viewer = await new_user(api, "watcher", "viewer")
    assert viewer["namespace"] == "default"

    listed = (await api.get("/api/v1/users")).json()
    assert listed == {"users": [user, viewer]}  # never a hash, not even a field for it

    assert_problem(
        await api.post("/api/v1/users", json={"username": "ops", "password": PASSWORD}),
        409,
        "user_exists",
    )
    assert (await send(api, "GET", "/api/v1/runs", basic("ops", PASSWORD))).status_code == 200
    assert (await api.delete(f"/api/v1/users/{user['id']}")).status_code == 204
    assert_problem(await api.delete(f"/api/v1/users/{user['id']}"), 404, "user_not_found")
    assert (await api.get("/api/v1/users")).json() == {"users": [viewer]}
    # the deleted user's verified password is forgotten at once
    r = await send(api, "GET", "/api/v1/runs", basic("ops", PASSWORD))
    assert_problem(r, 401, "bad_credentials")


async def test_bad_user_requests_are_422_and_only_admins_manage_users(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    bad: list[tuple[Any, str]] = [
        ({"username": "a", "password": "short"}, "password"),
        ({"username": "a:b", "password": PASSWORD}, "username"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "a", "password": PASSWORD, "role": "root"}, "role"),
        ({"username": "a", "password": PASSWORD, "hash": "x"}, "hash"),
        ({"password": PASSWORD}, "username"),
    ]
    for body, path in bad:
        problem = assert_problem(
            await api.post("/api/v1/users", json=body), 422, "validation_error"
        )
        assert problem["errors"][0]["path"] == path, (body, problem)
    await new_user(api, "op", "operator")
    operator = basic("op", PASSWORD)
    key = bearer((await kit.new_key("operator"))["key"])
    for headers in (operator, key):
        r = await send(api, "GET", "/api/v1/users", headers)
        assert_problem(r, 403, "forbidden")
        request = no_auth(
            api, "POST", "/api/v1/users", json={"username": "x", "password": PASSWORD}
        )
        request.headers.update(headers)
        assert_problem(await api.send(request), 403, "forbidden")
        assert_problem(await send(api, "DELETE", "/api/v1/users/1", headers), 403, "forbidden")


async def test_basic_and_login_password_resolve_a_user(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(HELLO)
    run = await kit.wait((await kit.launch("hello"))["id"])
    await new_user(api, "ops", "operator")

    for _ in range(2):  # the second time from the cache of verified passwords
        r = await send(api, "GET", f"/api/v1/runs/{run['id']}", basic("ops", PASSWORD))
        assert r.status_code == 200, r.text
        assert r.json() == run
    query = {"login": "ops", "password": PASSWORD}
    r = await send(api, "GET", f"/api/v1/runs/{run['id']}?{httpx.QueryParams(query)}")
    assert r.status_code == 200, r.text
    assert r.json() == run

    request = no_auth(api, "POST", "/api/v1/runs", json={"workflow": "hello"})
    request.headers.update(basic("ops", PASSWORD))
    started = await api.send(request)
    assert started.status_code == 201, started.text
    assert started.json()["namespace"] == "default"
    await kit.wait(started.json()["id"])

    wrong = [
        basic("ops", PASSWORD + "x"),
        basic("nobody", PASSWORD),
        basic("ops", ""),
    ]
    for headers in wrong:
        r = await send(api, "GET", "/api/v1/runs", headers)
        body = assert_problem(r, 401, "bad_credentials", "Authentication required")
        assert body["detail"] == "wrong user name or password"
    for params in ({"login": "ops", "password": "nope-nope-nope"}, {"login": "x", "password": "y"}):
        r = await send(api, "GET", f"/api/v1/runs?{httpx.QueryParams(params)}")
        assert_problem(r, 401, "bad_credentials")
    r = await send(api, "GET", "/api/v1/runs?login=ops")  # no password: no credentials
    assert_problem(r, 401, "unauthorized")
    r = await send(api, "GET", "/api/v1/runs", {"Authorization": "Basic !!!"})
    assert_problem(r, 401, "unauthorized")


async def test_a_viewer_user_reads_but_cannot_start_runs(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(HELLO)
    await new_user(api, "watcher", "viewer")
    request = no_auth(api, "POST", "/api/v1/runs", json={"workflow": "hello"})
    request.headers.update(basic("watcher", PASSWORD))
    body = assert_problem(await api.send(request), 403, "forbidden")
    assert body["detail"] == "this needs the operator role; you have viewer"
    r = await send(api, "GET", "/api/v1/runs?login=watcher&password=" + PASSWORD)
    assert r.status_code == 200 and r.json() == {"runs": [], "next_page_token": None}


# -- JWKS and JWT --------------------------------------------------------------------------


async def test_jwks_registration_payloads(api: httpx.AsyncClient, kit: ApiKit) -> None:
    jwk = public_jwk(rsa_key(), "k1")
    created = await register(api, identifier=IDENTIFIER.upper())
    assert created == {
        "id": created["id"], "identifier": IDENTIFIER, "namespace": "tenant-b",
        "role": "operator", "issuer": ISSUER, "audience": AUDIENCE, "required_scope": SCOPE,
        "keys": {"keys": [jwk]}, "created_at": created["created_at"],
    }  # fmt: skip
    assert ISO_TIME.match(created["created_at"])
    assert (await api.get("/api/v1/jwks")).json() == {"jwks": [created]}
    assert (await api.get(f"/api/v1/jwks/{IDENTIFIER}")).json() == created
    assert_problem(await api.get(f"/api/v1/jwks/{uuid.uuid4()}"), 404, "jwks_not_found")

    r = await api.post(
        "/api/v1/jwks",
        json={"identifier": IDENTIFIER, "keys": {"keys": [jwk]}, "audience": AUDIENCE},
    )
    assert_problem(r, 409, "identifier_exists")

    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key()))
    bad: list[tuple[dict[str, Any], str]] = [
        ({"identifier": "not-a-guid-not-a-guid-not-a-guid-x", "keys": {"keys": [jwk]}},
         "identifier"),
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": []}}, "keys.keys"),
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": [private]}}, "keys.keys[0]"),
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
         "keys.keys[0]"),
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": [{**jwk, "alg": "HS256"}]}},
         "keys.keys[0]"),
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": [{"kty": "RSA", "n": "x"}]}},
         "keys.keys[0]"),
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": [jwk]}, "role": "root"}, "role"),
    ]  # fmt: skip
    bad = [({**body, "audience": AUDIENCE}, path) for body, path in bad]
    # tokens are bound to their namespace by their audience: a registration names one
    bad.append(({"identifier": str(uuid.uuid4()), "keys": {"keys": [jwk]}}, "audience"))
    bad.append(
        ({"identifier": str(uuid.uuid4()), "keys": {"keys": [jwk]}, "audience": ""}, "audience")
    )
    for body, path in bad:
        problem = assert_problem(await api.post("/api/v1/jwks", json=body), 422, "validation_error")
        assert problem["errors"][0]["path"] == path, (body, problem)

    operator = bearer((await kit.new_key("operator"))["key"])
    assert_problem(await send(api, "GET", "/api/v1/jwks", operator), 403, "forbidden")
    assert_problem(await send(api, "DELETE", f"/api/v1/jwks/{IDENTIFIER}", operator), 403,
                   "forbidden")  # fmt: skip

    token = mint()
    assert (await send(api, "GET", "/api/v1/runs", jwt_headers(token))).status_code == 200
    assert (await api.delete(f"/api/v1/jwks/{IDENTIFIER}")).status_code == 204
    assert_problem(await api.delete(f"/api/v1/jwks/{IDENTIFIER}"), 404, "jwks_not_found")
    assert (await api.get("/api/v1/jwks")).json() == {"jwks": []}
    r = await send(api, "GET", "/api/v1/runs", jwt_headers(token))
    assert_problem(r, 401, "unknown_key")


async def test_a_valid_jwt_acts_in_its_namespace_only(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(HELLO)
    theirs = await kit.wait((await kit.launch("hello"))["id"])  # namespace default
    await register(api)
    me = jwt_headers(mint())

    r = await send(api, "GET", "/api/v1/runs", me)
    assert r.status_code == 200, r.text
    assert r.json() == {"runs": [], "next_page_token": None}
    request = no_auth(api, "PUT", "/api/v1/workflows/hello", content=HELLO, headers=YAML)
    request.headers.update(me)
    r = await api.send(request)
    assert r.status_code == 201 and r.json()["namespace"] == "tenant-b", r.text
    request = no_auth(api, "POST", "/api/v1/runs", json={"workflow": "hello"})
    request.headers.update(me)
    r = await api.send(request)
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["namespace"] == "tenant-b"
    listed = (await send(api, "GET", "/api/v1/runs", me)).json()["runs"]
    assert [x["id"] for x in listed] == [mine["id"]]
    assert_problem(await send(api, "GET", f"/api/v1/runs/{theirs['id']}", me), 404,
                   "run_not_found")  # fmt: skip
    # without the Identifier header, the token's issuer names the JWKS
    r = await send(api, "GET", f"/api/v1/runs/{mine['id']}", jwt_headers(mint(), None))
    assert r.status_code == 200 and r.json()["id"] == mine["id"], r.text
    # the scope may also come as ``scp`` (a list)
    token = mint({"scp": [SCOPE]}, drop=("scope",))
    assert (await send(api, "GET", "/api/v1/runs", jwt_headers(token))).status_code == 200
    deadline = time.monotonic() + 20
    while (await send(api, "GET", f"/api/v1/runs/{mine['id']}", me)).json()["status"] not in (
        "SUCCEEDED", "FAILED"
    ):  # fmt: skip
        assert time.monotonic() < deadline
        await asyncio.sleep(0.03)


def _alg_none(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}."


async def test_bad_jwts_are_refused(api: httpx.AsyncClient) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = [
        public_jwk(rsa_key(), "k1"),
        public_jwk(other_rsa_key(), "k2"),
        public_jwk(ec_key, "ec1"),
    ]
    await register(api, keys={"keys": keys})
    now = int(time.time())
    valid_claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300,
                    "scope": SCOPE}  # fmt: skip
    hs256 = jwt.encode(valid_claims, "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("expired", jwt_headers(mint({"exp": now - 3600, "iat": now - 7200})), 401,
         "token_expired"),
        ("wrong audience", jwt_headers(mint({"aud": "https://elsewhere.example.com/"})), 401,
         "invalid_token"),
        ("wrong issuer", jwt_headers(mint({"iss": "https://evil.example.com/"})), 401,
         "invalid_token"),
        ("alg none", jwt_headers(_alg_none(valid_claims)), 401, "invalid_token"),
        ("HS256 with a guessable secret", jwt_headers(hs256), 401, "invalid_token"),
        ("unknown kid", jwt_headers(mint(kid="k9")), 401, "unknown_key"),
        ("no kid, several keys", jwt_headers(mint(kid=None)), 401, "unknown_key"),
        ("signed by another key", jwt_headers(mint(key=other_rsa_key())), 401, "invalid_token"),
        ("RS256 token, EC key", jwt_headers(mint(kid="ec1")), 401, "unknown_key"),
        ("no exp", jwt_headers(mint(drop=("exp",))), 401, "invalid_token"),
        ("no aud", jwt_headers(mint(drop=("aud",))), 401, "invalid_token"),
        ("garbage", jwt_headers("not.a.jwt"), 401, "invalid_token"),
        ("unknown identifier", jwt_headers(mint(), str(uuid.uuid4())), 401, "unknown_key"),
        ("identifier not a GUID", jwt_headers(mint(), "tenant-b"), 401, "unknown_key"),
        ("missing scope", jwt_headers(mint({"scope": "openid"})), 403, "insufficient_scope"),
    ]  # fmt: skip
    for label, headers, status, code in cases:
        for method, path in (("GET", "/api/v1/runs"), ("GET", "/api/v1/runs/1")):
            r = await send(api, method, path, headers)
            body = assert_problem(r, status, code)
            assert body["detail"], label
            if status == 401:
                assert r.headers["www-authenticate"] == "Bearer", label
    # valid tokens still work, signed by any registered key
    for token in (mint(), mint(key=other_rsa_key(), kid="k2"),
                  mint(key=ec_key, kid="ec1", algorithm="ES256")):  # fmt: skip
        assert (await send(api, "GET", "/api/v1/runs", jwt_headers(token))).status_code == 200


@pytest.mark.parametrize("via", ["jwt", "user"])
async def test_tenant_b_principals_get_404_for_tenant_a_runs(
    api: httpx.AsyncClient, kit: ApiKit, via: str
) -> None:
    await kit.apply(HELLO)
    run = await kit.wait((await kit.launch("hello"))["id"])  # tenant A = namespace default
    if via == "jwt":
        await register(api, role="admin")
        headers = jwt_headers(mint())
    else:
        await new_user(api, "b-admin", "admin", "tenant-b")
        headers = basic("b-admin", PASSWORD)

    for ref in (run["id"], run["uuid"]):
        for method, path in [
            ("GET", ""), ("GET", "/steps"), ("GET", "/steps/greet"), ("GET", "/logs"),
            ("GET", "/logs?follow=true"), ("GET", "/events"), ("POST", "/cancel"),
            ("DELETE", ""),
        ]:  # fmt: skip
            r = await send(api, method, f"/api/v1/runs/{ref}{path}", headers)
            assert_problem(r, 404, "run_not_found")
    r = await send(api, "GET", "/api/v1/runs", headers)
    assert r.json() == {"runs": [], "next_page_token": None}
    r = await send(api, "GET", "/api/v1/runs?workflow=hello&status=SUCCEEDED", headers)
    assert r.json() == {"runs": [], "next_page_token": None}
    assert await kit.get_run(run["id"]) == run


# -- namespaces ----------------------------------------------------------------------------


async def test_namespaces_are_created_and_changed(api: httpx.AsyncClient, kit: ApiKit) -> None:
    r = await api.post("/api/v1/namespaces", json={"name": "tenant-b", "max_queued_runs": 20})
    assert r.status_code == 201, r.text
    assert r.json() == {
        "name": "tenant-b", "max_queued_runs": 20, "max_concurrent_runs": None,
        "retention_days": None, "step_modules": [],
    }  # fmt: skip
    assert_problem(await api.post("/api/v1/namespaces", json={"name": "tenant-b"}), 409,
                   "namespace_exists")  # fmt: skip

    r = await api.patch(
        "/api/v1/namespaces/tenant-b", json={"max_concurrent_runs": 4, "retention_days": 30}
    )
    assert r.status_code == 200, r.text
    changed = {"name": "tenant-b", "max_queued_runs": 20, "max_concurrent_runs": 4,
               "retention_days": 30, "step_modules": []}  # fmt: skip
    assert r.json() == changed
    r = await api.patch("/api/v1/namespaces/tenant-b", json={"max_queued_runs": None})
    assert r.json() == {**changed, "max_queued_runs": None}
    r = await api.patch("/api/v1/namespaces/tenant-b", json={})
    assert r.json() == {**changed, "max_queued_runs": None}
    assert (await api.get("/api/v1/namespaces")).json() == {
        "namespaces": [
            {"name": "default", "max_queued_runs": None, "max_concurrent_runs": None,
             "retention_days": None, "step_modules": []},
            {**changed, "max_queued_runs": None},
        ]
    }  # fmt: skip

    assert_problem(await api.patch("/api/v1/namespaces/nope", json={}), 404,
                   "namespace_not_found")  # fmt: skip
    for body, path in [
        ({"name": "Bad NS"}, "name"),
        ({"name": "x", "max_queued_runs": 0}, "max_queued_runs"),
        ({"name": "x", "retention_days": -1}, "retention_days"),
        ({"name": "x", "other": 1}, "other"),
    ]:
        problem = assert_problem(await api.post("/api/v1/namespaces", json=body), 422,
                                 "validation_error")  # fmt: skip
        assert problem["errors"][0]["path"] == path
    problem = assert_problem(
        await api.patch("/api/v1/namespaces/tenant-b", json={"name": "y"}), 422,
        "validation_error",
    )  # fmt: skip
    operator = bearer((await kit.new_key("operator"))["key"])
    request = api.build_request("POST", "/api/v1/namespaces", json={"name": "z"}, headers=operator)
    assert_problem(await api.send(request), 403, "forbidden")
    request = api.build_request("PATCH", "/api/v1/namespaces/tenant-b", json={}, headers=operator)
    assert_problem(await api.send(request), 403, "forbidden")
