"""Oracle Analytics Cloud work requests (``/api/20210901/``): the seed's examples, starting,
listing, cancelling, and the API's ``{"code", "message"}`` errors, on both stores."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from legato.dialects.oac import STATE_WORDS
from legato.runtime import Legato

BASE = "/api/20210901"
ADMIN_KEY = "lg_test_admin_key_0123456789"
YAML = {"Content-Type": "application/yaml"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
SNAPSHOT_ID = "ac6fdab7-9c16-4d22-a56f-cb7b5d15505a"

SNAPSHOT = f"""
name: oac-snapshot
operation_type: CREATE_SNAPSHOT
steps:
  - id: snapshot
    uses: shell
    with: {{argv: [printf, "::resource SNAPSHOT {SNAPSHOT_ID} CREATED\\n"]}}
"""

DATASET = """
name: oac-dataset
operation_type: RELOAD_DATASET
resource_type: DATASET
steps:
  - id: reload
    uses: shell
    with: {argv: [printf, "reloaded\\n"]}
"""

REPORT = """
name: oac-report
steps:
  - id: work
    uses: python
    with: {function: "demo_steps:report"}
"""

FAILING = """
name: oac-failing
operation_type: CREATE_WORKBOOK_EXPORT
resource_type: WORKBOOK_EXPORT
steps:
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
"""

SLEEPING = """
name: oac-sleeping
steps:
  - id: nap
    uses: sleep
    with: {duration: 30s}
