"""``/api/v1/workflows`` through HTTP: versions, listing, YAML and JSON bodies, problems."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from apikit import ISO_TIME, UUID, YAML, ApiKit, assert_problem

GREET_V1 = """\
name: greet
description: Say hello
inputs:
  who: {type: string, default: world}
steps:
  - id: hello
    uses: python
    with: {function: "demo_steps:echo", who: "${{ inputs.who }}"}
"""

GREET_V2 = (
    GREET_V1
    + """\
  - id: again
    needs: [hello]
    uses: python
    with: {function: "demo_steps:noop"}
"""
)

HELLO_STEP = {
    "id": "hello",
    "uses": "python",
    "needs": [],
    "description": "",
    "with": {"function": "demo_steps:echo", "who": "${{ inputs.who }}"},
}
AGAIN_STEP = {
    "id": "again",
    "uses": "python",
    "needs": ["hello"],
    "description": "",
    "with": {"function": "demo_steps:noop"},
}


def definition(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "greet",
        "description": "Say hello",
        "inputs": {"who": {"type": "string", "default": "world", "description": ""}},
        "steps": list(steps),
        "outputs": {},
        "labels": {},
    }


def expect_workflow(body: dict[str, Any], version: int, *steps: dict[str, Any]) -> None:
    assert UUID.match(body["uuid"]), body
    assert ISO_TIME.match(body["created_at"]), body
    assert body == {
        **body,
        "name": "greet",
        "version": version,
        "namespace": "default",
        "description": "Say hello",
        "operation_type": None,
        "definition": definition(*steps),
    }


async def test_put_yaml_creates_versions_only_when_the_definition_changes(
    api: httpx.AsyncClient,
) -> None:
    r1 = await api.put("/api/v1/workflows/greet", content=GREET_V1, headers=YAML)
    assert r1.status_code == 201, r1.text
    assert r1.headers["content-type"] == "application/json"
    expect_workflow(r1.json(), 1, HELLO_STEP)

    again = await api.put("/api/v1/workflows/greet", content=GREET_V1, headers=YAML)
    assert again.status_code == 200, again.text
    assert again.json() == r1.json()

    r2 = await api.put(
        "/api/v1/workflows/greet", content=GREET_V2, headers={"Content-Type": "text/yaml"}
    )
    assert r2.status_code == 201, r2.text
    expect_workflow(r2.json(), 2, HELLO_STEP, AGAIN_STEP)
    assert r2.json()["created_at"] >= r1.json()["created_at"]


async def test_list_shows_the_latest_version_of_each_workflow(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    v1 = await kit.apply(GREET_V1)
    v2 = await kit.apply(GREET_V2)
    other = await kit.apply(
        "name: other\nsteps:\n  - id: a\n    uses: python\n"
        "    with: {function: 'demo_steps:noop'}\n"
    )
    r = await api.get("/api/v1/workflows")
    assert r.status_code == 200, r.text
    listed = sorted(r.json()["workflows"], key=lambda w: w["name"])
    summary = {k: v for k, v in v2.items() if k != "definition"}
    other_summary = {k: v for k, v in other.items() if k != "definition"}
    assert listed == [summary, other_summary]
    assert v1["version"] == 1 and summary["version"] == 2


async def test_get_latest_or_a_given_version(api: httpx.AsyncClient, kit: ApiKit) -> None:
    v1 = await kit.apply(GREET_V1)
    v2 = await kit.apply(GREET_V2)

    latest = await api.get("/api/v1/workflows/greet")
    assert latest.status_code == 200, latest.text
    assert latest.json() == {**latest.json(), **v2}
    expect_workflow(latest.json(), 2, HELLO_STEP, AGAIN_STEP)

    first = await api.get("/api/v1/workflows/greet", params={"version": 1})
    assert first.status_code == 200, first.text
    assert first.json() == {**first.json(), **v1}
    expect_workflow(first.json(), 1, HELLO_STEP)

    missing = await api.get("/api/v1/workflows/greet", params={"version": 3})
    assert_problem(missing, 404, "workflow_not_found")


async def test_json_body_is_accepted(api: httpx.AsyncClient) -> None:
    body = {
        "name": "greet",
        "description": "Say hello",
        "inputs": {"who": {"type": "string", "default": "world"}},
        "steps": [
            {
                "id": "hello",
                "uses": "python",
                "with": {"function": "demo_steps:echo", "who": "${{ inputs.who }}"},
            }
        ],
    }
    r = await api.put("/api/v1/workflows/greet", json=body)
    assert r.status_code == 201, r.text
    expect_workflow(r.json(), 1, HELLO_STEP)
    again = await api.put("/api/v1/workflows/greet", json=body)
    assert again.status_code == 200, again.text
    assert again.json() == r.json()


INVALID = """\
name: broken
steps:
  - id: first
    uses: python
    needs: [second]
    with: {function: "demo_steps:noop"}
  - id: second
    uses: python
    needs: [first]
    with:
      function: "demo_steps:add"
      a: "${{ steps.nowhere.outputs.x }}"
      b: 1
