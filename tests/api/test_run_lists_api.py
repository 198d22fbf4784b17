"""``GET /api/v1/runs`` through HTTP: the shortcut past the framework answers byte for byte what
the route answers, and a page shows each run as its row is when the page is read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apikit import TERMINAL, ApiKit, bearer
from helpers import sleep_until

import legato.api.fast_path
from legato.api import list_path

QUICK = """\
name: quick
inputs:
  a: {type: integer}
steps:
  - id: sum
    uses: python
    with: {function: "demo_steps:add", a: "${{ inputs.a }}", b: 2}
"""

FAILING = """\
name: failing
steps:
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
"""

GATE = """\
name: waits
steps:
  - id: gate
    uses: approval
"""

#: What a client may ask; the shortcut takes some, the route the rest (and every error).
QUERIES = [
    "",
    "status=FAILED",
    "status=succeeded,failed",
    "status=SUCCEEDED&status=FAILED",
    "status=SUCCEEDED&page_size=1",
    "page_size=2",
    "page_size=500",
    "workflow=quick",
    "workflow=quick&status=FAILED",
    "requestor=nobody",
    "label=team=a",
    "label=team=a&label=env=prod",
    "label=team=%C3%A9t%C3%A9",
    "label=team=b&status=FAILED",
    "created_after=2000-01-01&created_before=2999-01-01",
    "created_after=946684800",
    # what the route must see: errors, and what only it validates
    "status=NOPE",
    "page_size=0",
    "page_size=501",
    "page_size=02",
    "page_size=two",
    "page_size=1&page_size=2",
    "page_token=not-a-token",
    "workflow=",
    "label=nokey",
    "created_after=yesterday",
    "requestor=" + "r" * 201,
    "parent=1",
    "schedule=1",
    "other=1",
]


@pytest.fixture
async def runs(kit: ApiKit) -> list[dict[str, Any]]:
    await kit.apply(QUICK)
    await kit.apply(FAILING)
    started = [
        await kit.launch("quick", a=1, labels={"team": "a", "env": "prod"}),
        await kit.launch("quick", a=2, labels={"team": "été"}),
        await kit.launch("failing", labels={"team": "b", "note": "ü \u2028 \"'<>"}),
        await kit.launch("quick", a=3, labels={"team": "a", "env": "dev"}),
    ]
    return [await kit.wait(run["id"], TERMINAL) for run in started]


async def _waits_for_approval(api: httpx.AsyncClient, run_id: int) -> bool:
    step = (await api.get(f"/api/v1/runs/{run_id}/steps/gate")).json()
    return bool(step["waiting_reason"] == {"reason": "approval"})


async def _both(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, url: str, **kw: Any
) -> tuple[httpx.Response, httpx.Response, bool]:
    """The answer with the shortcut, the route's own answer, and whether the shortcut took
    the request."""
    answered: list[bool] = []

    async def spy(scope: Any) -> Any:
        response = await list_path.list_answer(scope)
        answered.append(response is not None)
        return response

    async def none(_scope: Any) -> None:
        return None

    monkeypatch.setattr(legato.api.fast_path, "list_answer", spy)
    fast = await api.get(url, **kw)
    monkeypatch.setattr(legato.api.fast_path, "list_answer", none)
    route = await api.get(url, **kw)
    monkeypatch.undo()
    return fast, route, answered == [True]


async def test_the_shortcut_answers_what_the_route_answers(
    api: httpx.AsyncClient, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = []
    for query in QUERIES:
        fast, route, took = await _both(api, monkeypatch, f"/api/v1/runs?{query}")
        assert fast.status_code == route.status_code, query
        assert fast.headers.multi_items() == route.headers.multi_items(), query
        assert fast.content == route.content, query
        if took:
            taken.append(query)
    assert taken == QUERIES[: QUERIES.index("status=NOPE")]  # it took every plain one
    # a page followed by its token
    first = (await api.get("/api/v1/runs?page_size=1")).json()
    token = first["next_page_token"]
    fast, route, took = await _both(
        api, monkeypatch, f"/api/v1/runs?page_size=2&page_token={token}"
    )
    assert took and fast.content == route.content
    assert [r["id"] for r in fast.json()["runs"]] == [runs[2]["id"], runs[1]["id"]]


async def test_the_shortcut_asks_for_the_same_credentials(
    api: httpx.AsyncClient, kit: ApiKit, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = await kit.new_key("viewer")
    for headers in ({"Authorization": "Bearer lg_wrong"}, bearer(viewer["key"])):
        fast, route, _ = await _both(
            api, monkeypatch, "/api/v1/runs?status=FAILED", headers=headers
        )
        assert (fast.status_code, fast.content) == (route.status_code, route.content)
        assert fast.status_code == (401 if "wrong" in headers["Authorization"] else 200)


async def test_a_page_shows_each_run_as_it_is_now(
    api: httpx.AsyncClient, kit: ApiKit, runs: list[dict[str, Any]]
) -> None:
    listed = (await api.get("/api/v1/runs")).json()["runs"]
    assert [r["id"] for r in listed] == [r["id"] for r in reversed(runs)]
    for item, run in zip(listed, reversed(runs), strict=True):
        assert item["status"] == run["status"]
        assert item["updated_at"] == run["updated_at"]
    # a run that changes after its summary was rendered shows its change at once
    await kit.apply(GATE)
    waiting = await kit.launch("waits")
    await sleep_until(lambda: _waits_for_approval(api, waiting["id"]))
    before = (await api.get("/api/v1/runs?workflow=waits")).json()["runs"]
    assert [r["status"] for r in before] == ["RUNNING"]
    r = await api.post(f"/api/v1/runs/{waiting['id']}/cancel")
    assert r.status_code == 200, r.text
    after = (await api.get("/api/v1/runs?workflow=waits")).json()["runs"]
    now = await kit.get_run(waiting["id"])
    assert after[0]["status"] == now["status"] != "RUNNING"
    assert after[0]["updated_at"] == now["updated_at"]
