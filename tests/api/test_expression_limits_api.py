"""Expressions past a bound are refused where they are met: when a definition is applied
(constants), when a run starts (its first steps), and at run time (the step fails)."""

from __future__ import annotations

import httpx
from apikit import YAML, ApiKit, assert_problem

REPEAT = """\
name: repeat
inputs:
  n: {type: integer, default: 1}
steps:
  - id: first
    uses: python
    with: {function: "demo_steps:add", a: "${{ inputs.n }}", b: 0}
  - id: second
    needs: [first]
    uses: python
    with: {function: "demo_steps:echo", text: "${{ 'a' * steps.first.outputs.sum }}"}
"""

AT_START = """\
name: at-start
inputs:
  n: {type: integer, default: 1}
steps:
  - id: pad
    uses: python
    with: {function: "demo_steps:echo", text: ["ok", "${{ 'a'.ljust(inputs.n) }}"]}
"""


async def test_a_literal_huge_expression_is_refused_when_applied(api: httpx.AsyncClient) -> None:
    source = AT_START.replace("name: at-start", "name: literal").replace(
        "inputs.n) }}", "2**28) }}"
    )
    r = await api.put("/api/v1/workflows/literal", content=source, headers=YAML)
    body = assert_problem(r, 422, "invalid_definition")
    assert body["errors"] == [
        {
            "path": "steps[0].with.text[1]",
            "line": 7,
            "message": "${{ 'a'.ljust(2**28) }}: not allowed: argument 268435456 is larger "
            "than 1000000",
            "code": "bad_expression",
        }
    ], body
    r = await api.put("/api/v1/workflows/big", content=source.replace("2**28", "2**64 - 1"))
    assert_problem(r, 422, "invalid_definition")


async def test_a_start_whose_first_steps_build_too_much_is_422(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(AT_START)
    r = await api.post("/api/v1/runs", json={"workflow": "at-start", "inputs": {"n": 2**28}})
    body = assert_problem(r, 422, "bad_expression")
    message = "${{ 'a'.ljust(inputs.n) }}: not allowed: argument 268435456 is larger than 1000000"
    assert body["errors"] == [
        {"path": "steps[0].with.text[1]", "message": message, "code": "bad_expression"}
    ], body
    assert body["detail"] == f"steps[0].with.text[1]: {message}"
    assert (await api.get("/api/v1/runs")).json()["runs"] == []
    fine = await kit.launch("at-start", n=3)
    assert (await kit.wait(fine["id"]))["status"] == "SUCCEEDED"


async def test_a_step_that_builds_too_much_at_run_time_fails_and_the_worker_goes_on(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(REPEAT)
    run = await kit.launch("repeat", n=10**7)
    done = await kit.wait(run["id"])
    assert done["status"] == "FAILED", done
    second = next(s for s in done["steps"] if s["key"] == "second")
    assert second["status"] == "FAILED"
    assert second["error"] == {
        "code": "bad_expression",
        "message": "${{ 'a' * steps.first.outputs.sum }}: not allowed: result larger than "
        "1000000 characters",
        "path": "steps[1].with.text",
    }, second["error"]
    after = await kit.launch("repeat", n=3)
    assert (await kit.wait(after["id"]))["status"] == "SUCCEEDED"


async def test_integers_past_64_bits_in_expressions_are_422(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(AT_START.replace("'a'.ljust(inputs.n)", "inputs.n * 2**62"))
    r = await api.post("/api/v1/runs", json={"workflow": "at-start", "inputs": {"n": 4}})
    body = assert_problem(r, 422, "bad_expression")
    assert body["errors"][0]["path"] == "steps[0].with.text[1]", body
    assert "does not fit in 64 bits" in body["errors"][0]["message"], body