"""


async def test_invalid_definition_names_path_and_line_of_every_problem(
    api: httpx.AsyncClient,
) -> None:
    r = await api.put("/api/v1/workflows/broken", content=INVALID, headers=YAML)
    body = assert_problem(r, 422, "invalid_definition")
    assert body["errors"] == [
        {
            "path": "steps[0].needs[0]",
            "line": 5,
            "message": "cycle in needs: first -> second -> first",
            "code": "cycle",
        },
        {
            "path": "steps[1].with.a",
            "line": 12,
            "message": "unknown step 'nowhere'",
            "code": "unknown_step",
        },
    ]
    assert_problem(await api.get("/api/v1/workflows/broken"), 404, "workflow_not_found")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("steps: [\n", {"path": "", "line": 2, "code": "syntax"}),
        ("- a\n- b\n", {"path": "", "line": 1, "code": "invalid"}),
        ("name: broken\nsteps: 3\n", {"path": "steps", "line": 2, "code": "invalid"}),
        ("name: broken\n", {"path": "steps", "line": 1, "code": "missing"}),
    ],
)
async def test_malformed_definitions_are_422_with_a_located_problem(
    api: httpx.AsyncClient, source: str, error: dict[str, Any]
) -> None:
    r = await api.put("/api/v1/workflows/broken", content=source, headers=YAML)
    body = assert_problem(r, 422, "invalid_definition")
    assert len(body["errors"]) == 1, body
    assert body["errors"][0] == {**body["errors"][0], **error}
    assert isinstance(body["errors"][0]["message"], str) and body["errors"][0]["message"]


@pytest.mark.parametrize("source", ["", "null", "\x00", "{", "[1, 2]", "name: [x]\nsteps: []\n"])
async def test_garbage_bodies_never_cause_a_server_error(
    api: httpx.AsyncClient, source: str
) -> None:
    for headers in (YAML, {"Content-Type": "application/json"}):
        r = await api.put("/api/v1/workflows/broken", content=source, headers=headers)
        assert_problem(r, 422, "invalid_definition")


async def test_url_name_must_match_the_definition(api: httpx.AsyncClient) -> None:
    r = await api.put("/api/v1/workflows/other-name", content=GREET_V1, headers=YAML)
    body = assert_problem(r, 422, "name_mismatch")
    assert body["errors"] == [
        {"path": "name", "line": None, "message": "does not match the URL", "code": "name_mismatch"}
    ]
    assert_problem(await api.get("/api/v1/workflows/other-name"), 404, "workflow_not_found")
    assert_problem(await api.get("/api/v1/workflows/greet"), 404, "workflow_not_found")


async def test_unknown_workflow_is_404(api: httpx.AsyncClient) -> None:
    body = assert_problem(await api.get("/api/v1/workflows/nope"), 404, "workflow_not_found")
    assert "nope" in body["detail"]


async def test_non_utf8_body_is_400(api: httpx.AsyncClient) -> None:
    r = await api.put(
        "/api/v1/workflows/greet", content=b"name: gr\xffeet\nsteps: []\n", headers=YAML
    )
    assert_problem(r, 400, "bad_encoding")


async def test_bad_version_query_is_422(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(GREET_V1)
    for bad in ("0", "-1", "one"):
        r = await api.get("/api/v1/workflows/greet", params={"version": bad})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == "version", body


async def test_out_of_range_version_is_not_a_server_error(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(GREET_V1)
    api._transport.raise_app_exceptions = False  # type: ignore[attr-defined]
    for version in ("2147483648", "9223372036854775808", "99999999999999999999"):
        r = await api.get("/api/v1/workflows/greet", params={"version": version})
        if r.status_code == 422:
            assert_problem(r, 422, "validation_error")
        else:
            assert_problem(r, 404, "workflow_not_found")


def _variant(i: int) -> str:
    return GREET_V1.replace("id: hello", f"id: hello{i}")


CONCURRENT_PUTS = 20


async def test_concurrent_changes_each_get_their_own_version(
    api: httpx.AsyncClient, database_url: str, request: pytest.FixtureRequest
) -> None:
    api._transport.raise_app_exceptions = False  # type: ignore[attr-defined]
    answers = await asyncio.gather(
        *(
            api.put("/api/v1/workflows/greet", content=_variant(i), headers=YAML)
            for i in range(CONCURRENT_PUTS)
        )
    )
    statuses = [r.status_code for r in answers]
    assert statuses == [201] * CONCURRENT_PUTS, [r.text for r in answers if r.status_code != 201]
    assert sorted(r.json()["version"] for r in answers) == list(range(1, CONCURRENT_PUTS + 1))
    latest = (await api.get("/api/v1/workflows/greet")).json()
    assert latest["version"] == CONCURRENT_PUTS


async def test_concurrent_identical_puts_make_one_version(api: httpx.AsyncClient) -> None:
    api._transport.raise_app_exceptions = False  # type: ignore[attr-defined]
    answers = await asyncio.gather(
        *(
            api.put("/api/v1/workflows/greet", content=GREET_V1, headers=YAML)
            for _ in range(CONCURRENT_PUTS)
        )
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * (CONCURRENT_PUTS - 1) + [201], [r.text for r in answers]
    assert {r.json()["version"] for r in answers} == {1}
    assert len({r.json()["uuid"] for r in answers}) == 1


async def test_http_errors_are_problems(api: httpx.AsyncClient) -> None:
    big = GREET_V1 + "#" + "x" * (8 << 20) + "\n"
    assert_problem(
        await api.put("/api/v1/workflows/greet", content=big, headers=YAML),
        413,
        "body_too_large",
    )
    assert_problem(await api.delete("/api/v1/workflows"), 405, "method_not_allowed")
    assert_problem(await api.patch("/api/v1/runs/1"), 405, "method_not_allowed")
    assert_problem(await api.get("/api/v1/nothing-here"), 404, "not_found")
