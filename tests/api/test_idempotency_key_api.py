"""The ``Idempotency-Key`` header: only a usable key reaches the store, and a bad start never
fails the ordinary starts that share its group-commit transaction."""

from __future__ import annotations

import asyncio

import httpx
from apikit import ApiKit, assert_problem

QUICK = """\
name: quick
inputs:
  n: {type: integer, default: 1}
steps:
  - id: noop
    uses: shell
    with: {argv: ["true"]}
"""


async def test_empty_blank_or_oversized_keys_are_400(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(QUICK)
    for key in ("", " ", "\t ", "k" * 201):
        r = await api.post("/api/v1/runs", json={"workflow": "quick"},
                           headers={"Idempotency-Key": key})  # fmt: skip
        body = assert_problem(r, 400, "bad_idempotency_key")
        assert body["errors"] == [
            {"path": "Idempotency-Key", "message": "empty, blank or too long"}
        ], body
    assert (await api.get("/api/v1/runs")).json()["runs"] == []
    longest = await api.post("/api/v1/runs", json={"workflow": "quick"},
                             headers={"Idempotency-Key": "k" * 200})  # fmt: skip
    assert longest.status_code == 201, longest.text


async def test_bad_starts_never_fail_the_ordinary_ones_beside_them(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(QUICK)
    ordinary = [api.post("/api/v1/runs", json={"workflow": "quick", "inputs": {"n": i}})
                for i in range(20)]  # fmt: skip
    bad = [
        api.post("/api/v1/runs", json={"workflow": "quick"}, headers={"Idempotency-Key": key})
        for key in ("", "", " ", "", "k" * 300)
    ]
    unknown = [api.post("/api/v1/runs", json={"workflow": "nope"}) for _ in range(3)]
    answers = await asyncio.gather(*ordinary, *bad, *unknown)
    assert [r.status_code for r in answers[:20]] == [201] * 20, [r.text for r in answers[:20]]
    for r in answers[20:25]:
        assert_problem(r, 400, "bad_idempotency_key")
    for r in answers[25:]:
        assert_problem(r, 404, "workflow_not_found")
    started = [(await kit.get_run(r.json()["id"]))["inputs"]["n"] for r in answers[:20]]
    assert sorted(started) == list(range(20))
    listed = (await api.get("/api/v1/runs", params={"page_size": 100})).json()["runs"]
    assert len(listed) == 20
