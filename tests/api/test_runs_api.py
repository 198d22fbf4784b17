"""``/api/v1/runs`` through HTTP: start, read, list, logs, events, cancel, delete, steps."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from apikit import ADMIN_KEY, ISO_TIME, TERMINAL, UUID, ApiKit, assert_problem, bearer
from sqlalchemy import select, update

from legato.runtime import Legato
from legato.store import tables
from tests.conftest import SETTINGS

ADD = """\
name: add
inputs:
  a: {type: integer}
  b: {type: integer, default: 2}
steps:
  - id: sum
    name: Add a and b
    uses: python
    with: {function: "demo_steps:add", a: "${{ inputs.a }}", b: "${{ inputs.b }}"}
  - id: double
    needs: [sum]
    uses: python
    with: {function: "demo_steps:add", a: "${{ steps.sum.outputs.sum }}",
           b: "${{ steps.sum.outputs.sum }}"}
  - id: report
    needs: [double]
    uses: shell
    with: {argv: [sh, -c, "echo '{\\"total\\": ${{ steps.double.outputs.sum }}}'"]}
outputs:
  total: ${{ steps.report.outputs.total }}
"""

TALK = """\
name: talk
inputs:
  n: {type: integer, default: 3}
steps:
  - id: say
    uses: python
    with: {function: "demo_steps:echo", n: "${{ inputs.n }}"}
  - id: sh
    needs: [say]
    uses: shell
    with: {argv: [sh, -c, "echo hello; echo world"]}
"""

SLEEPY = """\
name: sleepy
steps:
  - id: nap
    uses: shell
    with: {argv: [sleep, "30"]}
"""

TICKER = """\
name: ticker
steps:
  - id: tick
    uses: shell
    with: {argv: [sh, -c, "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done"]}
"""

FAILING = """\
name: failing
steps:
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
"""

QUICK = """\
name: quick
inputs:
  a: {type: integer}
steps:
  - id: sum
    uses: python
    with: {function: "demo_steps:add", a: "${{ inputs.a }}", b: 2}
