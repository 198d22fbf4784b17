"""Cancel, sub-workflows, sleep, approval, activity reporting: on both stores."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import admin, apply, run_workflow, sleep_until, start, steps_by_key, wait_for

from legato.runtime import Legato


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_cancel_kills_running_shell_step(engine: Legato, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    await apply(
        engine,
        f"""
name: long-shell
steps:
  - id: sleeper
    uses: shell
    with: {{argv: [sh, -c, "echo $$ > {pidfile}; exec sleep 60"], kill_grace: 1s}}
  - id: after
    needs: [sleeper]
    uses: python
    with: {{function: "demo_steps:noop"}}
""",
    )
    run = await start(engine, "long-shell")

    async def started() -> bool:
        return pidfile.exists() and pidfile.read_text().strip() != ""

    await sleep_until(started)
    pid = int(pidfile.read_text())
    assert _alive(pid)
    canceled = await engine.runs.cancel(await admin(engine), run["id"])
    assert canceled["status"] in ("CANCELING", "CANCELED")
    final = await wait_for(engine, run["id"])
    assert final["status"] == "CANCELED"
    steps = steps_by_key(final)
    assert steps["sleeper"]["status"] == "CANCELED"
    assert steps["after"]["status"] == "CANCELED"

    async def gone() -> bool:
        return not _alive(pid)

    await sleep_until(gone, 5)


CHILD = """
name: faspex-delivery
inputs:
  files: {type: array}
steps:
  - id: package
    uses: python
    with: {function: "demo_steps:echo", package_id: "pkg-${{ inputs.files | length }}"}
outputs:
  package_id: ${{ steps.package.outputs.package_id }}
  package_post_url: "https://faspex.example/packages/${{ steps.package.outputs.package_id }}"
"""

PARENT = """
name: publish
steps:
  - id: make
    uses: python
    with: {function: "demo_steps:echo", files: [a.mp4, b.webm]}
  - id: deliver
    name: Create faspex package
    type: FaspexDelivery
    needs: [make]
    uses: workflow
    with: {workflow: faspex-delivery, inputs: {files: "${{ steps.make.outputs.files }}"}}
outputs:
  package_id: ${{ steps.deliver.outputs.package_id }}
  url: ${{ steps.deliver.outputs.package_post_url }}
"""


async def test_sub_workflow_outputs_reach_parent(engine: Legato) -> None:
    await apply(engine, CHILD)
    run = await run_workflow(engine, PARENT)
    assert run["status"] == "SUCCEEDED", run
    assert run["outputs"] == {"package_id": "pkg-2", "url": "https://faspex.example/packages/pkg-2"}
    deliver = steps_by_key(run)["deliver"]
    assert deliver["type"] == "FaspexDelivery"
    assert deliver["kind"] == "workflow"
    child = await engine.runs.get(await admin(engine), deliver["child_run_id"])
    assert child["status"] == "SUCCEEDED"
    assert child["parent_run_id"] == run["id"]
    assert child["parent_step_id"] == deliver["id"]
    assert deliver["outputs"] == child["outputs"]


async def test_missing_sub_workflow_fails_the_step(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: orphan
steps:
  - id: deliver
    uses: workflow
    with: {workflow: nowhere}
""",
    )
    assert run["status"] == "FAILED"
    assert run["steps"][0]["error"] == {
        "code": "workflow_not_found",
        "message": "workflow 'nowhere' does not exist",
    }


async def test_cancel_reaches_child_runs(engine: Legato) -> None:
    await apply(
        engine,
        """
name: slow-child
steps:
  - id: wait
    uses: shell
    with: {argv: [sleep, "60"], kill_grace: 1s}
""",
    )
    await apply(
        engine,
        """
name: slow-parent
steps:
  - id: child
    uses: workflow
    with: {workflow: slow-child}
""",
    )
    run = await start(engine, "slow-parent")
    p = await admin(engine)

    async def child_running() -> bool:
        view = await engine.runs.get(p, run["id"])
        child_id = view["steps"][0]["child_run_id"]
        return bool(child_id) and (await engine.runs.get(p, child_id))["status"] == "RUNNING"

    await sleep_until(child_running)
    await engine.runs.cancel(p, run["id"])
    final = await wait_for(engine, run["id"])
    assert final["status"] == "CANCELED"
    child = await engine.runs.get(p, final["steps"][0]["child_run_id"])
    assert child["status"] == "CANCELED"


async def test_sleep_and_activity_reporting(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: reporting
steps:
  - id: nap
    uses: sleep
    with: {duration: 0.2s}
  - id: work
    needs: [nap]
    uses: python
    with: {function: "demo_steps:report"}
""",
    )
    assert run["status"] == "SUCCEEDED"
    assert run["vars"] == {"color": "blue"}
    p = await admin(engine)
    logs = await engine.runs.logs(p, run["id"])
    assert [(line["level"], line["step"], line["message"]) for line in logs] == [
        ("WARNING", "work", "careful")
    ]
    events = [e["type"] for e in await engine.runs.events(p, run["id"])]
    assert events[0] == "run.queued" and events[-1] == "run.succeeded"
    assert events.count("step.started") == 2 and events.count("step.succeeded") == 2


async def test_approval_waits_for_signal(engine: Legato) -> None:
    await apply(
        engine,
        """
name: gated
steps:
  - id: approve
    uses: approval
    with: {message: "Waiting for the change board"}
  - id: go
    needs: [approve]
    uses: python
    with: {function: "demo_steps:echo", who: "${{ steps.approve.outputs.by }}"}
""",
    )
    run = await start(engine, "gated")
    p = await admin(engine)
    waiting = await wait_for(engine, run["id"], statuses={"RUNNING"})
    assert waiting["steps"][0]["status_message"] == "Waiting for the change board"
    await engine.runs.signal(p, run["id"], "approve", {"by": "alice"})
    final = await wait_for(engine, run["id"])
    assert final["status"] == "SUCCEEDED"
    assert steps_by_key(final)["go"]["outputs"] == {"who": "alice"}


async def test_foreach_with_max_parallel(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: fan-out
inputs:
  formats: {type: array, default: [mp4, webm, hls]}
steps:
  - id: transcode
    foreach: ${{ inputs.formats }}
    max_parallel: 2
    uses: python
    with: {function: "demo_steps:echo", format: "${{ item }}"}
outputs:
  formats: ${{ steps.transcode.outputs['items'] | map(attribute='format') | list }}
""",
    )
    assert run["status"] == "SUCCEEDED", run
    assert run["outputs"] == {"formats": ["mp4", "webm", "hls"]}
    p = await admin(engine)
    kids = await engine.runs.steps(p, run["id"], parent=run["steps"][0]["id"])
    assert [k["key"] for k in kids] == ["transcode[0]", "transcode[1]", "transcode[2]"]
    assert all(k["status"] == "SUCCEEDED" for k in kids)