"""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json", r.headers
    body: dict[str, Any] = r.json()
    assert list(body) == ["code", "message"], body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert r.headers["opc-request-id"], r.headers
    return body


async def apply(api: httpx.AsyncClient, source: str) -> None:
    name = re.search(r"^name:\s*(\S+)", source, re.M)
    assert name is not None
    r = await api.put(f"/api/v1/workflows/{name.group(1)}", content=source, headers=YAML)
    assert r.status_code in (200, 201), r.text


async def start(api: httpx.AsyncClient, workflow: str, **body: Any) -> str:
    r = await api.post(f"{BASE}/workflows/{workflow}/actions/run", json=body)
    assert r.status_code == 202, r.text
    assert r.content == b""
    wid = r.headers["oa-work-request-id"]
    assert UUID.match(wid), wid
    assert r.headers["location"] == f"{BASE}/workRequests/{wid}"
    return wid


async def wait(
    api: httpx.AsyncClient, wid: str, statuses: frozenset[str] = FINISHED
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        r = await api.get(f"{BASE}/workRequests/{wid}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in statuses:
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, r.json()
        await asyncio.sleep(0.03)


def assert_times(item: dict[str, Any], *fields: str) -> None:
    for field in fields:
        assert ISO_MS.match(item[field]), (field, item)
    present = [item[f] for f in ("timeAccepted", "timeStarted", "timeFinished") if f in item]
    assert present == sorted(present), item


# -- the seed's examples ---------------------------------------------------------------------


async def test_seed_example_1_snapshot_work_request(api: httpx.AsyncClient) -> None:
    await apply(api, SNAPSHOT)
    wid = await start(api, "oac-snapshot")
    await wait(api, wid)
    r = await api.get(f"{BASE}/workRequests/{wid}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["oa-work-request-id"] == wid
    item = r.json()
    assert_times(item, "timeAccepted", "timeStarted", "timeFinished")
    assert item == {
        "id": wid,
        "operationType": "CREATE_SNAPSHOT",
        "percentComplete": 100,
        "status": "SUCCEEDED",
        "timeAccepted": item["timeAccepted"],
        "timeStarted": item["timeStarted"],
        "timeFinished": item["timeFinished"],
        "resources": [
            {"resourceType": "SNAPSHOT", "id": SNAPSHOT_ID, "actionResult": "CREATED"},
        ],
    }
    assert list(item) == [
        "id", "operationType", "percentComplete", "status",
        "timeAccepted", "timeStarted", "timeFinished", "resources",
    ]  # fmt: skip
    assert b'"percentComplete":100,' in r.content  # a whole number, as the seed shows


async def test_seed_example_2_dataset_work_request_by_header(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    wid = await start(api, "oac-dataset")
    await wait(api, wid)
    expected_keys = [
        "id", "operationType", "percentComplete", "resourceType", "status",
        "timeAccepted", "timeStarted", "timeFinished",
    ]  # fmt: skip
    by_path = await api.get(
        f"{BASE}/workRequests/{wid}", headers={"Content-Type": "application/json"}
    )
    by_header = await api.get(f"{BASE}/workRequests", headers={"oa-work-request-id": wid})
    for r in (by_path, by_header):
        assert r.status_code == 200, r.text
        item = r.json()
        assert_times(item, "timeAccepted", "timeStarted", "timeFinished")
        assert item == {
            "id": wid,
            "operationType": "RELOAD_DATASET",
            "percentComplete": 100,
            "resourceType": "DATASET",
            "status": "SUCCEEDED",
            "timeAccepted": item["timeAccepted"],
            "timeStarted": item["timeStarted"],
            "timeFinished": item["timeFinished"],
        }
        assert list(item) == expected_keys


async def test_the_integer_run_id_names_the_work_request_too(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    wid = await start(api, "oac-dataset")
    run = (await api.get(f"/api/v1/runs/{wid}")).json()
    r = await api.get(f"{BASE}/workRequests/{run['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == wid


async def test_resource_metadata_and_errors(api: httpx.AsyncClient) -> None:
    await apply(api, REPORT)
    wid = await start(api, "oac-report", operationType="CREATE_SNAPSHOT")
    item = await wait(api, wid)
    assert item["operationType"] == "CREATE_SNAPSHOT"  # the start request's, over the name
    assert "resourceType" not in item
    assert item["resources"] == [
        {"resourceType": "bucket", "id": "b-1", "actionResult": "CREATED",
         "metadata": {"region": "eu"}},
    ]  # fmt: skip

    await apply(api, FAILING)
    wid = await start(api, "oac-failing")
    item = await wait(api, wid)
    assert item["status"] == "FAILED"
    assert item["resourceType"] == "WORKBOOK_EXPORT"
    assert item["operationType"] == "CREATE_WORKBOOK_EXPORT"
    [error] = item["errors"]
    assert ISO_MS.match(error["timestamp"]), error
    assert error == {
        "code": "exception",
        "message": "ValueError: broken on purpose",
        "timestamp": error["timestamp"],
    }
    r = await api.get(f"{BASE}/workRequests/{wid}/errors")
    assert r.status_code == 200, r.text
    assert r.json() == [error]


async def test_a_waiting_work_request_is_accepted_and_can_be_cancelled(
    api: httpx.AsyncClient,
) -> None:
    await apply(api, SLEEPING)
    wid = await start(api, "oac-sleeping")
    item = await wait(api, wid, frozenset({"ACCEPTED", "IN_PROGRESS"}))
    assert item["percentComplete"] == 0
    assert ISO_MS.match(item["timeAccepted"])
    assert "timeFinished" not in item and "resources" not in item and "errors" not in item
    r = await api.delete(f"{BASE}/workRequests/{wid}")
    assert r.status_code == 204, r.text
    item = await wait(api, wid, frozenset({"CANCELED"}))
    assert ISO_MS.match(item["timeFinished"])
    assert_error(await api.delete(f"{BASE}/workRequests/{wid}"), 409, "IncorrectState")


def test_state_words_cover_every_run_status() -> None:
    from legato.model.states import RunStatus

    assert set(STATE_WORDS) == set(RunStatus.__members__)
    assert set(STATE_WORDS.values()) == {
        "ACCEPTED", "IN_PROGRESS", "CANCELING", "SUCCEEDED", "FAILED", "CANCELED",
    }  # fmt: skip


# -- list and logs ---------------------------------------------------------------------------


async def test_list_pages_with_opc_next_page(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    ids = [await start(api, "oac-dataset") for _ in range(3)]
    for wid in ids:
        await wait(api, wid)
    r = await api.get(f"{BASE}/workRequests", params={"limit": 2})
    assert r.status_code == 200, r.text
    first = r.json()
    assert [w["id"] for w in first] == ids[::-1][:2]
    assert first[0] == {
        "id": ids[2],
        "operationType": "RELOAD_DATASET",
        "percentComplete": 100,
        "resourceType": "DATASET",
        "status": "SUCCEEDED",
        "timeAccepted": first[0]["timeAccepted"],
        "timeStarted": first[0]["timeStarted"],
        "timeFinished": first[0]["timeFinished"],
    }
    page = r.headers["opc-next-page"]
    r = await api.get(f"{BASE}/workRequests", params={"limit": 2, "page": page})
    assert [w["id"] for w in r.json()] == [ids[0]]
    assert "opc-next-page" not in r.headers
    r = await api.get(f"{BASE}/workRequests", params={"status": "SUCCEEDED"})
    assert len(r.json()) == 3
    r = await api.get(f"{BASE}/workRequests", params={"status": "FAILED"})
    assert r.json() == []


async def test_logs_of_a_work_request(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    wid = await start(api, "oac-dataset")
    await wait(api, wid)
    r = await api.get(f"{BASE}/workRequests/{wid}/logs")
    assert r.status_code == 200, r.text
    lines = r.json()
    assert any(line["message"] == "reloaded" for line in lines), lines
    for line in lines:
        assert list(line) == ["message", "timestamp"] and ISO_MS.match(line["timestamp"])
    r = await api.get(f"{BASE}/workRequests/{wid}/logs", params={"limit": 1})
    assert r.json() == lines[:1]
    r = await api.get(
        f"{BASE}/workRequests/{wid}/logs", params={"page": r.headers["opc-next-page"]}
    )
    assert r.json() == lines[1:]


async def test_a_retry_token_starts_once(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    headers = {"opc-retry-token": "retry-1"}
    url = f"{BASE}/workflows/oac-dataset/actions/run"
    first = await api.post(url, headers=headers)
    second = await api.post(url, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.headers["oa-work-request-id"] == second.headers["oa-work-request-id"]


# -- errors ----------------------------------------------------------------------------------


async def test_authentication_errors_are_401(api: httpx.AsyncClient) -> None:
    url = f"{BASE}/workRequests/{'0' * 8}-0000-0000-0000-{'0' * 12}"
    r = await api.get(url, headers={"Authorization": ""})
    assert_error(r, 401, "NotAuthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(await api.get(url, headers=bearer("lg_wrong")), 401, "NotAuthenticated")
    assert_error(await api.get(url, headers=bearer("a.b.c")), 401, "NotAuthenticated")
    assert_error(await api.get(f"{BASE}/workRequests", headers=bearer("")), 401, "NotAuthenticated")


async def test_unknown_and_foreign_ids_are_404(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    wid = await start(api, "oac-dataset")
    r = await api.post("/api/v1/keys", json={"name": "b", "role": "admin", "namespace": "b"})
    other = bearer(r.json()["key"])
    for url in (
        f"{BASE}/workRequests/{wid}",
        f"{BASE}/workRequests/{wid}/errors",
        f"{BASE}/workRequests/{wid}/logs",
    ):
        assert_error(await api.get(url, headers=other), 404, "NotAuthorizedOrNotFound")
    assert_error(
        await api.delete(f"{BASE}/workRequests/{wid}", headers=other),
        404,
        "NotAuthorizedOrNotFound",
    )
    for ref in ("lfc-ab:1-cd:2", "99999", "0", "9" * 30, "x" * 40):
        r = await api.get(f"{BASE}/workRequests/{ref}")
        assert_error(r, 404, "NotAuthorizedOrNotFound")
    r = await api.get(f"{BASE}/workRequests", headers={"oa-work-request-id": "nope"})
    assert_error(r, 404, "NotAuthorizedOrNotFound")
    assert_error(await api.get(f"{BASE}/nothing/here"), 404, "NotAuthorizedOrNotFound")
    r = await api.post(f"{BASE}/workflows/no-such-workflow/actions/run")
    assert_error(r, 404, "NotAuthorizedOrNotFound")


async def test_viewers_may_read_but_not_start_or_cancel(api: httpx.AsyncClient) -> None:
    await apply(api, SLEEPING)
    wid = await start(api, "oac-sleeping")
    viewer = bearer(
        (await api.post("/api/v1/keys", json={"name": "v", "role": "viewer"})).json()["key"]
    )
    assert (await api.get(f"{BASE}/workRequests/{wid}", headers=viewer)).status_code == 200
    r = await api.delete(f"{BASE}/workRequests/{wid}", headers=viewer)
    assert_error(r, 403, "NotAuthorized")
    r = await api.post(f"{BASE}/workflows/oac-sleeping/actions/run", headers=viewer)
    assert_error(r, 403, "NotAuthorized")
    assert (await api.delete(f"{BASE}/workRequests/{wid}")).status_code == 204


async def test_if_match_mismatch_is_412(api: httpx.AsyncClient) -> None:
    await apply(api, SLEEPING)
    wid = await start(api, "oac-sleeping")
    await wait(api, wid, frozenset({"ACCEPTED", "IN_PROGRESS"}))
    r = await api.get(f"{BASE}/workRequests/{wid}")
    tag = r.headers["etag"]
    same = await api.get(f"{BASE}/workRequests/{wid}", headers={"if-match": tag})
    assert same.status_code == 200 and same.headers["etag"] == tag
    url = f"{BASE}/workRequests/{wid}"
    assert_error(await api.get(url, headers={"if-match": '"stale"'}), 412, "NoEtagMatch")
    assert_error(await api.delete(url, headers={"if-match": '"stale"'}), 412, "NoEtagMatch")
    r = await api.delete(url, headers={"if-match": tag})
    assert r.status_code == 204, r.text
    changed = await api.get(url)
    assert changed.headers["etag"] != tag


async def test_bad_parameters_and_bodies_are_400(api: httpx.AsyncClient) -> None:
    await apply(api, DATASET)
    for params in ({"limit": "0"}, {"limit": "abc"}, {"limit": "501"}, {"page": "zz!"},
                   {"status": "RUNNING"}):  # fmt: skip
        r = await api.get(f"{BASE}/workRequests", params=params)
        assert_error(r, 400, "InvalidParameter")
    wid = await start(api, "oac-dataset")
    r = await api.get(f"{BASE}/workRequests/{wid}/logs", params={"page": "-1"})
    assert_error(r, 400, "InvalidParameter")
    url = f"{BASE}/workflows/oac-dataset/actions/run"
    assert_error(await api.post(url, content=b"{not json"), 400, "CannotParseRequest")
    assert_error(await api.post(url, content=b"[1]"), 400, "CannotParseRequest")
    for body in ({"inputs": 3}, {"unknown": 1}, {"version": "x"}, {"operationType": 5},
                 {"priority": 5000}, {"inputs": {"undeclared": 1}}):  # fmt: skip
        assert_error(await api.post(url, json=body), 400, "InvalidParameter")
    r = await api.post(url, content=b" " * 1_000_001)
    assert_error(r, 413, "RequestEntityTooLarge")


async def test_an_unexpected_failure_is_500(
    api: httpx.AsyncClient, engine: Legato, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.runs, "list_runs", broken)
    assert_error(await api.get(f"{BASE}/workRequests"), 500, "InternalServerError")