"""

RUN_KEYS = {
    "id", "uuid", "namespace", "workflow", "workflow_version", "status", "status_message",
    "inputs", "outputs", "labels", "priority", "operation_type", "requestor", "external_id",
    "parent_run_id", "parent_step_id", "progress", "counts_by_status", "error", "created_at",
    "started_at", "finished_at", "updated_at", "duration_ms", "start_at", "waiting_reason",
    "schedule_id", "fire_time",
}  # fmt: skip
STEP_KEYS = {
    "id", "key", "name", "kind", "type", "rank", "parent_step_id", "needs", "status",
    "status_message", "attempt", "max_attempts", "not_before", "outputs", "error", "progress",
    "child_run_id", "created_at", "started_at", "finished_at", "duration_ms",
}  # fmt: skip
LOG_KEYS = {"seq", "time", "level", "step", "attempt", "message"}


def ndjson(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson", r.headers
    assert r.text == "" or r.text.endswith("\n"), r.text
    return [json.loads(line) for line in r.text.splitlines()]


def check_step(step: dict[str, Any], expected: dict[str, Any]) -> None:
    """Contract fields present, times well formed, the given values exact."""
    assert STEP_KEYS <= step.keys(), step.keys()
    for key in ("created_at", "started_at", "finished_at"):
        assert step[key] is None or ISO_TIME.match(step[key]), step
    assert step == {**step, **expected}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- start and read -------------------------------------------------------------------------


async def test_start_run_answers_201_with_location_then_replays_the_idempotency_key(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    body = {"workflow": "add", "inputs": {"a": 1}, "labels": {"team": "red"}, "priority": 5,
            "requestor": "alice"}  # fmt: skip
    r = await api.post("/api/v1/runs", json=body, headers={"Idempotency-Key": "order-1"})
    assert r.status_code == 201, r.text
    run = r.json()
    assert r.headers["location"] == f"/api/v1/runs/{run['id']}"
    assert RUN_KEYS | {"steps"} <= run.keys(), run.keys()
    assert isinstance(run["id"], int) and UUID.match(run["uuid"])
    assert run["status"] in ("QUEUED", "RUNNING", "SUCCEEDED"), run
    assert {k: run[k] for k in ("namespace", "workflow", "workflow_version", "inputs", "labels",
                                "priority", "operation_type", "requestor", "external_id",
                                "parent_run_id", "parent_step_id", "error")} == {
        "namespace": "default", "workflow": "add", "workflow_version": 1,
        "inputs": {"a": 1, "b": 2}, "labels": {"team": "red"}, "priority": 5,
        "operation_type": "add", "requestor": "alice", "external_id": None,
        "parent_run_id": None, "parent_step_id": None, "error": None,
    }  # fmt: skip
    assert [(s["key"], s["kind"], s["needs"]) for s in run["steps"]] == [
        ("sum", "python", []), ("double", "python", ["sum"]), ("report", "shell", ["double"])
    ]  # fmt: skip
    assert ISO_TIME.match(run["created_at"])

    replay = await api.post("/api/v1/runs", json=body, headers={"Idempotency-Key": "order-1"})
    assert replay.status_code == 200, replay.text
    assert replay.json()["id"] == run["id"]
    assert replay.headers["location"] == f"/api/v1/runs/{run['id']}"

    other = await api.post("/api/v1/runs", json=body, headers={"Idempotency-Key": "order-2"})
    assert other.status_code == 201, other.text
    assert other.json()["id"] != run["id"]

    done = await kit.wait(run["id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["outputs"] == {"total": 6}
    assert (await api.get(r.headers["location"])).json() == done


async def test_run_goes_to_completion_with_every_step_output(kit: ApiKit) -> None:
    await kit.apply(ADD)
    started = await kit.launch("add", a=1, labels={"team": "red"})
    run = await kit.wait(started["id"])

    assert RUN_KEYS | {"steps"} <= run.keys(), run.keys()
    for key in ("created_at", "started_at", "finished_at", "updated_at"):
        assert ISO_TIME.match(run[key]), run
    assert run["created_at"] <= run["started_at"] <= run["finished_at"]
    assert isinstance(run["duration_ms"], int) and run["duration_ms"] >= 0
    assert run == {
        **run, "id": started["id"], "uuid": started["uuid"], "namespace": "default",
        "workflow": "add", "workflow_version": 1, "status": "SUCCEEDED",
        "status_message": "Succeeded", "inputs": {"a": 1, "b": 2}, "outputs": {"total": 6},
        "labels": {"team": "red"}, "priority": 0, "operation_type": "add", "requestor": None,
        "external_id": None, "parent_run_id": None, "parent_step_id": None,
        "progress": {"percent": 100.0, "finished_steps": 3, "total_steps": 3},
        "counts_by_status": {"SUCCEEDED": 3}, "error": None,
    }  # fmt: skip
    assert [s["key"] for s in run["steps"]] == ["sum", "double", "report"]
    common = {"status": "SUCCEEDED", "status_message": "Succeeded", "attempt": 1,
              "max_attempts": 1, "error": None, "parent_step_id": None, "child_run_id": None,
              "not_before": None, "type": None}  # fmt: skip
    sum_, double, report = run["steps"]
    check_step(sum_, {**common, "name": "Add a and b", "kind": "python", "rank": 0,
                      "needs": [], "outputs": {"sum": 3}})  # fmt: skip
    check_step(double, {**common, "name": "double", "kind": "python", "rank": 1,
                        "needs": ["sum"], "outputs": {"sum": 6}})  # fmt: skip
    check_step(report, {**common, "name": "report", "kind": "shell", "rank": 2,
                        "needs": ["double"], "outputs": {"total": 6}})  # fmt: skip
    assert double["started_at"] >= sum_["finished_at"]


async def test_get_by_uuid_equals_get_by_id(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    run = await kit.wait((await kit.launch("add", a=5))["id"])
    by_uuid = await api.get(f"/api/v1/runs/{run['uuid']}")
    assert by_uuid.status_code == 200, by_uuid.text
    assert by_uuid.json() == run


async def test_outputs_are_objects_before_the_run_ends(kit: ApiKit) -> None:
    await kit.apply(SLEEPY)
    run = await kit.launch("sleepy")
    await kit.wait_step(run["id"], "nap", "RUNNING")
    running = await kit.get_run(run["id"])
    await kit.api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert running["outputs"] == {}
    assert [s["outputs"] for s in running["steps"]] == [{}]


async def test_duplicate_external_id_is_409(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    first = await kit.launch("add", a=1, external_id="ext-42")
    r = await api.post(
        "/api/v1/runs", json={"workflow": "add", "inputs": {"a": 2}, "external_id": "ext-42"}
    )
    body = assert_problem(r, 409, "duplicate_external_id")
    assert "ext-42" in body["detail"]
    listed = (await api.get("/api/v1/runs")).json()["runs"]
    assert [(x["id"], x["external_id"]) for x in listed] == [(first["id"], "ext-42")]


async def test_concurrent_starts_with_one_key_or_external_id_make_one_run(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    body = {"workflow": "add", "inputs": {"a": 1}}
    same_key = await asyncio.gather(
        *(api.post("/api/v1/runs", json=body, headers={"Idempotency-Key": "k1"}) for _ in range(8))
    )
    assert sorted(r.status_code for r in same_key) == [200] * 7 + [201], [r.text for r in same_key]
    assert len({r.json()["id"] for r in same_key}) == 1
    same_external = await asyncio.gather(
        *(api.post("/api/v1/runs", json={**body, "external_id": "e1"}) for _ in range(8))
    )
    assert sorted(r.status_code for r in same_external) == [201] + [409] * 7
    for r in same_external:
        if r.status_code == 409:
            assert_problem(r, 409, "duplicate_external_id")
    listed = (await api.get("/api/v1/runs")).json()["runs"]
    assert len(listed) == 2


async def test_a_run_pins_the_version_it_was_started_with(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    await kit.apply(ADD.replace("b: {type: integer, default: 2}", "b: {type: integer, default: 5}"))
    r = await api.post("/api/v1/runs", json={"workflow": "add", "version": 1, "inputs": {"a": 1}})
    assert r.status_code == 201, r.text
    latest = await kit.launch("add", a=1)
    old, new = await kit.wait(r.json()["id"]), await kit.wait(latest["id"])
    assert (old["workflow_version"], old["inputs"], old["outputs"]) == (
        1,
        {"a": 1, "b": 2},
        {"total": 6},
    )
    assert (new["workflow_version"], new["inputs"], new["outputs"]) == (
        2,
        {"a": 1, "b": 5},
        {"total": 12},
    )


BAD_INPUTS = [
    ({"a": 1, "x": 3}, [{"path": "inputs.x", "code": "unknown_input",
                          "message": "unknown input 'x' (declared: a, b)"}]),
    ({}, [{"path": "inputs.a", "code": "missing", "message": "input 'a' is required"}]),
    ({"a": "1"}, [{"path": "inputs.a", "code": "wrong_type",
                   "message": "expected integer, got string"}]),
    ({"a": 1, "b": 2.5}, [{"path": "inputs.b", "code": "wrong_type",
                           "message": "expected integer, got number"}]),
    ({"a": None}, [{"path": "inputs.a", "code": "wrong_type",
                    "message": "expected integer, got null"}]),
]  # fmt: skip


async def test_bad_inputs_are_422_invalid_inputs(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    for inputs, errors in BAD_INPUTS:
        r = await api.post("/api/v1/runs", json={"workflow": "add", "inputs": inputs})
        body = assert_problem(r, 422, "invalid_inputs")
        assert body["errors"] == errors, (inputs, body)
    assert (await api.get("/api/v1/runs")).json() == {"runs": [], "next_page_token": None}


async def test_extra_body_field_is_422_naming_the_field(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    r = await api.post("/api/v1/runs", json={"workflow": "add", "inputs": {"a": 1}, "colour": 1})
    body = assert_problem(r, 422, "validation_error")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("colour", "extra_forbidden")]
    assert "colour" in body["detail"]


MALFORMED_STARTS: list[tuple[Any, str]] = [
    ({"inputs": {"a": 1}}, "workflow"),
    ({"workflow": ""}, "workflow"),
    ({"workflow": 7}, "workflow"),
    ({"workflow": "add", "version": 0}, "version"),
    ({"workflow": "add", "version": "latest"}, "version"),
    ({"workflow": "add", "priority": "high"}, "priority"),
    ({"workflow": "add", "priority": 1001}, "priority"),
    ({"workflow": "add", "labels": {"team": 1}}, "labels.team"),
    ({"workflow": "add", "labels": ["team"]}, "labels"),
    ({"workflow": "add", "inputs": [1]}, "inputs"),
    ({"workflow": "add", "notify_url": "not a url"}, "notify_url"),
    ({"workflow": "add", "external_id": ""}, "external_id"),
    ([1, 2], "body"),
    ("add", "body"),
    (None, "body"),
]


async def test_malformed_start_requests_are_422(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    for body, path in MALFORMED_STARTS:
        r = await api.post("/api/v1/runs", json=body)
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"][0]["path"] == path, (body, problem)
    for raw in (b"{bad", b"", b'{"workflow": "add",}', b"\xff\xfe"):
        r = await api.post(
            "/api/v1/runs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_problem(r, 422, "validation_error")
    r = await api.post("/api/v1/runs", content=b"workflow=add",
                       headers={"Content-Type": "text/plain"})  # fmt: skip
    assert_problem(r, 422, "validation_error")
    assert (await api.get("/api/v1/runs")).json() == {"runs": [], "next_page_token": None}


async def test_malformed_json_problem_names_the_body(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/runs", content=b"{bad",
                       headers={"Content-Type": "application/json"})  # fmt: skip
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["path"] == "body", body


async def test_unknown_workflow_or_version_is_404(api: httpx.AsyncClient, kit: ApiKit) -> None:
    r = await api.post("/api/v1/runs", json={"workflow": "nope"})
    assert_problem(r, 404, "workflow_not_found")
    await kit.apply(ADD)
    r = await api.post("/api/v1/runs", json={"workflow": "add", "version": 7, "inputs": {"a": 1}})
    body = assert_problem(r, 404, "workflow_not_found")
    assert "version 7" in body["detail"]


# -- list -----------------------------------------------------------------------------------


async def test_list_filters_by_status_workflow_and_label(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    await kit.apply(FAILING)
    r1 = await kit.launch("add", a=1, labels={"team": "red", "tier": "1"})
    r2 = await kit.launch("add", a=2, labels={"team": "blue"})
    r3 = await kit.launch("failing", labels={"team": "red"})
    for run in (r1, r2, r3):
        await kit.wait(run["id"])

    async def ids(**params: Any) -> list[int]:
        r = await api.get("/api/v1/runs", params=params)
        assert r.status_code == 200, r.text
        assert r.json()["next_page_token"] is None
        return [x["id"] for x in r.json()["runs"]]

    a, b, c = r1["id"], r2["id"], r3["id"]
    assert await ids() == [c, b, a]
    assert await ids(status="SUCCEEDED") == [b, a]
    assert await ids(status="FAILED") == [c]
    assert await ids(status=["SUCCEEDED", "FAILED"]) == [c, b, a]
    assert await ids(status="succeeded,failed") == [c, b, a]
    assert await ids(status="RUNNING") == []
    assert await ids(workflow="failing") == [c]
    assert await ids(workflow="add") == [b, a]
    assert await ids(workflow="nope") == []
    assert await ids(label="team=red") == [c, a]
    assert await ids(label=["team=red", "tier=1"]) == [a]
    assert await ids(label="team=red", workflow="add", status="SUCCEEDED") == [a]
    assert await ids(label="team=green") == []


async def test_list_filters_by_requestor(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    made = []
    for who in ("ada@example.com", "bob@example.com", "ada@example.com", None):
        body = {"workflow": "add", "inputs": {"a": 1}, **({"requestor": who} if who else {})}
        r = await api.post("/api/v1/runs", json=body)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    r = await api.get("/api/v1/runs", params={"requestor": "ada@example.com"})
    assert [x["id"] for x in r.json()["runs"]] == [made[2], made[0]]
    assert all(x["requestor"] == "ada@example.com" for x in r.json()["runs"])
    r = await api.get("/api/v1/runs", params={"requestor": "bob@example.com", "workflow": "add"})
    assert [x["id"] for x in r.json()["runs"]] == [made[1]]
    r = await api.get("/api/v1/runs", params={"requestor": "nobody"})
    assert r.json()["runs"] == []


async def test_list_items_match_the_run_without_steps(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    run = await kit.wait((await kit.launch("add", a=1, labels={"x": "y"}))["id"])
    listed = (await api.get("/api/v1/runs")).json()["runs"]
    assert len(listed) == 1
    assert "steps" not in listed[0]
    assert listed[0] == {k: run[k] for k in listed[0]}


PAYLOAD_KEYS = {"inputs", "outputs", "vars", "counts_by_status", "steps"}
# computed for the detail view only: estimates from history
DETAIL_KEYS = {"time_left", "estimated_completion_time", "estimated_completion_range"}


async def test_list_items_are_the_run_without_its_payloads(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    """Lists stay cheap at scale: every run field but inputs, outputs, vars, counts, steps."""
    await kit.apply(ADD)
    run = await kit.wait((await kit.launch("add", a=1))["id"])
    listed = (await api.get("/api/v1/runs")).json()["runs"]
    assert listed[0].keys() == RUN_KEYS - PAYLOAD_KEYS
    assert run.keys() == RUN_KEYS | DETAIL_KEYS | {"vars", "steps"}
    assert listed[0] == {k: v for k, v in run.items() if k in RUN_KEYS - PAYLOAD_KEYS}


async def test_list_filters_by_creation_time(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(QUICK)
    older = [await kit.launch("quick", a=i) for i in range(2)]
    await asyncio.sleep(0.05)
    boundary = iso(time.time())
    await asyncio.sleep(0.05)
    newer = [await kit.launch("quick", a=i) for i in range(2)]

    async def ids(**params: Any) -> list[int]:
        r = await api.get("/api/v1/runs", params=params)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["runs"]]

    assert await ids(created_after=boundary) == [newer[1]["id"], newer[0]["id"]]
    assert await ids(created_before=boundary) == [older[1]["id"], older[0]["id"]]
    assert await ids(created_after=older[1]["created_at"], created_before=boundary) == [
        older[1]["id"]
    ]
    assert await ids(created_after="2999-01-01T00:00:00Z") == []
    assert len(await ids(created_after="2000-01-01T00:00:00+00:00")) == 4


async def test_pagination_walks_every_run_once_newest_first(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(QUICK)
    started = [(await kit.launch("quick", a=i))["id"] for i in range(5)]
    pages: list[list[int]] = []
    token = None
    while True:
        params: dict[str, Any] = {"page_size": 2}
        if token:
            params["page_token"] = token
        r = await api.get("/api/v1/runs", params=params)
        assert r.status_code == 200, r.text
        pages.append([x["id"] for x in r.json()["runs"]])
        token = r.json()["next_page_token"]
        if token is None:
            break
        assert isinstance(token, str) and token
        assert len(pages) < 5, pages
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == sorted(started, reverse=True)
    # a filter applies on every page
    r = await api.get("/api/v1/runs", params={"page_size": 2, "status": "FAILED"})
    assert r.json() == {"runs": [], "next_page_token": None}


async def test_bad_list_parameters_are_422(api: httpx.AsyncClient) -> None:
    for token in ("!!!", "not-a-token", "MTIzOmFiYw"):  # the last is "123:abc"
        r = await api.get("/api/v1/runs", params={"page_token": token})
        body = assert_problem(r, 422, "bad_page_token")
        assert body["errors"][0]["path"] == "page_token"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"status": "WHATEVER"}, "status"),
        ({"status": "SUCCEEDED,NOPE"}, "status"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_size": "two"}, "page_size"),
        ({"label": "novalue"}, "label"),
        ({"label": "=x"}, "label"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-45"}, "created_before"),
        ({"parent": "x"}, "parent"),
    ]
    for params, path in bad:
        r = await api.get("/api/v1/runs", params=params)
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == path, (params, body)


async def test_forged_page_tokens_are_422(api: httpx.AsyncClient) -> None:
    for raw in ("nan:1", "100:99999999999999999999999"):
        token = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        r = await api.get("/api/v1/runs", params={"page_token": token})
        assert_problem(r, 422, "bad_page_token")


# -- logs and events ------------------------------------------------------------------------


async def test_logs_are_ndjson_lines_with_exact_keys(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(TALK)
    run = await kit.wait((await kit.launch("talk"))["id"])
    assert run["status"] == "SUCCEEDED", run
    lines = ndjson(await api.get(f"/api/v1/runs/{run['id']}/logs"))
    for line in lines:
        assert set(line) == LOG_KEYS, line
        assert ISO_TIME.match(line["time"]), line
        assert isinstance(line["seq"], int)
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(set(seqs)), seqs
    assert [(x["level"], x["step"], x["attempt"], x["message"]) for x in lines] == [
        ("INFO", "say", 1, "echo {'n': 3}"),
        ("INFO", "sh", 1, "hello"),
        ("INFO", "sh", 1, "world"),
    ]

    only_sh = ndjson(await api.get(f"/api/v1/runs/{run['id']}/logs", params={"step": "sh"}))
    assert only_sh == lines[1:]
    after = ndjson(await api.get(f"/api/v1/runs/{run['id']}/logs", params={"after": seqs[0]}))
    assert after == lines[1:]
    after_all = await api.get(f"/api/v1/runs/{run['id']}/logs", params={"after": seqs[-1]})
    assert ndjson(after_all) == []
    assert ndjson(await api.get(f"/api/v1/runs/{run['id']}/logs", params={"step": "x"})) == []
    # follow on a finished run sends everything and ends
    followed = await api.get(f"/api/v1/runs/{run['id']}/logs", params={"follow": "true"})
    assert ndjson(followed) == lines


async def test_follow_streams_lines_while_the_run_goes_on(live_url: str, kit: ApiKit) -> None:
    await kit.apply(TICKER)
    run = await kit.launch("ticker")
    received: list[tuple[dict[str, Any], str]] = []
    async with (
        asyncio.timeout(15),
        httpx.AsyncClient(base_url=live_url, headers=bearer(ADMIN_KEY)) as client,
        client.stream("GET", f"/api/v1/runs/{run['id']}/logs", params={"follow": "true"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        async for raw in r.aiter_lines():
            if raw:
                status = (await kit.get_run(run["id"]))["status"]
                received.append((json.loads(raw), status))
    lines = [line for line, _ in received]
    assert [x["message"] for x in lines] == [f"tick {i}" for i in range(1, 6)]
    assert all(set(x) == LOG_KEYS for x in lines)
    assert received[0][1] == "RUNNING", received  # the first line came while the run ran
    assert (await kit.get_run(run["id"]))["status"] == "SUCCEEDED"

    # after= picks up where a client left off
    async with httpx.AsyncClient(base_url=live_url, headers=bearer(ADMIN_KEY)) as client:
        r = await client.get(
            f"/api/v1/runs/{run['id']}/logs", params={"follow": "true", "after": lines[2]["seq"]}
        )
    assert ndjson(r) == lines[3:]


async def events_of_a_talk_run(api: httpx.AsyncClient, kit: ApiKit) -> list[dict[str, Any]]:
    await kit.apply(TALK)
    run = await kit.wait((await kit.launch("talk"))["id"])
    r = await api.get(f"/api/v1/runs/{run['id']}/events")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def test_events_start_with_queued_and_end_with_succeeded(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    events = await events_of_a_talk_run(api, kit)
    for e in events:
        assert {"seq", "time", "type", "step", "status", "message"} <= e.keys(), e
        assert ISO_TIME.match(e["time"]), e
        assert isinstance(e["message"], str) and e["message"], e
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), seqs
    assert (events[0]["type"], events[0]["status"], events[0]["step"]) == (
        "run.queued", "QUEUED", None
    )  # fmt: skip
    assert (events[-1]["type"], events[-1]["status"], events[-1]["step"]) == (
        "run.succeeded", "SUCCEEDED", None
    )  # fmt: skip
    assert sorted((e["type"], e["step"], e["status"]) for e in events if e["step"]) == [
        ("step.started", "say", "RUNNING"), ("step.started", "sh", "RUNNING"),
        ("step.succeeded", "say", "SUCCEEDED"), ("step.succeeded", "sh", "SUCCEEDED"),
    ]  # fmt: skip


async def test_events_follow_the_order_things_happened(api: httpx.AsyncClient, kit: ApiKit) -> None:
    events = await events_of_a_talk_run(api, kit)
    assert [(e["type"], e["step"]) for e in events] == [
        ("run.queued", None), ("run.started", None),
        ("step.started", "say"), ("step.succeeded", "say"),
        ("step.started", "sh"), ("step.succeeded", "sh"),
        ("run.succeeded", None),
    ]  # fmt: skip
    times = [e["time"] for e in events]
    assert times == sorted(times), times


# -- control --------------------------------------------------------------------------------


async def test_cancel_a_running_run(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(SLEEPY)
    run = await kit.launch("sleepy")
    await kit.wait_step(run["id"], "nap", "RUNNING")
    t0 = time.monotonic()
    r = await api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["id"] == run["id"]
    assert r.json()["status"] in ("CANCELING", "CANCELED"), r.json()

    done = await kit.wait(run["id"], timeout=10)
    assert time.monotonic() - t0 < 5
    assert done["status"] == "CANCELED", done
    assert done["error"] == {"code": "canceled", "message": "Canceled by request", "step": None}
    assert [s["status"] for s in done["steps"]] == ["CANCELED"]
    assert done["finished_at"] is not None
    events = (await api.get(f"/api/v1/runs/{run['id']}/events")).json()["events"]
    assert events[-1]["type"] == "run.canceled", events[-1]
    assert_problem(await api.post(f"/api/v1/runs/{run['id']}/cancel"), 409, "run_finished")


async def test_cancel_of_a_finished_run_is_409(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    run = await kit.wait((await kit.launch("add", a=1))["id"])
    body = assert_problem(await api.post(f"/api/v1/runs/{run['id']}/cancel"), 409,
                          "run_finished")  # fmt: skip
    assert "SUCCEEDED" in body["detail"]
    assert (await kit.get_run(run["id"])) == run


async def test_delete_only_a_finished_run(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(SLEEPY)
    run = await kit.launch("sleepy")
    await kit.wait_step(run["id"], "nap", "RUNNING")
    assert_problem(await api.delete(f"/api/v1/runs/{run['id']}"), 409, "run_not_finished")
    assert (await kit.get_run(run["id"]))["status"] == "RUNNING"

    await api.post(f"/api/v1/runs/{run['id']}/cancel")
    await kit.wait(run["id"])
    r = await api.delete(f"/api/v1/runs/{run['id']}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    for path in ("", "/steps", "/steps/nap", "/logs", "/events"):
        assert_problem(await api.get(f"/api/v1/runs/{run['id']}{path}"), 404, "run_not_found")
    assert_problem(await api.get(f"/api/v1/runs/{run['uuid']}"), 404, "run_not_found")
    assert_problem(await api.delete(f"/api/v1/runs/{run['id']}"), 404, "run_not_found")
    assert (await api.get("/api/v1/runs")).json() == {"runs": [], "next_page_token": None}


async def test_a_deleted_runs_id_given_again_shows_the_new_run(
    api: httpx.AsyncClient, kit: ApiKit, engine: Legato
) -> None:
    """SQLite gives the id of a deleted newest run to the next one: what was kept of the
    deleted run at some version is never answered for the new run at that version."""
    await kit.apply(ADD)
    first = await kit.wait((await kit.launch("add", a=1))["id"])
    assert (await kit.get_run(first["id"]))["inputs"] == {"a": 1, "b": 2}  # now kept
    runs = tables.runs.c
    async with engine.db.read() as conn:
        kept_at = (
            await conn.execute(select(runs.change_seq).where(runs.id == first["id"]))
        ).scalar_one()
    other = Legato(engine.database_url, settings=SETTINGS)  # another process deletes it
    await other.open()
    try:
        p = await other.tenancy.authenticate(ADMIN_KEY)
        await other.runs.delete(p, first["id"])
    finally:
        await other.close()
    second = await kit.wait((await kit.launch("add", a=5))["id"])
    if second["id"] == first["id"]:  # the same id: bring the new run to the same version
        await engine.db.write(
            lambda tx: tx.conn.execute(
                update(tables.runs).where(runs.id == second["id"]).values(change_seq=kept_at)
            )
        )
    shown = await kit.get_run(second["id"])
    assert (shown["uuid"], shown["inputs"]) == (second["uuid"], {"a": 5, "b": 2})


async def test_steps_and_one_step(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(ADD)
    run = await kit.wait((await kit.launch("add", a=1))["id"])
    r = await api.get(f"/api/v1/runs/{run['id']}/steps")
    assert r.status_code == 200, r.text
    assert r.json() == {"steps": run["steps"]}
    for step in run["steps"]:
        for ref in (step["key"], step["id"]):
            one = await api.get(f"/api/v1/runs/{run['id']}/steps/{ref}")
            assert one.status_code == 200, one.text
            assert one.json() == step
        children = await api.get(f"/api/v1/runs/{run['id']}/steps", params={"parent": step["id"]})
        assert children.json() == {"steps": []}
    by_uuid = await api.get(f"/api/v1/runs/{run['uuid']}/steps/sum")
    assert by_uuid.json() == run["steps"][0]
    assert_problem(await api.get(f"/api/v1/runs/{run['id']}/steps/nope"), 404, "step_not_found")


async def test_unknown_run_is_404_everywhere(api: httpx.AsyncClient) -> None:
    for ref in ("424242", "abc", "00000000-0000-0000-0000-000000000000", "0"):
        for method, path in [
            ("GET", ""), ("GET", "/steps"), ("GET", "/steps/a"), ("GET", "/logs"),
            ("GET", "/logs?follow=true"), ("GET", "/events"), ("POST", "/cancel"),
            ("DELETE", ""),
        ]:  # fmt: skip
            r = await api.request(method, f"/api/v1/runs/{ref}{path}")
            assert_problem(r, 404, "run_not_found")


OUT_OF_RANGE: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/runs/99999999999999999999999", None),
    ("GET", "/api/v1/runs/9223372036854775808/events", None),
    ("POST", "/api/v1/runs/9223372036854775808/cancel", None),
    ("GET", "/api/v1/runs?parent=99999999999999999999999", None),
    ("GET", "/api/v1/runs/{run}/logs?after=99999999999999999999", None),
    ("GET", "/api/v1/runs/{run}/steps?parent=99999999999999999999", None),
    ("POST", "/api/v1/runs", {"workflow": "add", "version": 99999999999999999999}),
]


async def test_out_of_range_integers_are_not_server_errors(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    run = await kit.wait((await kit.launch("add", a=1))["id"])
    failures = []
    for method, path, body in OUT_OF_RANGE:
        try:
            r = await api.request(method, path.format(run=run["id"]), json=body)
        except Exception as exc:  # the in-process transport re-raises what became a 500
            failures.append((method, path, repr(exc)[:120]))
            continue
        if r.status_code >= 500:
            failures.append((method, path, r.text))
    assert failures == []


# -- load -----------------------------------------------------------------------------------


async def test_fifty_runs_started_at_once_all_succeed(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(QUICK)
    answers = await asyncio.gather(
        *(api.post("/api/v1/runs", json={"workflow": "quick", "inputs": {"a": i}})
          for i in range(50))
    )  # fmt: skip
    assert [r.status_code for r in answers] == [201] * 50, [r.text for r in answers[:3]]
    ids = [r.json()["id"] for r in answers]
    assert len(set(ids)) == 50

    deadline = time.monotonic() + 60
    while True:
        r = await api.get("/api/v1/runs", params={"workflow": "quick", "page_size": 100})
        listed = r.json()["runs"]
        assert sorted(x["id"] for x in listed) == sorted(ids)
        if all(x["status"] in TERMINAL for x in listed):
            break
        assert time.monotonic() < deadline, [x["status"] for x in listed]
        await asyncio.sleep(0.1)
    assert {x["status"] for x in listed} == {"SUCCEEDED"}
    runs = await asyncio.gather(*(kit.get_run(i) for i in ids))
    assert [run["steps"][0]["outputs"] for run in runs] == [{"sum": i + 2} for i in range(50)]


async def test_label_filters_combine_and_bad_labels_are_refused(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    made = {}
    for team, env in [("web", "dev"), ("web", "prod"), ("data", "dev")]:
        r = await api.post("/api/v1/runs", json={"workflow": "add", "inputs": {"a": 1},
                                                 "labels": {"team": team, "env": env}})  # fmt: skip
        assert r.status_code == 201, r.text
        made[(team, env)] = r.json()["id"]

    async def ids(*labels: str) -> list[int]:
        r = await api.get("/api/v1/runs", params=[("label", lab) for lab in labels])
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["runs"]]

    assert await ids("team=web") == [made[("web", "prod")], made[("web", "dev")]]
    assert await ids("team=web", "env=dev") == [made[("web", "dev")]]
    assert await ids("team=nobody") == []
    page = (await api.get("/api/v1/runs", params={"label": "team=web", "page_size": 1})).json()
    token = page["next_page_token"]
    rest = await api.get("/api/v1/runs", params={"label": "team=web", "page_token": token})
    assert [x["id"] for x in page["runs"] + rest.json()["runs"]] == await ids("team=web")
    r = await api.post("/api/v1/runs", json={"workflow": "add", "inputs": {"a": 1},
                                             "labels": {"k" * 201: "v"}})  # fmt: skip
    assert_problem(r, 422, "validation_error")
