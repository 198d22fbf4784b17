"""The datasourcesvc (Twinit Data Sources Service) orch-run dialect: every example of seed
004 reproduced (JSON compared by value, modulo ids and times), the calls a client also needs,
and the errors of that API; on both stores."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from legato.asgi import create_app
from legato.runtime import Legato

ADMIN_KEY = "lg_test_admin_key_0123456789"
BASE = "/datasourcesvc/api/v1"
YAML = {"Content-Type": "application/yaml"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}

# -- the seed's examples, verbatim -------------------------------------------------------------

SEED_LIST = {
    "_offset": 0,
    "_pageSize": 1,
    "_total": 1,
    "_list": [
        {
            "id": "b94f4ea3-447d-43a0-9d7f-345d46e11791",
            "_orchid": "383f91dd-7d7f-41f6-b3dc-3c26c45d3c16",
            "_name": "Test Instant Orch",
            "_description": "Test Instant Orch",
            "_namespaces": ["AT_BEtqYlZ4"],
            "_usertype": "test_instant",
            "_createdby": "77eee821-b0d4-44c4-b179-7b50ec9575c5",
            "_createdat": "1675164393072",
            "_updatedat": "1675164428003",
            "_status": "COMPLETED",
            "_result": "",
            "orchrunsteps": [
                {
                    "id": "1e533aed-81a0-45e9-8599-d867eda528a4",
                    "_name": "test_connector",
                    "orchstepid": "b4529482-053a-4402-ac57-f4bdd51b5ef9",
                    "_compid": "eced6368-2c1f-4186-acf0-3fa6e079e9a8",
                    "_orchrunid": "b94f4ea3-447d-43a0-9d7f-345d46e11791",
                    "_actualparams": "{}",
                    "_sequenceno": 1,
                    "_runparams": "{}",
                    "_status": "COMPLETED",
                    "_statusmsg": "",
                }
            ],
        }
    ],
}
SEED_GET = [
    {
        "id": "13d44e84-a3ab-47a3-a375-46fdc5859522",
        "_orchid": "b07990cf-c64d-4cc4-a0bc-02a4daf0510d",
        "_name": "Test Instant Orch",
        "_description": "Test Instant Orch",
        "_namespaces": ["test_bXgr468E"],
        "_usertype": "test_instant",
        "_createdby": "cea475f0-7a61-4e06-8ab0-90777bcba2bf",
        "_createdat": "1606885468249",
        "_status": "COMPLETED",
        "_result": "",
        "orchrunsteps": [
            {
                "id": "ea7dc76e-1087-470d-9929-3fadb4204753",
                "_name": "test_connector",
                "orchstepid": "578a9663-8fc9-4c06-b70f-ad6be53d77ef",
                "_compid": "eced6368-2c1f-4186-acf0-3fa6e079e9a8",
                "_orchrunid": "13d44e84-a3ab-47a3-a375-46fdc5859522",
                "_actualparams": "{}",
                "_sequenceno": 1,
                "_runparams": "{}",
                "_status": "COMPLETED",
                "_statusmsg": "",
            }
        ],
    }
]
SEED_LOG = (
    '{"orchRunId":"8cec89dc-9074-46be-9065-9faade7ad091","level":"info","message":"Orch run execution has begun","timestamp":"2023-09-08T07:50:31.330Z"}\n'  # noqa: E501
    '{"level":"info","message":"Running Orchestrator: test_connector in Node b4a149b9-6bc3-429e-bbcf-2661a1cdea98, orch_run_id: 8cec89dc-9074-46be-9065-9faade7ad091","timestamp":"2023-09-08T07:50:31.331Z"}\n'  # noqa: E501
    '{"level":"info","message":"Node b4a149b9-6bc3-429e-bbcf-2661a1cdea98 Executing Step: Connector:test_connector, orch_run_id: 8cec89dc-9074-46be-9065-9faade7ad091","timestamp":"2023-09-08T07:50:31.854Z"}\n'  # noqa: E501
    '{"level":"info","message":"Test Connector, orch_run_id: 8cec89dc-9074-46be-9065-9faade7ad091","timestamp":"2023-09-08T07:50:31.857Z"}\n'  # noqa: E501
    '{"level":"info","message":"Executing TestConnector - Connectors with version 1, orch_run_id: 8cec89dc-9074-46be-9065-9faade7ad091","timestamp":"2023-09-08T07:50:31.858Z"}\n'  # noqa: E501
    + '{"level":"info","message":"TestConnector_v1: Dummy loop in progress","timestamp":"2023-09-08T07:50:37.881Z"}\n'  # noqa: E501
    * 9
    + '{"level":"info","message":"TestConnector_v1: Dummy loop has ended","timestamp":"2023-09-08T07:51:31.889Z"}\n'  # noqa: E501
    '{"level":"info","message":"[\\"Step: Connector:test_connector took ->60.56\\"]","timestamp":"2023-09-08T07:51:31.894Z"}\n'  # noqa: E501
    '{"level":"info","message":"Orchestrator test_connector Execution Duration in project auto8080_CzMQc82u is: 60.56, orch_run_id: 8cec89dc-9074-46be-9065-9faade7ad091","timestamp":"2023-09-08T07:51:31.894Z"}\n'  # noqa: E501
    '{"level":"info","message":"Updating orch run status to 4 in OrchExecutionService, orch_run_id: 8cec89dc-9074-46be-9065-9faade7ad091","timestamp":"2023-09-08T07:51:31.896Z"}\n'  # noqa: E501
    '{"end":true,"level":"info","message":"Orch run has ended. Closing up file log stream","timestamp":"2023-09-08T07:51:32.912Z"}\n'  # noqa: E501
)
SEED_CREATE_BODY = {
    "orchestratorId": "b07990cf-c64d-4cc4-a0bc-02a4daf0510d",
    "_actualparams": [
        {
            "sequence_type_id": "9a616686-571e-4167-8a70-d180dcd585a9",
            "params": {
                "_fileId": "cb8d42b2-60ec-46e7-a27e-634f092cfddf",
                "_fileVersionId": "902aa32c-de61-4240-8f54-700de626498b",
            },
        }
    ],
}
SEED_CREATED = {
    "id": "13d44e84-a3ab-47a3-a375-46fdc5859522",
    "_orchid": "b07990cf-c64d-4cc4-a0bc-02a4daf0510d",
    "_name": "Test Instant Orch",
    "_description": "Test Instant Orch",
    "_namespaces": ["test_bXgr468E"],
    "_usertype": "test_instant",
    "_createdby": "cea475f0-7a61-4e06-8ab0-90777bcba2bf",
    "_createdat": 1606885468249,
    "_status": "QUEUED",
    "_result": "",
    "orchrunsteps": [
        {
            "id": "ea7dc76e-1087-470d-9929-3fadb4204753",
            "_name": "test_connector",
            "orchstepid": "578a9663-8fc9-4c06-b70f-ad6be53d77ef",
            "_compid": "eced6368-2c1f-4186-acf0-3fa6e079e9a8",
            "_orchrunid": "13d44e84-a3ab-47a3-a375-46fdc5859522",
            "_actualparams": "{}",
            "_sequenceno": 1,
            "_runparams": {},
            "_status": "QUEUED",
        }
    ],
}
SEED_CANCELED = [
    {
        "id": "73bde773-6ef8-41af-aa89-67c91e6ff683",
        "_orchid": "b07990cf-c64d-4cc4-a0bc-02a4daf0510d",
        "_name": "Test Instant Orch",
        "_description": "Test Instant Orch",
        "_namespaces": ["test_bXgr468E"],
        "_usertype": "test_instant",
        "_createdby": "cea475f0-7a61-4e06-8ab0-90777bcba2bf",
        "_createdat": "1606978503963",
        "_status": "REQUEST_CANCEL",
        "_result": "",
        "orchrunsteps": [],
    }
]

# -- workflows that make Legato give those answers ---------------------------------------------

INSTANT = """\
name: test-instant-orch
description: Test Instant Orch
operation_type: test_instant
labels: {datasourcesvc.name: Test Instant Orch}
inputs:
  _fileId: {type: string, default: ""}
  _fileVersionId: {type: string, default: ""}
  hold: {type: string, default: "0"}
