"""A thousand concurrent status reads through a real HTTP server, on both stores: queued,
running and finished runs, every format, conditional or not; every one answers. And the
shortcut that serves the hottest reads answers exactly what the routes answer."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import httpx
from apikit import ADMIN_KEY, ApiKit, bearer

QUICK = """\
name: quick
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
  - id: b
    needs: [a]
    uses: python
    with: {function: "demo_steps:noop"}
"""

HOLDING = """\
name: holding
inputs:
  flag: {type: string}
steps:
  - id: hold
    uses: shell
    with: {argv: [sh, -c, 'while [ ! -e "$0" ]; do sleep 0.05; done', "${{ inputs.flag }}"]}
  - id: after
    needs: [hold]
    uses: python
    with: {function: "demo_steps:noop"}
"""

READS = 1000


async def test_a_thousand_concurrent_status_reads_all_answer(
    kit: ApiKit, live_url: str, tmp_path: Path
) -> None:
    flag = str(tmp_path / "go")
    await kit.apply(QUICK)
    await kit.apply(HOLDING)
    finished = await kit.launch("quick")
    await kit.wait(finished["id"])
    # one run slot in the namespace: the first holding run runs, the others stay queued
    r = await kit.api.patch("/api/v1/namespaces/default", json={"max_concurrent_runs": 1})
    assert r.status_code == 200, r.text
    running = await kit.launch("holding", flag=flag)
    await kit.wait(running["id"], frozenset({"RUNNING"}))
    queued = [await kit.launch("holding", flag=flag) for _ in range(3)]
    runs = [finished, running, *queued]
    statuses = {run["id"]: (await kit.get_run(run["id"]))["status"] for run in runs}
    assert statuses == {
        finished["id"]: "SUCCEEDED",
        running["id"]: "RUNNING",
        **{q["id"]: "QUEUED" for q in queued},
    }
    tags = {}
    for run in runs:
        tags[run["id"]] = (await kit.api.get(f"/api/v1/runs/{run['id']}")).headers["etag"]

    paths = ["", ".xml", ".txt", "/steps", "/steps/hold", "/values", "/events"]
    limits = httpx.Limits(max_connections=READS, max_keepalive_connections=READS)
    async with httpx.AsyncClient(
        base_url=live_url, headers=bearer(ADMIN_KEY), limits=limits, timeout=120
    ) as client:

        async def read(i: int, run_id: int, suffix: str) -> tuple[int, int, str]:
            if suffix == "/steps/hold" and run_id == finished["id"]:
                suffix = "/steps/a"
            headers = {"If-None-Match": tags[run_id]} if i % 5 == 0 and suffix == "" else {}
            r = await client.get(f"/api/v1/runs/{run_id}{suffix}", headers=headers)
            return r.status_code, run_id, suffix

        plan = zip(range(READS), itertools.cycle(runs), itertools.cycle(paths), strict=False)
        answers = await asyncio.gather(*(read(i, run["id"], sfx) for i, run, sfx in plan))
    failed = [a for a in answers if a[0] not in (200, 304)]
    assert failed == [], failed[:10]
    assert len(answers) == READS
    conditional = [a for i, a in enumerate(answers) if i % 5 == 0 and a[2] == ""]
    assert {status for status, run_id, _ in conditional if run_id != running["id"]} == {304}
    Path(flag).write_text("go")
    for run in runs:
        assert (await kit.wait(run["id"], timeout=60))["status"] == "SUCCEEDED"


async def test_the_shortcut_answers_what_the_routes_answer(kit: ApiKit, live_url: str) -> None:
    """The same reads with a parameter the shortcut leaves to the routes (which ignore it)
    and without one answer the same bytes, headers and problems; so do long-polls."""
    await kit.apply(QUICK)
    run = await kit.launch("quick")
    await kit.wait(run["id"])
    async with httpx.AsyncClient(base_url=live_url, headers=bearer(ADMIN_KEY)) as client:
        for path in (
            f"/api/v1/runs/{run['id']}",
            f"/api/v1/runs/{run['id']}.xml",
            f"/api/v1/runs/{run['uuid']}.txt",
            f"/api/v1/runs/{run['id']}/steps",
            f"/api/v1/runs/{run['id']}/steps/b",
            f"/api/v1/runs/{run['id']}/steps/nope",
            "/api/v1/runs/999999",
            "/api/v1/runs/%C2%B3",
        ):
            for query in ({}, {"wait": "0s"}, {"wait": "10ms"}, {"wait": "soon"}):
                fast = await client.get(path, params=query)
                routed = await client.get(path, params={**query, "routed": "1"})
                what = (path, query)
                assert fast.status_code == routed.status_code, what
                assert fast.content == routed.content, what
                for header in ("content-type", "etag", "vary", "cache-control"):
                    assert fast.headers.get(header) == routed.headers.get(header), (what, header)
        r = await client.get(f"/api/v1/runs/{run['id']}", headers={"Authorization": "Bearer x"})
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
