"""The Oracle Managed Cloud self-service dialect: every example of its seed page answered by
Legato (execution status, status details level by level), its errors, and creating,
scheduling and cancelling executions; on both stores."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

IDENTIFIER = "6a1f0c52-3b7e-4d0a-9c1e-5f2a7b8c9d01"
ISSUER = "https://idcs.example.com/"
AUDIENCE = "https://legato.example.com/selfservice"
USER = "mcs:oci:api:User"
PRIVILEGED = "mcs:oci:api:PrivilegedUser"
APPROVER = "mcs:oci:api:Approver"
BASE = "/selfservice/v1"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

SCALE = """\
name: exadata-cpu-scale
operation_type: EXADATA_CPU_SCALE
inputs:
  ocpus: {type: integer, default: 4}
steps:
  - id: submit
    name: RFC Submission
    uses: group
    steps:
      - id: register
        name: Register RFC
        uses: shell
        with: {argv: [echo, "RFC successfully submitted to workflow engine"]}
  - id: execute
    name: RFC Execution
    needs: [submit]
    uses: shell
    retry: {attempts: 2, initial: 1h}
    with: {argv: [sh, -c, "echo 'RFC successfully executed'; exit 1"]}
"""

BOUNCE = """\
name: bounce
steps:
  - id: stop
    name: Stop services
    uses: shell
    with: {argv: [echo, "services stopped"]}
  - id: hosts
    name: Restart hosts
    needs: [stop]
    foreach: ["host-a", "host-b"]
    uses: shell
    with: {argv: [echo, "restarted ${{ item }}"]}
  - id: check
    name: Health check
    needs: [hosts]
    uses: workflow
    with: {workflow: instance-healthcheck}
"""

HEALTH = """\
name: instance-healthcheck
steps:
  - id: probe
    name: Probe endpoints
    uses: shell
    with: {argv: [echo, "all endpoints answer"]}
"""

FAILING = """\
name: bounce-vm
steps:
  - id: stop
    name: Stop VM
    uses: shell
    with: {argv: [sh, -c, "echo stopping; echo no such VM >&2; exit 3"]}
"""

SLEEPY = """\
name: config
steps:
  - id: wait
    name: Apply configuration
    uses: sleep
    with: {duration: 30s}
"""


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(*scopes: str, key: Any = None, expires_in: int = 300) -> str:
    now = int(time.time())
    claims = {
        "sub": "customer-admin@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + expires_in,
        "scope": " ".join(scopes),
    }
    return jwt.encode(claims, key or signing_key(), algorithm="RS256", headers={"kid": "k1"})


def oracle(*scopes: str, identifier: str = IDENTIFIER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(*scopes)}", "Identifier": identifier}


async def call(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str] | None,
    **kwargs: Any,
) -> httpx.Response:
    """A request carrying only the dialect's credentials (not the admin API key)."""
    request = api.build_request(method, BASE + path, **kwargs)
    del request.headers["Authorization"]
    request.headers.update(headers or {})
    return await api.send(request)


async def setup(api: httpx.AsyncClient, namespace: str = "customer-a") -> None:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key().public_key()))
    r = await api.post(
        "/api/v1/jwks",
        json={
            "identifier": IDENTIFIER,
            "keys": {"keys": [{**public, "kid": "k1", "use": "sig"}]},
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "role": "operator",
            "namespace": namespace,
        },
    )
    assert r.status_code == 201, r.text
    key = await api.post(
        "/api/v1/keys", json={"name": "ns-admin", "role": "admin", "namespace": namespace}
    )
    assert key.status_code == 201, key.text
    admin = {"Authorization": f"Bearer {key.json()['key']}", "Content-Type": "application/yaml"}
    for source in (SCALE, BOUNCE, HEALTH, FAILING, SLEEPY):
        name = source.split("\n", 1)[0].split(": ")[1]
        r = await api.put(f"/api/v1/workflows/{name}", content=source, headers=admin)
        assert r.status_code == 201, r.text


