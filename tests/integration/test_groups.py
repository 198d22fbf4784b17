"""Groups: a step whose nested steps form a DAG of their own, shown as a subtree."""

from __future__ import annotations

from pathlib import Path

from helpers import admin, apply, run_workflow, sleep_until, start, steps_by_key, wait_for

from legato.runtime import Legato

CHANGE = """
name: change
inputs:
  hosts: {type: array, default: [a, b]}
steps:
  - id: submit
    uses: python
    with: {function: "demo_steps:add", a: 1, b: 1}
  - id: execute
    name: Execute the change
    uses: group
    needs: [submit]
    steps:
      - id: precheck
        uses: python
        with: {function: "demo_steps:add", a: "${{ steps.submit.outputs.sum }}", b: 10}
      - id: apply
        needs: [precheck]
        foreach: ${{ inputs.hosts }}
        uses: python
        with: {function: "demo_steps:echo", host: "${{ item }}"}
      - id: verify
        needs: [apply, precheck]
        uses: python
        with: {function: "demo_steps:add", a: "${{ steps.precheck.outputs.sum }}", b: 100}
  - id: close
    needs: [execute]
    uses: python
    with: {function: "demo_steps:echo", verified: "${{ steps.execute.outputs.verify.sum }}"}
outputs:
  verified: ${{ steps.close.outputs.verified }}
"""


async def test_group_runs_its_dag_and_is_a_drillable_subtree(engine: Legato) -> None:
    run = await run_workflow(engine, CHANGE)
    assert run["status"] == "SUCCEEDED", run
    assert run["outputs"] == {"verified": 112}
    assert run["counts_by_status"] == {"SUCCEEDED": 3}
    group = steps_by_key(run)["execute"]
    assert group["kind"] == "group"
    assert group["counts_by_status"] == {"SUCCEEDED": 3}
    assert group["outputs"]["precheck"] == {"sum": 12}
    p = await admin(engine)
    inner = await engine.runs.steps(p, run["id"], parent=group["id"])
    assert [(s["key"], s["status"]) for s in inner] == [
        ("precheck", "SUCCEEDED"),
        ("apply", "SUCCEEDED"),
        ("verify", "SUCCEEDED"),
    ]
    apply_step = inner[1]
    assert apply_step["counts_by_status"] == {"SUCCEEDED": 2}
    items = await engine.runs.steps(p, run["id"], parent=apply_step["id"])
    assert [i["key"] for i in items] == ["apply[0]", "apply[1]"]
    # a step inside starts only after its needs inside
    assert inner[2]["started_at"] >= inner[1]["finished_at"]


async def test_a_failure_inside_a_group_fails_the_group_and_skips_what_follows(
    engine: Legato, tmp_path: Path
) -> None:
    run = await run_workflow(
        engine,
        f"""
name: broken-group
steps:
  - id: work
    uses: group
    steps:
      - id: ok
        uses: python
        with: {{function: "demo_steps:noop"}}
      - id: bad
        needs: [ok]
        uses: python
        with: {{function: "demo_steps:fail_unless", flag: "{tmp_path / "flag"}"}}
      - id: never
        needs: [bad]
        uses: python
        with: {{function: "demo_steps:noop"}}
  - id: after
    needs: [work]
    uses: python
    with: {{function: "demo_steps:noop"}}
""",
    )
    assert run["status"] == "FAILED"
    steps = steps_by_key(run)
    assert steps["work"]["status"] == "FAILED"
    assert steps["work"]["error"] == {
        "code": "group_failed",
        "message": "step bad: RuntimeError: flag is not set",
    }
    assert steps["after"]["status"] == "SKIPPED"
    assert steps["work"]["counts_by_status"] == {"SUCCEEDED": 1, "FAILED": 1, "SKIPPED": 1}
    # retry: the group runs again (its steps made anew) once the cause is fixed
    (tmp_path / "flag").write_text("set")
    p = await admin(engine)
    await engine.runs.retry(p, run["id"])
    final = await wait_for(engine, run["id"])
    assert final["status"] == "SUCCEEDED", final
    inner = await engine.runs.steps(p, run["id"], parent=steps_by_key(final)["work"]["id"])
    assert [(s["key"], s["status"]) for s in inner] == [
        ("ok", "SUCCEEDED"),
        ("bad", "SUCCEEDED"),
        ("never", "SUCCEEDED"),
    ]


async def test_cancel_reaches_inside_groups_and_steps_say_why_they_wait(engine: Legato) -> None:
    await apply(
        engine,
        """
name: waiting-group
steps:
  - id: outer
    uses: group
    steps:
      - id: gate
        uses: approval
      - id: next
        needs: [gate]
        uses: python
        with: {function: "demo_steps:noop"}
""",
    )
    run = await start(engine, "waiting-group")
    p = await admin(engine)

    async def gate_waits() -> bool:
        view = await engine.runs.get(p, run["id"])
        return view["steps"][0]["status"] == "RUNNING" and bool(
            view["steps"][0]["counts_by_status"]
        )

    await sleep_until(gate_waits)
    group = (await engine.runs.get(p, run["id"]))["steps"][0]
    inner = {s["key"]: s for s in await engine.runs.steps(p, run["id"], parent=group["id"])}
    assert inner["gate"]["waiting_reason"] == {"reason": "approval"}
    assert inner["next"]["waiting_reason"] == {"reason": "upstream", "on": ["gate"]}
    await engine.runs.cancel(p, run["id"])
    final = await wait_for(engine, run["id"])
    assert final["status"] == "CANCELED"
    assert final["steps"][0]["status"] == "CANCELED"
    inner = await engine.runs.steps(p, run["id"], parent=group["id"])
    assert {s["status"] for s in inner} == {"CANCELED"}