steps:
  - id: test_connector
    name: test_connector
    type: Connector
    uses: shell
    with:
      argv: [sleep, "${{ inputs.hold }}"]
"""
CONNECTOR = """\
name: test_connector
description: A connector that loops a while
steps:
  - id: test_connector
    name: test_connector
    type: Connector
    uses: shell
    with:
      argv:
        - sh
        - -c
        - |
          echo "Test Connector, orch_run_id: $1"
          echo "Executing TestConnector - Connectors with version 1, orch_run_id: $1"
          for i in 1 2 3 4 5 6 7 8 9; do echo "TestConnector_v1: Dummy loop in progress"; done
          echo "TestConnector_v1: Dummy loop has ended"
        - sh
        - ${{ run.uuid }}
"""

# -- helpers -----------------------------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def masked(value: Any) -> Any:
    """The answer with ids and times replaced by what they are (after checking their form)."""
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in ("id", "_orchid", "_createdby", "orchstepid", "_compid", "_orchrunid"):
                assert isinstance(item, str) and UUID.fullmatch(item), (key, item)
                out[key] = "<uuid>"
            elif key in ("_createdat", "_updatedat"):
                assert (isinstance(item, str) and item.isdigit()) or isinstance(item, int), item
                out[key] = f"<ms {type(item).__name__}>"
            else:
                out[key] = masked(item)
        return out
    return value


def masked_log(text: str) -> list[dict[str, Any]]:
    lines = text.split("\n")
    assert lines[-1] == "", "the log ends with a newline"
    out = []
    for line in lines[:-1]:
        entry = json.loads(line)
        assert ISO_TIME.match(entry["timestamp"]), entry
        entry["timestamp"] = "<time>"
        if "orchRunId" in entry:
            assert UUID.fullmatch(entry["orchRunId"])
            entry["orchRunId"] = "<uuid>"
        message = UUID.sub("<uuid>", entry["message"])
        message = re.sub(r"Node \S+", "Node <node>", message)
        entry["message"] = re.sub(r"(->|is: )\d+\.\d\d", r"\1<seconds>", message)
        out.append(entry)
    return out


async def tenant_key(api: httpx.AsyncClient, namespace: str, role: str = "operator") -> str:
    body = {"name": "ds", "role": role, "namespace": namespace.lower()}
    r = await api.post("/api/v1/keys", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


async def apply(api: httpx.AsyncClient, key: str, source: str) -> dict[str, Any]:
    name = re.search(r"^name:\s*(\S+)", source, re.M)
    assert name is not None
    r = await api.put(
        f"/api/v1/workflows/{name.group(1)}", content=source, headers={**YAML, **bearer(key)}
    )
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


async def create(api: httpx.AsyncClient, key: str, ns: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(
        f"{BASE}/orchrun", params={"nsfilter": ns}, json=body, headers=bearer(key)
    )


async def wait_native(
    api: httpx.AsyncClient, key: str, run_uuid: str, statuses: set[str] = TERMINAL
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        r = await api.get(f"/api/v1/runs/{run_uuid}", headers=bearer(key))
        assert r.status_code == 200, r.text
        if r.json()["status"] in statuses:
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, r.json()
        await asyncio.sleep(0.05)


async def finished_run(
    api: httpx.AsyncClient, ns: str, source: str = INSTANT, **params: str
) -> tuple[str, dict[str, Any]]:
    key = await tenant_key(api, ns)
    workflow = await apply(api, key, source)
    body: dict[str, Any] = {"orchestratorId": workflow["uuid"], "_actualparams": []}
    if params:
        body["_actualparams"] = [{"sequence_type_id": "x", "params": params}]
    r = await create(api, key, ns, body)
    assert r.status_code == 200, r.text
    await wait_native(api, key, r.json()["id"])
    return key, r.json()


# -- the seed's examples -----------------------------------------------------------------------


async def test_list_reproduces_the_seed(api: httpx.AsyncClient) -> None:
    key, created = await finished_run(api, "AT_BEtqYlZ4")
    r = await api.get(
        f"{BASE}/orchrun",
        params={"nsfilter": "AT_BEtqYlZ4", "_pageSize": 1, "_offset": 0},
        headers=bearer(key),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert masked(body) == masked(SEED_LIST)
    assert list(body["_list"][0]) == list(SEED_LIST["_list"][0])  # type: ignore[index]
    run = body["_list"][0]
    assert run["id"] == created["id"] == run["orchrunsteps"][0]["_orchrunid"]
    assert int(run["_updatedat"]) >= int(run["_createdat"]) > 1_700_000_000_000


async def test_get_reproduces_the_seed(api: httpx.AsyncClient) -> None:
    key, created = await finished_run(api, "test_bXgr468E")
    r = await api.get(
        f"{BASE}/orchrun/{created['id']}", params={"nsfilter": "test_bXgr468E"}, headers=bearer(key)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # as in the list's (newer) form, the run also carries its _updatedat
    answer = masked(body)
    assert answer[0].pop("_updatedat") == "<ms str>"
    assert answer == masked(SEED_GET)
    assert body[0]["_orchid"] == created["_orchid"]


async def test_logs_reproduce_the_seed(api: httpx.AsyncClient) -> None:
    key, created = await finished_run(api, "auto8080_CzMQc82u", CONNECTOR)
    r = await api.get(
        f"{BASE}/orchrun/logs/{created['id']}",
        params={"nsfilter": "auto8080_CzMQc82u"},
        headers=bearer(key),
    )
    assert r.status_code == 200, r.text
    text = r.json()
    assert isinstance(text, str)
    assert masked_log(text) == masked_log(SEED_LOG)
    assert created["id"] in text.split("\n")[0]


async def test_create_reproduces_the_seed(api: httpx.AsyncClient) -> None:
    key = await tenant_key(api, "test_bXgr468E")
    workflow = await apply(api, key, INSTANT)
    body = {**SEED_CREATE_BODY, "orchestratorId": workflow["uuid"]}
    r = await create(api, key, "test_bXgr468E", body)
    assert r.status_code == 200, r.text
    created = r.json()
    assert masked(created) == masked(SEED_CREATED)
    assert list(created) == list(SEED_CREATED)
    assert created["_orchid"] == workflow["uuid"]
    run = await wait_native(api, key, created["id"])
    assert run["status"] == "SUCCEEDED"
    assert run["inputs"]["_fileId"] == "cb8d42b2-60ec-46e7-a27e-634f092cfddf"
    # the same run read back: same ids
    r = await api.get(
        f"{BASE}/orchrun/{created['id']}", params={"nsfilter": "test_bXgr468E"}, headers=bearer(key)
    )
    again = r.json()[0]
    assert again["orchrunsteps"][0]["id"] == created["orchrunsteps"][0]["id"]
    assert again["orchrunsteps"][0]["orchstepid"] == created["orchrunsteps"][0]["orchstepid"]
    assert again["_createdat"] == str(created["_createdat"])
    assert again["_createdby"] == created["_createdby"]


async def test_create_accepts_camel_case_params_and_a_workflow_name(
    api: httpx.AsyncClient,
) -> None:
    key = await tenant_key(api, "camel")
    await apply(api, key, INSTANT)
    body = {
        "orchestratorId": "test-instant-orch",
        "_actualParams": [{"sequence_type_id": "s", "params": {"_fileId": "f1"}}],
    }
    r = await create(api, key, "camel", body)
    assert r.status_code == 200, r.text
    run = await wait_native(api, key, r.json()["id"])
    assert run["inputs"]["_fileId"] == "f1"


async def test_cancel_reproduces_the_seed(api: httpx.AsyncClient) -> None:
    key = await tenant_key(api, "test_bXgr468E")
    workflow = await apply(api, key, INSTANT)
    r = await create(
        api,
        key,
        "test_bXgr468E",
        {
            "orchestratorId": workflow["uuid"],
            "_actualparams": [{"sequence_type_id": "s", "params": {"hold": "30"}}],
        },
    )
    run_id = r.json()["id"]
    await wait_native(api, key, run_id, {"RUNNING"})
    r = await api.put(
        f"{BASE}/orchrun/{run_id}",
        params={"nsfilter": "test_bXgr468E"},
        json={"id": run_id},
        headers=bearer(key),
    )
    assert r.status_code == 200, r.text
    assert masked(r.json()) == masked(SEED_CANCELED)
    assert r.json()[0]["id"] == run_id
    assert (await wait_native(api, key, run_id))["status"] == "CANCELED"
    r = await api.get(
        f"{BASE}/orchrun/{run_id}", params={"nsfilter": "test_bXgr468E"}, headers=bearer(key)
    )
    assert r.json()[0]["_status"] == "CANCELLED"
    assert r.json()[0]["orchrunsteps"][0]["_status"] == "CANCELLED"


async def test_delete(api: httpx.AsyncClient) -> None:
    key, created = await finished_run(api, "deleting")
    params = {"nsfilter": "deleting"}
    url = f"{BASE}/orchrun/{created['id']}"
    r = await api.delete(url, params=params, headers=bearer(key))
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await api.get(url, params=params, headers=bearer(key))
    assert r.status_code == 404
    r = await api.delete(url, params=params, headers=bearer(key))
    assert r.status_code == 404
    assert r.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": f"run {created['id']} does not exist",
    }


async def test_delete_cancels_a_running_run_first(api: httpx.AsyncClient) -> None:
    key = await tenant_key(api, "deleting")
    workflow = await apply(api, key, INSTANT)
    r = await create(
        api,
        key,
        "deleting",
        {
            "orchestratorId": workflow["uuid"],
            "_actualparams": [{"sequence_type_id": "s", "params": {"hold": "30"}}],
        },
    )
    run_id = r.json()["id"]
    await wait_native(api, key, run_id, {"RUNNING"})
    r = await api.delete(
        f"{BASE}/orchrun/{run_id}", params={"nsfilter": "deleting"}, headers=bearer(key)
    )
    assert r.status_code == 204, r.text
    r = await api.get(f"/api/v1/runs/{run_id}", headers=bearer(key))
    assert r.status_code == 404


async def test_list_pages_filters_and_counts(api: httpx.AsyncClient) -> None:
    key = await tenant_key(api, "paging")
    workflow = await apply(api, key, INSTANT)
    ids = []
    for _ in range(3):
        r = await create(api, key, "paging", {"orchestratorId": workflow["uuid"]})
        ids.append(r.json()["id"])
        await wait_native(api, key, ids[-1])
    failing = await apply(
        api,
        key,
        INSTANT.replace("[sleep,", "[sh, -c, 'exit 3',").replace(
            "name: test-instant-orch", "name: failing"
        ),
    )
    r = await create(api, key, "paging", {"orchestratorId": failing["uuid"]})
    failed_id = r.json()["id"]
    await wait_native(api, key, failed_id)

    async def page(**params: Any) -> dict[str, Any]:
        r = await api.get(
            f"{BASE}/orchrun", params={"nsfilter": "paging", **params}, headers=bearer(key)
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    everything = await page()
    assert (everything["_offset"], everything["_pageSize"], everything["_total"]) == (0, 20, 4)
    assert [run["id"] for run in everything["_list"]] == [failed_id, *reversed(ids)]
    second = await page(_pageSize=2, _offset=2)
    assert (second["_offset"], second["_pageSize"], second["_total"]) == (2, 2, 4)
    assert [run["id"] for run in second["_list"]] == [ids[1], ids[0]]
    done = await page(_status="COMPLETED")
    assert done["_total"] == 3 and {run["_status"] for run in done["_list"]} == {"COMPLETED"}
    errors = await page(_status="ERROR")
    assert errors["_total"] == 1
    error_run = errors["_list"][0]
    assert error_run["_status"] == "ERROR" and error_run["_result"]
    assert error_run["orchrunsteps"][0]["_status"] == "ERROR"
    assert error_run["orchrunsteps"][0]["_statusmsg"]
    first_ms = int(everything["_list"][-1]["_createdat"])
    last_ms = int(everything["_list"][0]["_createdat"])
    assert (await page(startDate=str(last_ms)))["_total"] == 1
    assert (await page(endDate=str(first_ms)))["_total"] == 1
    assert (await page(startDate="2000-01-01", endDate="2999-12-31"))["_total"] == 4
    assert (await page(endDate="2000-01-01"))["_total"] == 0


# -- the queue limit ---------------------------------------------------------------------------


@asynccontextmanager
async def _no_lifespan(_app: object) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def idle_api(legato: Legato) -> AsyncIterator[httpx.AsyncClient]:
    """The app without workers: started runs stay queued."""
    app = create_app(legato)
    app.router.lifespan_context = _no_lifespan
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://legato.test",
        headers=bearer(ADMIN_KEY),
    ) as client:
        yield client


async def test_a_namespace_queues_at_most_twenty_runs(idle_api: httpx.AsyncClient) -> None:
    key = await tenant_key(idle_api, "busy")
    workflow = await apply(idle_api, key, INSTANT)
    body = {"orchestratorId": workflow["uuid"], "_actualparams": []}
    for _ in range(20):
        r = await create(idle_api, key, "busy", body)
        assert r.status_code == 200, r.text
        assert r.json()["_status"] == "QUEUED"
    r = await create(idle_api, key, "busy", body)
    assert r.status_code == 400
    assert r.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "A maximum of 20 orch runs can be queued in project 'busy': 20 are queued "
        "already; try again once some have started",
    }
    listed = await idle_api.get(
        f"{BASE}/orchrun", params={"nsfilter": "busy", "_status": "QUEUED"}, headers=bearer(key)
    )
    assert listed.json()["_total"] == 20


async def test_the_namespace_limit_wins(idle_api: httpx.AsyncClient) -> None:
    key = await tenant_key(idle_api, "small")
    r = await idle_api.patch("/api/v1/namespaces/small", json={"max_queued_runs": 2})
    assert r.status_code == 200, r.text
    workflow = await apply(idle_api, key, INSTANT)
    body = {"orchestratorId": workflow["uuid"]}
    for _ in range(2):
        assert (await create(idle_api, key, "small", body)).status_code == 200
    r = await create(idle_api, key, "small", body)
    assert r.status_code == 400
    assert "A maximum of 2 orch runs" in r.json()["message"]


# -- errors ------------------------------------------------------------------------------------


async def test_errors(api: httpx.AsyncClient) -> None:
    key, created = await finished_run(api, "tenant_a")
    other = await tenant_key(api, "tenant_b")
    run_url = f"{BASE}/orchrun/{created['id']}"

    def problem(status: int, error: str, message: str) -> dict[str, Any]:
        return {"statusCode": status, "error": error, "message": message}

    missing = "nsfilter is required: the namespace of the orch runs"
    for method, url in [
        ("GET", f"{BASE}/orchrun"),
        ("GET", run_url),
        ("GET", f"{BASE}/orchrun/logs/{created['id']}"),
        ("POST", f"{BASE}/orchrun"),
        ("PUT", run_url),
        ("DELETE", run_url),
    ]:
        r = await api.request(method, url, headers=bearer(key))
        assert r.status_code == 400, (method, url, r.text)
        assert r.json() == problem(400, "Bad Request", missing)

    r = await api.get(run_url, params={"nsfilter": "tenant_a"}, headers={"Authorization": ""})
    assert r.status_code == 401
    assert r.json()["statusCode"] == 401
    r = await api.get(run_url, params={"nsfilter": "tenant_a"}, headers=bearer("lg_nope"))
    assert r.status_code == 401

    # another tenant: its namespace and its runs are not found
    r = await api.get(run_url, params={"nsfilter": "tenant_a"}, headers=bearer(other))
    assert r.status_code == 404
    assert r.json() == problem(404, "Not Found", "namespace 'tenant_a' does not exist")
    r = await api.get(run_url, params={"nsfilter": "tenant_b"}, headers=bearer(other))
    assert r.status_code == 404
    assert r.json() == problem(404, "Not Found", f"run {created['id']} does not exist")
    r = await api.get(
        f"{BASE}/orchrun/logs/{created['id']}",
        params={"nsfilter": "tenant_b"},
        headers=bearer(other),
    )
    assert r.status_code == 404
    # the installation's admins see every namespace
    r = await api.get(run_url, params={"nsfilter": "tenant_a"})
    assert r.status_code == 200

    ns = {"nsfilter": "tenant_a"}
    r = await api.get(
        f"{BASE}/orchrun/0a0a0a0a-0000-0000-0000-000000000000", params=ns, headers=bearer(key)
    )
    assert r.status_code == 404
    r = await api.post(f"{BASE}/orchrun", params=ns, content=b"{not json", headers=bearer(key))
    assert r.json() == problem(400, "Bad Request", "the body is not valid JSON")
    r = await api.post(f"{BASE}/orchrun", params=ns, json=[1], headers=bearer(key))
    assert r.json() == problem(400, "Bad Request", "the body must be a JSON object")
    r = await api.post(f"{BASE}/orchrun", params=ns, json={}, headers=bearer(key))
    assert r.json() == problem(400, "Bad Request", "orchestratorId is required")
    r = await api.post(
        f"{BASE}/orchrun", params=ns, json={"orchestratorId": "nope"}, headers=bearer(key)
    )
    assert r.json() == problem(404, "Not Found", "orchestrator 'nope' does not exist")
    r = await api.post(
        f"{BASE}/orchrun",
        params=ns,
        json={"orchestratorId": created["_orchid"], "_actualparams": [{"params": {"x": 1}}]},
        headers=bearer(key),
    )
    assert r.status_code == 400 and "unknown input" in r.json()["message"]
    r = await api.post(
        f"{BASE}/orchrun",
        params=ns,
        json={"orchestratorId": created["_orchid"], "_actualparams": "x"},
        headers=bearer(key),
    )
    assert r.status_code == 400
    r = await api.post(
        f"{BASE}/orchrun", params=ns, content=b" " * (1024 * 1024 + 1), headers=bearer(key)
    )
    assert r.status_code == 413
    r = await api.put(run_url, params=ns, content=b"{", headers=bearer(key))
    assert r.json() == problem(400, "Bad Request", "the body is not valid JSON")
    r = await api.put(run_url, params=ns, json={"id": "other"}, headers=bearer(key))
    assert r.status_code == 400
    r = await api.put(run_url, params=ns, json={"id": created["id"]}, headers=bearer(key))
    assert r.status_code == 400  # it has ended
    assert "already ended" in r.json()["message"]
    for params in ({"_pageSize": "x"}, {"_pageSize": 0}, {"_offset": -1}, {"_status": "NOPE"}):
        r = await api.get(f"{BASE}/orchrun", params={**ns, **params}, headers=bearer(key))
        assert r.status_code == 400, params
    r = await api.get(f"{BASE}/orchrun", params={**ns, "startDate": "soon"}, headers=bearer(key))
    assert r.status_code == 400
    viewer = await tenant_key(api, "tenant_a", role="viewer")
    r = await api.post(
        f"{BASE}/orchrun",
        params=ns,
        json={"orchestratorId": created["_orchid"]},
        headers=bearer(viewer),
    )
    assert r.status_code == 403
