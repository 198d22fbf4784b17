"""/metrics: Prometheus text for the installation's admins."""

from __future__ import annotations

import httpx
from apikit import ApiKit, assert_problem, bearer

ADD = """
name: add
steps:
  - id: s
    uses: python
    with: {function: "demo_steps:add", a: 1, b: 2}
"""


async def test_metrics_report_runs_queue_depth_and_latencies(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(ADD)
    await kit.wait((await kit.launch("add"))["id"])
    r = await api.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'legato_runs{namespace="default",status="SUCCEEDED"} 1.0' in text
    assert "legato_steps_ready 0.0" in text
    assert "legato_claim_seconds_count" in text and "legato_complete_seconds_bucket" in text
    assert 'legato_step_results_total{status="SUCCEEDED"}' in text
    tenant_admin = bearer((await kit.new_key("admin", "tenant-b"))["key"])
    assert_problem(await api.get("/metrics", headers=tenant_admin), 403, "forbidden")
    assert_problem(await api.get("/metrics", headers={"Authorization": ""}), 401, "unauthorized")