async def create(
    api: httpx.AsyncClient, requestor: str, ref: str | None = None, **inputs: Any
) -> str:
    body: dict[str, Any] = {"requestor": requestor, **inputs}
    if ref is not None:
        body["id"] = ref
    r = await call(api, "POST", "/executions", oracle(PRIVILEGED), json=body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer == {"executionId": answer["executionId"], "status": answer["status"]}
    assert answer["status"] in ("queued", "in-progress")
    if ref is not None:
        assert answer["executionId"] == ref
    return str(answer["executionId"])


async def status(api: httpx.AsyncClient, requestor: str, *ids: str) -> list[dict[str, Any]]:
    r = await call(
        api,
        "GET",
        "/executions/status",
        oracle(USER),
        params=[("requestor", requestor), *(("id", i) for i in ids)],
    )
    assert r.status_code == 200, r.text
    return r.json()["response"]  # type: ignore[no-any-return]


async def wait_status(
    api: httpx.AsyncClient, requestor: str, ref: str, words: set[str], timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        [answer] = await status(api, requestor, ref)
        if answer["status"] in words:
            return
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.05)


async def details(
    api: httpx.AsyncClient, ref: str, requestor: str, step_id: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"requestor": requestor}
    if step_id is not None:
        params["stepId"] = step_id
    r = await call(api, "GET", f"/executions/{ref}/status/details", oracle(USER), params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()  # type: ignore[no-any-return]


async def wait_step(
    api: httpx.AsyncClient, ref: str, requestor: str, name: str, word: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = await details(api, ref, requestor)
        step = next(s for s in body["subSteps"] if s["name"] == name)
        if step["status"] == word:
            return body
        assert time.monotonic() < deadline, step
        await asyncio.sleep(0.05)


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["code", "message"], body
    assert body["code"] == code and body["message"], body


# -- the seed's examples -------------------------------------------------------------------


async def test_status_of_several_executions_as_the_seed_shows(api: httpx.AsyncClient) -> None:
    await setup(api)
    for ref in ("3-BLFVC0W", "3-XTFVC0W"):
        await create(api, "EXADATA_CPU_SCALE", ref)
    await create(api, "BOUNCE", "3-OTHER00")  # another functionality
    # the seed's answer, once both have ended their first step (then "success" below)
    sleepy = await create(api, "CONFIG", "CHG-1001")
    r = await call(
        api,
        "GET",
        "/executions/status",
        oracle(USER),
        params=[("id", "3-BLFVC0W"), ("id", "3-XTFVC0W"), ("requestor", "EXADATA_CPU_SCALE")],
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["response"]
    assert [list(item) for item in body["response"]] == [["executionId", "status"]] * 2
    assert [item["executionId"] for item in body["response"]] == ["3-BLFVC0W", "3-XTFVC0W"]
    assert {item["status"] for item in body["response"]} <= {"queued", "in-progress"}

    # the order asked; `id=A,B` as well as the repeated parameter; unknown ids, another
    # functionality's execution and another namespace's are "not found", not an error
    answer = await status(api, "EXADATA_CPU_SCALE", "3-XTFVC0W,nope", "3-OTHER00", "3-BLFVC0W")
    assert [(a["executionId"], a["status"] == "not found") for a in answer] == [
        ("3-XTFVC0W", False),
        ("nope", True),
        ("3-OTHER00", True),
        ("3-BLFVC0W", False),
    ]
    # the integer id names an execution too
    [config] = await status(api, "CONFIG", sleepy)
    assert config == {"executionId": "CHG-1001", "status": config["status"]}
    r = await call(api, "PUT", "/executions/CHG-1001", oracle(APPROVER),
                   json={"action": "cancel", "requestor": "CONFIG"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["executionId"] == "CHG-1001"
    assert r.json()["status"] in ("in-progress", "cancelled")
    await wait_status(api, "CONFIG", "CHG-1001", {"cancelled"})


async def test_status_details_as_the_seed_shows(api: httpx.AsyncClient) -> None:
    await setup(api)
    ref = await create(api, "EXADATA_CPU_SCALE", "3-7JZXAGH", ocpus=8)
    # the first attempt of "RFC Execution" fails; the retry waits an hour: "Queued"
    body = await wait_step(api, ref, "EXADATA_CPU_SCALE", "RFC Execution", "Queued")
    body = await wait_step(api, ref, "EXADATA_CPU_SCALE", "RFC Submission", "Completed")
    deadline = time.monotonic() + 20
    # the step's log line can be recorded while its first attempt still runs (logs precede
    # the step's end; before that attempt it was "Queued" too): wait for both
    while (body["subSteps"][1]["remark"], body["subSteps"][1]["status"]) != (
        "RFC successfully executed",
        "Queued",
    ):
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
        body = await details(api, ref, "EXADATA_CPU_SCALE")
    submission, execution = body["subSteps"]
    assert body == {
        "executionId": "3-7JZXAGH",
        "stepId": 0,
        "subSteps": [
            {
                "endTime": submission["endTime"],
                "hasSubStep": True,
                "name": "RFC Submission",
                "startTime": submission["startTime"],
                "status": "Completed",
                "stepId": submission["stepId"],
                "remark": "RFC successfully submitted to workflow engine",
            },
            {
                "endTime": execution["endTime"],
                "hasSubStep": False,
                "name": "RFC Execution",
                "startTime": execution["startTime"],
                "status": "Queued",
                "stepId": execution["stepId"],
                "remark": "RFC successfully executed",
            },
        ],
    }
    assert [list(s) for s in body["subSteps"]] == [
        ["endTime", "hasSubStep", "name", "startTime", "status", "stepId", "remark"]
    ] * 2
    assert TIME.match(submission["startTime"]) and TIME.match(submission["endTime"])
    assert submission["startTime"] <= submission["endTime"]
    assert isinstance(submission["stepId"], int) and isinstance(execution["stepId"], int)
    # the default stepId is 0; the id may also come as a query parameter
    r = await call(api, "GET", "/executions/status/details", oracle(USER),
                   params={"id": ref, "requestor": "EXADATA_CPU_SCALE", "stepId": "0"})  # fmt: skip
    assert r.status_code == 200 and r.json() == body
    for odd in ("³", "\u0661", "1_0", "+1"):  # step ids are ASCII digits only
        params = {"id": ref, "requestor": "EXADATA_CPU_SCALE", "stepId": odd}
        r = await call(api, "GET", "/executions/status/details", oracle(USER), params=params)
        assert r.status_code == 400, (odd, r.text)

    # drilling into the group: its steps
    inner = await details(api, ref, "EXADATA_CPU_SCALE", submission["stepId"])
    assert inner["stepId"] == submission["stepId"]
    assert inner["subSteps"] == [
        {
            "endTime": inner["subSteps"][0]["endTime"],
            "hasSubStep": False,
            "name": "Register RFC",
            "startTime": inner["subSteps"][0]["startTime"],
            "status": "Completed",
            "stepId": inner["subSteps"][0]["stepId"],
            "remark": "RFC successfully submitted to workflow engine",
        }
    ]
    # a step without children has none
    assert (await details(api, ref, "EXADATA_CPU_SCALE", execution["stepId"]))["subSteps"] == []
    [state] = await status(api, "EXADATA_CPU_SCALE", ref)
    assert state == {"executionId": "3-7JZXAGH", "status": "in-progress"}
    r = await call(api, "PUT", f"/executions/{ref}?requestor=EXADATA_CPU_SCALE",
                   oracle(APPROVER), json={"action": "cancel"})  # fmt: skip
    assert r.status_code == 200, r.text
    await wait_status(api, "EXADATA_CPU_SCALE", ref, {"cancelled"})
    body = await details(api, ref, "EXADATA_CPU_SCALE")
    assert [s["status"] for s in body["subSteps"]] == ["Completed", "Cancelled"]


async def test_details_drill_into_foreach_items_and_sub_workflows(
    api: httpx.AsyncClient,
) -> None:
    await setup(api)
    ref = await create(api, "BOUNCE")
    assert ref.isdigit()  # without an id of its own, the run's integer id
    await wait_status(api, "BOUNCE", ref, {"success"})
    top = await details(api, ref, "BOUNCE")
    assert [(s["name"], s["status"], s["hasSubStep"]) for s in top["subSteps"]] == [
        ("Stop services", "Completed", False),
        ("Restart hosts", "Completed", True),
        ("Health check", "Completed", True),
    ]
    assert top["subSteps"][0]["remark"] == "services stopped"
    assert top["subSteps"][1]["remark"] in ("restarted host-a", "restarted host-b")
    assert all(TIME.match(s["startTime"]) and TIME.match(s["endTime"]) for s in top["subSteps"])
    hosts = await details(api, ref, "BOUNCE", top["subSteps"][1]["stepId"])
    assert [(s["name"], s["remark"], s["hasSubStep"]) for s in hosts["subSteps"]] == [
        ("Restart hosts [0]", "restarted host-a", False),
        ("Restart hosts [1]", "restarted host-b", False),
    ]
    check = await details(api, ref, "BOUNCE", top["subSteps"][2]["stepId"])
    [probe] = check["subSteps"]
    assert (probe["name"], probe["status"], probe["remark"], probe["hasSubStep"]) == (
        "Probe endpoints", "Completed", "all endpoints answer", False
    )  # fmt: skip
    # a step of the child run is found from the parent execution as well
    assert (await details(api, ref, "BOUNCE", probe["stepId"]))["subSteps"] == []


async def test_times_are_null_until_a_step_starts_and_ends(api: httpx.AsyncClient) -> None:
    await setup(api)
    ref = await create(api, "CONFIG", "CHG-7")
    body = await details(api, ref, "CONFIG")
    [step] = body["subSteps"]
    assert step == {
        "endTime": None,
        "hasSubStep": False,
        "name": "Apply configuration",
        "startTime": None,
        "status": "Queued",  # a sleep waits for its time to come
        "stepId": step["stepId"],
        "remark": step["remark"],
    }
    r = await call(api, "PUT", "/executions/CHG-7", oracle(APPROVER),
                   json={"action": "cancel", "requestor": "CONFIG"})  # fmt: skip
    assert r.status_code == 200
    await wait_status(api, "CONFIG", ref, {"cancelled"})


# -- errors --------------------------------------------------------------------------------


async def test_bad_tokens_are_401_and_missing_scopes_403(api: httpx.AsyncClient) -> None:
    await setup(api)
    ref = await create(api, "CONFIG", "CHG-9")
    path = f"/executions/status?id={ref}&requestor=CONFIG"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for headers in (
        None,
        {"Authorization": "Basic eDp5"},
        {"Authorization": "Bearer not-a-jwt", "Identifier": IDENTIFIER},
        {"Authorization": f"Bearer {token(USER, key=other)}", "Identifier": IDENTIFIER},
        {"Authorization": f"Bearer {token(USER, expires_in=-600)}", "Identifier": IDENTIFIER},
        oracle(USER, identifier="0b7e8a6c-0000-4000-8000-000000000000"),
        oracle(USER, identifier="not-a-guid"),
    ):
        assert_error(await call(api, "GET", path, headers), 401, "NotAuthenticated")
    assert_error(await call(api, "GET", path, oracle(PRIVILEGED)), 403, "NotAuthorized")
    r = await call(api, "GET", f"/executions/{ref}/status/details?requestor=CONFIG", None)
    assert_error(r, 401, "NotAuthenticated")
    r = await call(api, "POST", "/executions", oracle(USER), json={"requestor": "CONFIG"})
    assert_error(r, 403, "NotAuthorized")
    r = await call(api, "PUT", f"/executions/{ref}", oracle(USER, PRIVILEGED),
                   json={"action": "cancel", "requestor": "CONFIG"})  # fmt: skip
    assert_error(r, 403, "NotAuthorized")
    r = await call(api, "PUT", f"/executions/{ref}", oracle(APPROVER),
                   json={"action": "cancel", "requestor": "CONFIG"})  # fmt: skip
    assert r.status_code == 200


async def test_requestor_is_mandatory_and_ids_are_checked(api: httpx.AsyncClient) -> None:
    await setup(api)
    ref = await create(api, "BOUNCE", "3-B0UNCE1")
    user = oracle(USER)
    for path in (
        f"/executions/status?id={ref}",
        f"/executions/status?id={ref}&requestor=",
        f"/executions/{ref}/status/details",
        f"/executions/{ref}/status/details?stepId=0&requestor=%20",
        "/executions/status?requestor=BOUNCE",
        "/executions/status?id=,&requestor=BOUNCE",
        f"/executions/{ref}/status/details?requestor=BOUNCE&stepId=-1",
        f"/executions/{ref}/status/details?requestor=BOUNCE&stepId=abc",
        "/executions/status/details?requestor=BOUNCE",
        "/executions/status?requestor=BOUNCE&" + "&".join(f"id={i}" for i in range(101)),
    ):
        assert_error(await call(api, "GET", path, user), 400, "InvalidParameter")
    for path in (
        f"/executions/{ref}/status/details?requestor=CONFIG",  # another functionality's
        "/executions/3-NOPE/status/details?requestor=BOUNCE",
        "/executions/99999999999999999999999/status/details?requestor=BOUNCE",
        f"/executions/{ref}/status/details?requestor=BOUNCE&stepId=987654321",
    ):
        assert_error(await call(api, "GET", path, user), 404, "NotAuthorizedOrNotFound")


async def test_another_customers_executions_do_not_exist(api: httpx.AsyncClient) -> None:
    await setup(api)
    # a run of another namespace, with the same requestor and external id
    other = await api.post("/api/v1/keys", json={"name": "b", "role": "admin", "namespace": "b"})
    headers = {"Authorization": f"Bearer {other.json()['key']}"}
    r = await api.put(
        "/api/v1/workflows/config",
        content=SLEEPY.replace("duration: 30s", "duration: 0s"),
        headers={**headers, "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    r = await api.post(
        "/api/v1/runs", json={"workflow": "config", "external_id": "CHG-1"}, headers=headers
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    assert await status(api, "CONFIG", "CHG-1", str(run_id)) == [
        {"executionId": "CHG-1", "status": "not found"},
        {"executionId": str(run_id), "status": "not found"},
    ]
    r = await call(api, "GET", f"/executions/{run_id}/status/details?requestor=CONFIG",
                   oracle(USER))  # fmt: skip
    assert_error(r, 404, "NotAuthorizedOrNotFound")


async def test_bad_bodies_and_actions_are_clear_errors(api: httpx.AsyncClient) -> None:
    await setup(api)
    ref = await create(api, "CONFIG", "CHG-42")
    approver, privileged = oracle(APPROVER), oracle(PRIVILEGED)
    cases: list[tuple[str, str, dict[str, str], Any, int, str]] = [
        ("POST", "/executions", privileged, b"{not json", 400, "InvalidParameter"),
        ("POST", "/executions", privileged, b"[1, 2]", 400, "InvalidParameter"),
        ("POST", "/executions", privileged, b"{}", 400, "InvalidParameter"),  # no requestor
        ("POST", "/executions", privileged, b"x" * 70_000, 413, "PayloadTooLarge"),
        # no workflow for this functionality: the customer has not opted in
        ("POST", "/executions", privileged, {"requestor": "CEMLI"}, 404,
         "NotAuthorizedOrNotFound"),
        ("POST", "/executions", privileged, {"requestor": "CONFIG", "id": "CHG-42"}, 409,
         "Conflict"),
        ("POST", "/executions", privileged, {"requestor": "BOUNCE", "nope": 1}, 400,
         "InvalidParameter"),
        ("PUT", f"/executions/{ref}", approver, {"requestor": "CONFIG"}, 400,
         "InvalidParameter"),
        ("PUT", f"/executions/{ref}", approver, {"requestor": "CONFIG", "action": "pause"}, 400,
         "InvalidParameter"),
        ("PUT", f"/executions/{ref}", approver, {"action": "cancel"}, 400, "InvalidParameter"),
        ("PUT", f"/executions/{ref}", approver,
         {"requestor": "CONFIG", "action": "schedule"}, 400, "InvalidParameter"),
        ("PUT", f"/executions/{ref}", approver,
         {"requestor": "CONFIG", "action": "schedule", "scheduledTime": "soon"}, 400,
         "InvalidParameter"),
        ("POST", "/executions", privileged,
         {"requestor": "CONFIG", "id": "CHG-43", "scheduledTime": "tomorrow"}, 400,
         "InvalidParameter"),
        ("PUT", "/executions/CHG-0", approver, {"requestor": "CONFIG", "action": "cancel"}, 404,
         "NotAuthorizedOrNotFound"),
    ]  # fmt: skip
    for method, path, headers, body, status_code, code in cases:
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = await call(api, method, path, headers, **kwargs)
        assert_error(r, status_code, code)

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    schedule = {"requestor": "CONFIG", "action": "schedule", "scheduledTime": now}
    r = await call(api, "PUT", f"/executions/{ref}", approver, json=schedule)
    assert r.status_code == 200, r.text
    assert r.json() == {"executionId": "CHG-42", "status": r.json()["status"]}
    r = await call(api, "PUT", f"/executions/{ref}", approver,
                   json={"requestor": "CONFIG", "action": "cancel"})  # fmt: skip
    assert r.status_code == 200, r.text
    await wait_status(api, "CONFIG", ref, {"cancelled"})
    r = await call(api, "PUT", f"/executions/{ref}", approver,
                   json={"requestor": "CONFIG", "action": "cancel"})  # fmt: skip
    assert_error(r, 409, "Conflict")


async def test_a_failed_steps_remark_is_its_error(api: httpx.AsyncClient) -> None:
    await setup(api)
    ref = await create(api, "BOUNCE_VM", "VM-1")
    await wait_status(api, "BOUNCE_VM", ref, {"failed"})
    [step] = (await details(api, ref, "BOUNCE_VM"))["subSteps"]
    assert (step["name"], step["status"], step["hasSubStep"]) == ("Stop VM", "Failed", False)
    assert step["remark"].startswith("sh exited with code 3"), step
    assert TIME.match(step["startTime"]) and TIME.match(step["endTime"])


async def test_a_scheduled_execution_waits_and_can_be_cancelled(api: httpx.AsyncClient) -> None:
    """An execution created with a later ``scheduledTime`` waits (``scheduled``, its
    milestones ``Queued``), can be rescheduled or cancelled, and starts at its time."""
    await setup(api)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = {"requestor": "CONFIG", "id": "CHG-900", "scheduledTime": later}
    r = await call(api, "POST", "/executions", oracle(PRIVILEGED), json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"executionId": "CHG-900", "status": "scheduled"}
    assert await status(api, "CONFIG", "CHG-900") == [
        {"executionId": "CHG-900", "status": "scheduled"}
    ]
    [step] = (await details(api, "CHG-900", "CONFIG"))["subSteps"]
    assert (step["status"], step["startTime"]) == ("Queued", None)
    # moved later still, then cancelled before it ever started
    even_later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    r = await call(api, "PUT", "/executions/CHG-900", oracle(APPROVER),
                   json={"requestor": "CONFIG", "action": "schedule",
                         "scheduledTime": even_later})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"executionId": "CHG-900", "status": "scheduled"}
    r = await call(api, "PUT", "/executions/CHG-900", oracle(APPROVER),
                   json={"requestor": "CONFIG", "action": "cancel"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    [step] = (await details(api, "CHG-900", "CONFIG"))["subSteps"]
    assert (step["status"], step["startTime"]) == ("Cancelled", None)


async def test_scheduling_an_execution_for_now_starts_it(api: httpx.AsyncClient) -> None:
    await setup(api)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = {"requestor": "INSTANCE_HEALTHCHECK", "scheduledTime": later}
    r = await call(api, "POST", "/executions", oracle(PRIVILEGED), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "scheduled"
    ref = r.json()["executionId"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    change = {"requestor": "INSTANCE_HEALTHCHECK", "action": "schedule", "scheduledTime": now}
    r = await call(api, "PUT", f"/executions/{ref}", oracle(APPROVER), json=change)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("queued", "in-progress", "success")
    await wait_status(api, "INSTANCE_HEALTHCHECK", ref, {"success"})
    # an execution that has run cannot be put off any more
    change["scheduledTime"] = later
    r = await call(api, "PUT", f"/executions/{ref}", oracle(APPROVER), json=change)
    assert_error(r, 409, "Conflict")
