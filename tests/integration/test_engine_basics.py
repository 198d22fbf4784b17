"""Runs through the engine on both stores: DAGs, outputs, retries, timeouts, failures."""

from __future__ import annotations

import itertools
from pathlib import Path

from helpers import run_workflow, steps_by_key

from legato.runtime import Legato

DIAMOND = """
name: diamond
inputs:
  a: {type: integer}
  b: {type: integer, default: 2}
steps:
  - id: start
    uses: python
    with: {function: "demo_steps:add", a: "${{ inputs.a }}", b: "${{ inputs.b }}"}
  - id: left
    needs: [start]
    uses: python
    with: {function: "demo_steps:add", a: "${{ steps.start.outputs.sum }}", b: 10}
  - id: right
    needs: [start]
    uses: python
    with: {function: "demo_steps:add", a: "${{ steps.start.outputs.sum }}", b: 100}
  - id: join
    needs: [left, right]
    uses: python
    with: {function: "demo_steps:add", a: "${{ steps.left.outputs.sum }}",
           b: "${{ steps.right.outputs.sum }}"}
  - id: report
    needs: [join]
    uses: shell
    with:
      argv: [python3, -c, "import json, sys; print(json.dumps({'total': int(sys.argv[1])}))",
             "${{ steps.join.outputs.sum }}"]
outputs:
  total: ${{ steps.report.outputs.total }}
"""


async def test_diamond_of_five_steps_passes_outputs_along(engine: Legato) -> None:
    run = await run_workflow(engine, DIAMOND, a=1)
    assert run["status"] == "SUCCEEDED", run
    steps = steps_by_key(run)
    assert [s["key"] for s in run["steps"]] == ["start", "left", "right", "join", "report"]
    assert {k: s["status"] for k, s in steps.items()} == dict.fromkeys(steps, "SUCCEEDED")
    assert steps["start"]["outputs"] == {"sum": 3}
    assert steps["left"]["outputs"] == {"sum": 13}
    assert steps["right"]["outputs"] == {"sum": 103}
    assert steps["join"]["outputs"] == {"sum": 116}
    assert run["outputs"] == {"total": 116}
    assert run["progress"] == {"percent": 100.0, "finished_steps": 5, "total_steps": 5}
    assert run["counts_by_status"] == {"SUCCEEDED": 5}
    # join started only after both branches finished
    assert steps["join"]["started_at"] >= max(
        steps["left"]["finished_at"], steps["right"]["finished_at"]
    )


RETRY = """
name: retry
inputs:
  counter: {type: string}
steps:
  - id: flaky
    uses: python
    with: {function: "demo_steps:flaky", counter_file: "${{ inputs.counter }}", succeed_on: 3}
    retry: {attempts: 3, backoff: exponential, initial: 0.3s, max: 5s}
"""


async def test_retry_succeeds_on_third_attempt_after_backoff(
    engine: Legato, tmp_path: Path
) -> None:
    counter = tmp_path / "calls"
    run = await run_workflow(engine, RETRY, counter=str(counter))
    assert run["status"] == "SUCCEEDED", run
    step = run["steps"][0]
    assert step["attempt"] == 3
    assert step["outputs"] == {"attempts": 3}
    calls = [float(t) for t in counter.read_text().splitlines()]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, gaps  # exponential: 0.3s then 0.6s


async def test_failure_skips_downstream_and_fails_run(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: failing
steps:
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
  - id: after
    needs: [bad]
    uses: python
    with: {function: "demo_steps:noop"}
  - id: independent
    uses: python
    with: {function: "demo_steps:noop"}
""",
    )
    assert run["status"] == "FAILED"
    steps = steps_by_key(run)
    assert steps["bad"]["status"] == "FAILED"
    assert steps["bad"]["error"] == {
        "code": "exception",
        "message": "ValueError: broken on purpose",
    }
    assert steps["after"]["status"] == "SKIPPED"
    assert steps["independent"]["status"] == "SUCCEEDED"
    assert run["error"] == {
        "code": "exception",
        "message": "ValueError: broken on purpose",
        "step": "bad",
    }


async def test_step_timeout(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: too-slow
steps:
  - id: sleepy
    uses: shell
    timeout: 0.5s
    with: {argv: [sleep, "30"]}
""",
    )
    assert run["status"] == "FAILED"
    step = run["steps"][0]
    assert step["status"] == "TIMED_OUT"
    assert step["error"]["code"] == "step_timeout"
    assert step["duration_ms"] < 10_000


async def test_condition_false_skips(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: conditional
inputs:
  go: {type: boolean, default: false}
steps:
  - id: maybe
    if: ${{ inputs.go }}
    uses: python
    with: {function: "demo_steps:noop"}
""",
    )
    assert run["status"] == "SUCCEEDED"
    assert run["steps"][0]["status"] == "SKIPPED"


async def test_false_condition_does_not_skip_dependents(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: optional-branch
steps:
  - id: optional
    if: ${{ false }}
    uses: python
    with: {function: "demo_steps:noop"}
  - id: after
    needs: [optional]
    uses: python
    with: {function: "demo_steps:echo", saw: "${{ steps.optional.status }}"}
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
  - id: chain1
    needs: [bad]
    uses: python
    with: {function: "demo_steps:noop"}
  - id: chain2
    needs: [chain1]
    uses: python
    with: {function: "demo_steps:noop"}
""",
    )
    steps = steps_by_key(run)
    assert steps["optional"]["status"] == "SKIPPED"
    assert steps["optional"]["error"] is None
    assert steps["after"]["status"] == "SUCCEEDED"
    assert steps["after"]["outputs"] == {"saw": "SKIPPED"}
    # a skip caused by a failure travels down the whole chain
    assert steps["chain1"]["status"] == "SKIPPED"
    assert steps["chain2"]["status"] == "SKIPPED"
    assert steps["chain2"]["error"]["code"] == "upstream_failed"
    assert run["status"] == "FAILED"


async def test_unresolvable_inputs_fail_the_step_without_running_it(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: bad-input
inputs:
  n: {type: integer, default: 0}
steps:
  - id: divide
    uses: python
    with: {function: "demo_steps:add", a: "${{ 10 // inputs.n }}", b: 1}
""",
    )
    assert run["status"] == "FAILED"
    step = run["steps"][0]
    assert step["status"] == "FAILED"
    assert step["error"]["code"] == "bad_expression"
    assert step["started_at"] is None


async def test_a_run_past_its_timeout_ends_timed_out(engine: Legato) -> None:
    run = await run_workflow(
        engine,
        """
name: run-too-slow
timeout: 1s
steps:
  - id: sleepy
    uses: shell
    with: {argv: [sleep, "30"], kill_grace: 1s}
  - id: after
    needs: [sleepy]
    uses: python
    with: {function: "demo_steps:noop"}
""",
    )
    assert (run["status"], run["error"]["code"]) == ("TIMED_OUT", "run_timeout")
    steps = {s["key"]: s["status"] for s in run["steps"]}
    assert steps == {"sleepy": "CANCELED", "after": "CANCELED"}
    assert run["duration_ms"] < 10_000
