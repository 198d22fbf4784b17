"""The planner (``legato.model.advance``) case by case, with no database: what starting a run,
each kind of result, cancel, resume and retry change, stated exactly."""

from __future__ import annotations

import pytest

from legato.model.advance import Effects, apply_result
from legato.model.records import StepResult
from legato.model.states import RunStatus, StepStatus
from tests.unit.run_simulation import Simulation

S, R = StepStatus, RunStatus

CHAIN = """
name: chain
inputs:
  who: {type: string, default: world}
timeout: 1h
steps:
  - id: a
    uses: python
    with: {function: "demo.steps:hello", who: "${{ inputs.who }}"}
  - id: b
    needs: [a]
    uses: python
    with: {function: "demo.steps:shout", text: "${{ steps.a.outputs.text }}"}
    retry: {attempts: 3, backoff: exponential, initial: 2s, max: 3s}
  - id: c
    needs: [b]
    uses: python
    with: {function: "demo.steps:noop"}
outputs:
  text: ${{ steps.b.outputs.text }}
"""


def started_chain() -> Simulation:
    sim = Simulation(CHAIN, inputs={"who": "Ada"})
    [a] = sim.claimable()
    sim.claim(a)
    assert sim.succeed(a, {"text": "hi Ada"})
    return sim


# -- start ---------------------------------------------------------------------------------


def test_start_releases_the_first_steps_and_records_inputs() -> None:
    sim = Simulation(CHAIN, inputs={"who": "Ada"})
    assert sim.run.status == R.QUEUED
    assert sim.run.status_message == "Queued"
    assert sim.run.total_steps == 3
    assert sim.run.deadline_at == 1000.0 + 3600.0
    assert sim.statuses() == {"a": S.READY, "b": S.PENDING, "c": S.PENDING}
    assert sim.step("a").args == {"function": "demo.steps:hello", "who": "Ada"}
    assert [s.key for s in sim.fx.ready_steps] == ["a"]
    assert [e["type"] for e in sim.fx.events] == ["run.queued"]
    assert [(v["scope"], v["name"], v["value"]) for v in sim.fx.values] == [("input", "who", "Ada")]


def test_a_step_is_released_with_its_upstream_outputs_rendered() -> None:
    sim = started_chain()
    b = sim.step("b")
    assert b.status == S.READY
    assert b.args == {"function": "demo.steps:shout", "text": "hi Ada"}
    assert sim.run.finished_steps == 1
    assert [(v["scope"], v["name"]) for v in sim.fx.values] == [("output", "text")]
    assert [e["type"] for e in sim.fx.events] == ["step.succeeded"]
    assert [(run.id, key) for run, key, _ in sim.fx.durations] == [(1, "a")]


def test_the_run_succeeds_with_its_outputs_when_every_step_has() -> None:
    sim = started_chain()
    sim.drive(outputs={"b": {"text": "HI ADA"}})
    assert sim.run.status == R.SUCCEEDED
    assert sim.run.outputs == {"text": "HI ADA"}
    assert [(v["scope"], v["name"], v["value"]) for v in sim.fx.values] == [
        ("run_output", "text", "HI ADA")
    ]
    assert sim.run.finished_steps == 3
    assert sim.fx.finished_runs == [sim.run]
    assert sim.fx.parent_notices == []  # not a child run


def test_a_run_with_only_skipped_steps_ends_at_start() -> None:
    sim = Simulation(
        """
name: never
steps:
  - id: a
    if: false
    uses: python
    with: {function: "demo.steps:noop"}
"""
    )
    assert sim.statuses() == {"a": S.SKIPPED}
    assert sim.run.status == R.SUCCEEDED
    assert sim.run.started_at == sim.run.finished_at == 1000.0


def test_a_step_whose_inputs_cannot_be_rendered_fails_at_release() -> None:
    sim = Simulation(
        """
name: broken
inputs:
  n: {type: integer, default: 0}
steps:
  - id: a
    uses: python
    with: {function: "demo.steps:noop", x: "${{ inputs.n.nothing.deeper }}"}
  - id: b
    needs: [a]
    uses: python
    with: {function: "demo.steps:noop"}
"""
    )
    assert sim.statuses() == {"a": S.FAILED, "b": S.SKIPPED}
    a = sim.step("a")
    assert a.error is not None and a.error["code"] == "bad_expression"
    assert a.attempt == 1
    assert sim.run.status == R.FAILED
    assert sim.run.error is not None and sim.run.error["step"] == "a"


# -- results: success, failure, retry with backoff, timeouts, lost leases -------------------------


def test_a_failure_with_attempts_left_is_retried_after_its_backoff() -> None:
    sim = started_chain()
    b = sim.step("b")
    delays = []
    for attempt in (1, 2):
        sim.claim(b)
        assert b.attempt == attempt
        assert sim.fail(b, f"try {attempt}")
        assert b.status == S.READY
        assert b.lease_owner is None and b.lease_expires_at is None
        delays.append(b.not_before - sim.now)
        assert [e["type"] for e in sim.fx.events] == ["step.retrying"]
        assert sim.fx.ready_steps == [b]
        assert sim.fx.errors == []  # a retried failure is not a run error
        assert b not in sim.claimable()  # not before its backoff
        sim.now = b.not_before
    assert delays == [2.0, 3.0]  # 2s, then 4s capped at 3s
    assert b.status_message == "Retrying in 3.0s after attempt 2 of 3: try 2"
    sim.claim(b)
    assert sim.fail(b, "try 3")
    assert b.status == S.FAILED
    assert b.error == {"code": "boom", "message": "try 3"}
    assert sim.statuses() == {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.SKIPPED}
    assert sim.step("c").error == {
        "code": "upstream_failed",
        "message": "Skipped: upstream b did not succeed",
    }
    assert sim.run.status == R.FAILED
    assert sim.run.error == {"code": "boom", "message": "try 3", "step": "b"}
    assert sim.run.status_message == "Failed: step b: try 3"
    assert [e["code"] for e in sim.fx.errors] == ["boom"]


def test_jitter_spreads_the_backoff_by_the_random_draw() -> None:
    sim = Simulation(
        """
name: jittery
steps:
  - id: a
    uses: python
    with: {function: "demo.steps:noop"}
    retry: {attempts: 2, backoff: fixed, initial: 10s, jitter: 0.5}
"""
    )
    a = sim.step("a")
    sim.claim(a)
    result = StepResult(a.id, 1, S.FAILED, error={"code": "x", "message": "x"}, worker="w1")
    assert apply_result(sim.graph, result, sim.now, Effects(), rand=lambda: 0.0)
    assert a.not_before == sim.now + 5.0  # 10s * (1 - 0.5)


def test_a_failure_that_is_not_retryable_fails_at_once() -> None:
    sim = started_chain()
    b = sim.step("b")
    sim.claim(b)
    assert sim.fail(b, "bad input", retryable=False)
    assert b.status == S.FAILED and b.attempt == 1
    assert sim.run.status == R.FAILED


def test_a_timed_out_attempt_is_retried_then_times_the_step_out() -> None:
    sim = started_chain()
    b = sim.step("b")
    for _ in range(2):
        sim.claim(b)
        assert sim.time_out(b)
        assert b.status == S.READY
        sim.now = b.not_before
    sim.claim(b)
    assert sim.time_out(b)
    assert b.status == S.TIMED_OUT
    assert b.status_message == "Timed out: step exceeded its timeout"
    assert sim.run.status == R.FAILED
    assert sim.run.error == {
        "code": "step_timeout",
        "message": "step exceeded its timeout",
        "step": "b",
    }


def test_a_lost_lease_does_not_count_against_the_retry_policy() -> None:
    sim = Simulation(
        """
name: once
steps:
  - id: a
    uses: python
    with: {function: "demo.steps:noop"}
"""
    )
    a = sim.step("a")
    for attempt in (1, 2):
        sim.claim(a, worker=f"w{attempt}")
        assert sim.lose_lease(a, max_takeovers=2)
        assert a.status == S.READY and a.lease_losses == attempt
        assert a.not_before == sim.now  # no retry policy: no wait
    sim.claim(a, worker="w3")
    assert a.attempt == 3
    assert sim.lose_lease(a, max_takeovers=2)  # the third loss is one too many
    assert a.status == S.FAILED
    assert a.error is not None
    assert a.error["code"] == "lease_lost_too_often"
    assert a.error["message"].endswith("Last: worker w3 stopped responding")
    assert sim.run.status == R.FAILED


def test_a_result_from_a_worker_that_lost_the_step_is_fenced_off() -> None:
    sim = started_chain()
    b = sim.step("b")
    sim.claim(b, worker="w1")
    assert sim.lose_lease(b)
    assert not sim.report(b, S.SUCCEEDED, worker="w1", attempt=1)  # before the take-over
    assert b.not_before == sim.now + 2.0  # a take-over waits out the retry policy's backoff
    sim.now = b.not_before
    sim.claim(b, worker="w2")
    assert not sim.report(b, S.SUCCEEDED, worker="w1", attempt=1)  # and after it
    assert not sim.report(b, S.SUCCEEDED, worker="w1", attempt=2)
    assert b.status == S.RUNNING and b.attempt == 2
    assert sim.succeed(b, {"by": "w2"})
    assert b.status == S.SUCCEEDED and b.outputs == {"by": "w2"}


def test_stale_and_foreign_results_change_nothing() -> None:
    sim = started_chain()
    b = sim.step("b")
    sim.claim(b, worker="w1")
    assert not sim.report(b, S.SUCCEEDED, worker="w2")
    assert not sim.report(b, S.SUCCEEDED, attempt=0)
    assert not sim.report(b, S.SUCCEEDED, attempt=2)
    assert b.status == S.RUNNING and b.lease_owner == "w1"
    assert sim.fx.events == []
    assert sim.succeed(b)
    assert not sim.succeed(b)  # the same report delivered twice
    unknown = StepResult(999_999, 1, S.SUCCEEDED)
    assert not apply_result(sim.graph, unknown, sim.now, Effects())


# -- conditions ----------------------------------------------------------------------------


CONDITIONS = """
name: conditions
inputs:
  deliver: {type: boolean, default: false}
steps:
  - id: make
    uses: python
    with: {function: "demo.steps:noop"}
  - id: deliver
    needs: [make]
    if: ${{ inputs.deliver }}
    uses: python
    with: {function: "demo.steps:noop"}
  - id: report
    needs: [deliver]
    uses: python
    with: {function: "demo.steps:noop", delivered: "${{ steps.deliver.status }}"}
"""


def test_a_false_condition_skips_the_step_and_its_dependents_still_run() -> None:
    sim = Simulation(CONDITIONS)
    make = sim.step("make")
    sim.claim(make)
    assert sim.succeed(make)
    assert sim.statuses() == {"make": S.SUCCEEDED, "deliver": S.SKIPPED, "report": S.READY}
    deliver = sim.step("deliver")
    assert deliver.status_message == "Skipped: condition is false"
    assert deliver.error is None
    assert sim.step("report").args == {"function": "demo.steps:noop", "delivered": "SKIPPED"}
    sim.drive()
    assert sim.run.status == R.SUCCEEDED


def test_a_true_condition_runs_the_step() -> None:
    sim = Simulation(CONDITIONS, inputs={"deliver": True})
    sim.drive()
    assert sim.statuses() == {"make": S.SUCCEEDED, "deliver": S.SUCCEEDED, "report": S.SUCCEEDED}


def test_an_upstream_failure_skips_every_step_after_it() -> None:
    sim = Simulation(CONDITIONS, inputs={"deliver": True})
    sim.drive(fail=frozenset({"make"}))
    assert sim.statuses() == {"make": S.FAILED, "deliver": S.SKIPPED, "report": S.SKIPPED}
    assert sim.step("report").error == {
        "code": "upstream_failed",
        "message": "Skipped: upstream deliver did not succeed",
    }
    assert sim.run.status == R.FAILED


# -- fan-out: foreach and groups -------------------------------------------------------------


FOREACH = """
name: fanout
inputs:
  formats: {type: array, default: [mp4, webm, ogg]}
steps:
  - id: each
    foreach: ${{ inputs.formats }}
    max_parallel: 2
    uses: python
    with: {function: "demo.steps:encode", format: "${{ item }}"}
    retry: {attempts: 2, backoff: fixed, initial: 1s}
  - id: after
    needs: [each]
    uses: python
    with: {function: "demo.steps:noop", first: "${{ steps.each.outputs['items'][0].f }}"}
"""


def test_foreach_makes_one_item_per_element_at_most_max_parallel_at_a_time() -> None:
    sim = Simulation(FOREACH)
    each = sim.step("each")
    assert each.status == S.RUNNING and each.lease_owner is None
    assert sim.run.status == R.RUNNING  # a fan-out starts the run at once
    assert sim.statuses() == {
        "each": S.RUNNING,
        "after": S.PENDING,
        "each[0]": S.READY,
        "each[1]": S.READY,
        "each[2]": S.PENDING,
    }
    items = sim.graph.children(each)
    assert [i.args for i in items] == [
        {"function": "demo.steps:encode", "format": f} for f in ("mp4", "webm", "ogg")
    ]
    assert all(i.parent_step_id == each.id for i in items)
    assert sim.run.total_steps == 2  # items are not top-level steps
    first, second, third = items
    sim.claim(first)
    assert sim.succeed(first, {"f": "mp4"})
    assert third.status == S.READY  # a slot came free
    assert each.status_message == "1 of 3 items finished"
    assert each.progress == pytest.approx(1 / 3)
    for item in (second, third):
        sim.claim(item)
        assert sim.succeed(item, {"f": item.item})
    assert each.status == S.SUCCEEDED
    assert each.outputs == {"items": [{"f": "mp4"}, {"f": "webm"}, {"f": "ogg"}]}
    after = sim.step("after")
    assert after.status == S.READY
    assert after.args == {"function": "demo.steps:noop", "first": "mp4"}


def test_a_failed_item_fails_its_foreach_once_every_item_has_ended() -> None:
    sim = Simulation(FOREACH)
    each = sim.step("each")
    first, second, third = sim.graph.children(each)
    sim.claim(first)
    assert sim.fail(first, "codec", retryable=False)
    assert each.status == S.RUNNING  # the others still run
    assert sim.run.status == R.RUNNING
    for item in (second, third):
        sim.claim(item)
        assert sim.succeed(item)
    assert each.status == S.FAILED
    assert each.error == {
        "code": "items_failed",
        "message": "1 of 3 items did not succeed; first: each[0]: codec",
    }
    assert sim.statuses()["after"] == S.SKIPPED
    assert sim.run.status == R.FAILED


def test_an_empty_foreach_succeeds_at_once() -> None:
    sim = Simulation(FOREACH, inputs={"formats": []})
    assert sim.step("each").status == S.SUCCEEDED
    assert sim.step("each").outputs == {"items": []}
    assert sim.step("after").status == S.FAILED  # items[0] of nothing: a bad expression
    assert sim.run.status == R.FAILED


GROUP = """
name: grouped
steps:
  - id: prepare
    uses: group
    steps:
      - id: fetch
        uses: python
        with: {function: "demo.steps:noop"}
      - id: check
        needs: [fetch]
        uses: python
        with: {function: "demo.steps:noop"}
  - id: publish
    needs: [prepare]
    uses: python
    with: {function: "demo.steps:noop", sum: "${{ steps.prepare.outputs.check.sum }}"}
"""


def test_a_group_runs_its_steps_by_their_needs_and_ends_with_them() -> None:
    sim = Simulation(GROUP)
    assert sim.statuses() == {
        "prepare": S.RUNNING,
        "publish": S.PENDING,
        "fetch": S.READY,
        "check": S.PENDING,
    }
    fetch, check = sim.step("fetch"), sim.step("check")
    sim.claim(fetch)
    assert sim.succeed(fetch, {"n": 1})
    assert check.status == S.READY
    assert sim.step("prepare").status_message == "1 of 2 steps finished"
    sim.claim(check)
    assert sim.succeed(check, {"sum": 5})
    prepare = sim.step("prepare")
    assert prepare.status == S.SUCCEEDED
    assert prepare.outputs == {"fetch": {"n": 1}, "check": {"sum": 5}}
    assert sim.step("publish").args == {"function": "demo.steps:noop", "sum": 5}


def test_a_failed_step_fails_its_group() -> None:
    sim = Simulation(GROUP)
    sim.drive(fail=frozenset({"fetch"}))
    assert sim.statuses() == {
        "prepare": S.FAILED,
        "publish": S.SKIPPED,
        "fetch": S.FAILED,
        "check": S.SKIPPED,
    }
    assert sim.step("prepare").error == {"code": "group_failed", "message": "step fetch: boom"}


# -- sleep, approval ----------------------------------------------------------------------


WAITS = """
name: waits
steps:
  - id: nap
    uses: sleep
    with: {duration: 90s}
  - id: approve
    needs: [nap]
    uses: approval
    with: {message: "Ship it?"}
"""


def test_sleep_is_ready_after_its_duration_and_approval_waits_for_resume() -> None:
    sim = Simulation(WAITS)
    nap = sim.step("nap")
    assert nap.status == S.READY and nap.status_message == "Sleeping"
    assert nap.not_before == 1090.0
    assert sim.claimable() == []
    sim.now = 1090.0
    sim.claim(nap)
    assert sim.succeed(nap)
    approve = sim.step("approve")
    assert approve.status == S.RUNNING and approve.lease_owner is None
    assert approve.status_message == "Ship it?"
    assert [e["type"] for e in sim.fx.events] == ["step.succeeded", "step.waiting"]
    assert sim.resume(approve, {"approved": True})
    assert approve.outputs == {"approved": True}
    assert sim.run.status == R.SUCCEEDED
    assert not sim.resume(approve, {})  # once only


def test_resume_refuses_a_step_a_worker_holds() -> None:
    sim = started_chain()
    b = sim.step("b")
    assert not sim.resume(b, {})  # READY
    sim.claim(b)
    assert not sim.resume(b, {})  # under a lease
    assert b.status == S.RUNNING


# -- sub-workflows -------------------------------------------------------------------------


PARENT = """
name: parent
steps:
  - id: deliver
    uses: workflow
    with: {workflow: child, inputs: {files: [a, b]}}
  - id: done
    needs: [deliver]
    uses: python
    with: {function: "demo.steps:noop", id: "${{ steps.deliver.outputs.package }}"}
"""
CHILD = """
name: child
inputs:
  files: {type: array}
steps:
  - id: pack
    uses: python
    with: {function: "demo.steps:pack"}
outputs:
  package: ${{ steps.pack.outputs.id }}
"""


def child_of(parent: Simulation) -> Simulation:
    """The child run the store starts for the parent's request."""
    [request] = parent.fx.children
    child = Simulation(CHILD, inputs=request.inputs, run_id=2)
    child.run.parent_run_id, child.run.parent_step_id = request.run.id, request.step.id
    request.step.child_run_id = child.run.id
    return child


def test_a_workflow_step_asks_for_a_child_run_and_holds_no_worker() -> None:
    parent = Simulation(PARENT)
    deliver = parent.step("deliver")
    assert deliver.status == S.RUNNING and deliver.lease_owner is None
    assert deliver.status_message == "Waiting for sub-workflow child"
    assert parent.run.status == R.RUNNING
    [request] = parent.fx.children
    assert (request.workflow, request.version, request.inputs) == (
        "child",
        None,
        {"files": ["a", "b"]},
    )
    assert request.step is deliver and request.run is parent.run


def test_a_child_run_that_ends_notifies_its_parent_step() -> None:
    parent = Simulation(PARENT)
    child = child_of(parent)
    child.drive(outputs={"pack": {"id": "P-7"}})
    assert child.run.status == R.SUCCEEDED
    [notice] = child.fx.parent_notices
    assert notice.parent_run_id == 1
    assert notice.result == StepResult(
        parent.step("deliver").id, 1, S.SUCCEEDED, outputs={"package": "P-7"}, retryable=False
    )
    assert parent.change(lambda fx: apply_result(parent.graph, notice.result, parent.now, fx))
    assert parent.statuses() == {"deliver": S.SUCCEEDED, "done": S.READY}
    assert parent.step("done").args == {"function": "demo.steps:noop", "id": "P-7"}


def test_a_failed_child_run_fails_its_parent_step_without_retry() -> None:
    parent = Simulation(PARENT)
    child = child_of(parent)
    child.drive(fail=frozenset({"pack"}))
    [notice] = child.fx.parent_notices
    assert notice.result.status == S.FAILED
    assert notice.result.error == {"code": "boom", "message": "boom"}
    assert parent.change(lambda fx: apply_result(parent.graph, notice.result, parent.now, fx))
    assert parent.statuses() == {"deliver": S.FAILED, "done": S.SKIPPED}
    assert parent.run.status == R.FAILED


def test_canceling_a_parent_cancels_its_child_run() -> None:
    parent = Simulation(PARENT)
    deliver = parent.step("deliver")
    deliver.child_run_id = 2
    assert parent.cancel()
    assert parent.fx.cancel_runs == [(2, "Canceled by request")]
    assert parent.run.status == R.CANCELING  # until the child has ended
    assert deliver.status == S.RUNNING
    canceled = StepResult(deliver.id, 1, S.CANCELED, error={"code": "canceled", "message": "x"})
    assert parent.change(lambda fx: apply_result(parent.graph, canceled, parent.now, fx))
    assert parent.run.status == R.CANCELED


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_ends_waiting_steps_at_once_and_asks_running_ones_to_stop() -> None:
    sim = started_chain()
    b = sim.step("b")
    sim.claim(b)
    assert sim.cancel()
    assert sim.run.status == R.CANCELING
    assert sim.run.status_message == "Canceling: Canceled by request"
    assert b.cancel_requested and b.status == S.RUNNING
    assert sim.statuses() == {"a": S.SUCCEEDED, "b": S.RUNNING, "c": S.CANCELED}
    assert not sim.cancel()  # already canceling
    assert sim.fail(b, "stopped")  # a retryable failure is not retried now
    assert b.status == S.FAILED
    assert sim.run.status == R.CANCELED
    assert sim.run.error == {"code": "canceled", "message": "Canceled by request", "step": None}


def test_cancel_of_a_run_with_nothing_running_ends_it_at_once() -> None:
    sim = Simulation(CHAIN)
    assert sim.cancel()
    assert sim.statuses() == {"a": S.CANCELED, "b": S.CANCELED, "c": S.CANCELED}
    assert sim.run.status == R.CANCELED
    assert sim.run.finished_steps == 3


def test_a_run_past_its_deadline_ends_timed_out() -> None:
    sim = started_chain()
    assert sim.cancel(reason="run exceeded its timeout", code="run_timeout")
    assert sim.run.status == R.TIMED_OUT
    assert sim.run.status_message == "Timed out"


def test_cancel_of_a_foreach_cancels_its_waiting_items_and_the_foreach() -> None:
    sim = Simulation(FOREACH)
    first, second, third = sim.graph.children(sim.step("each"))
    sim.claim(first)
    assert sim.cancel()
    assert (first.status, second.status, third.status) == (S.RUNNING, S.CANCELED, S.CANCELED)
    assert sim.step("each").status == S.RUNNING
    assert sim.report(first, S.CANCELED, error={"code": "canceled", "message": "canceled"})
    assert sim.step("each").status == S.CANCELED
    assert sim.run.status == R.CANCELED


def test_an_ended_run_cannot_be_canceled() -> None:
    sim = started_chain()
    sim.drive(outputs={"b": {"text": "HI ADA"}})
    assert not sim.cancel()
    assert sim.run.status == R.SUCCEEDED


# -- retry of a failed run -------------------------------------------------------------------


def test_retry_runs_a_failed_run_again_from_its_failed_steps() -> None:
    sim = started_chain()
    sim.drive(fail=frozenset({"b"}))
    assert sim.statuses() == {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.SKIPPED}
    a_outputs = sim.step("a").outputs
    assert sim.retry()
    assert sim.run.status == R.RUNNING
    assert sim.run.status_message == "Retrying from failed steps"
    assert sim.run.error is None and sim.run.finished_at is None
    assert sim.run.finished_steps == 1
    b = sim.step("b")
    assert sim.statuses() == {"a": S.SUCCEEDED, "b": S.READY, "c": S.PENDING}
    assert (b.attempt, b.error, b.lease_losses) == (0, None, 0)
    assert sim.step("a").outputs == a_outputs
    sim.drive(outputs={"b": {"text": "HI ADA"}})
    assert sim.run.status == R.SUCCEEDED


def test_retry_makes_a_failed_foreach_anew() -> None:
    sim = Simulation(FOREACH)
    sim.drive(fail=frozenset({"each[1]"}))
    old_items = sim.graph.children(sim.step("each"))
    assert sim.retry()
    assert sorted(s.key for s in sim.fx.removed_steps) == ["each[0]", "each[1]", "each[2]"]
    new_items = sim.graph.children(sim.step("each"))
    assert [s.key for s in new_items] == ["each[0]", "each[1]", "each[2]"]
    assert not {s.id for s in new_items} & {s.id for s in old_items}
    sim.drive(outputs={"each[0]": {"f": "mp4"}})
    assert sim.run.status == R.SUCCEEDED


@pytest.mark.parametrize("end", ["succeed", "cancel"])
def test_only_a_failed_or_timed_out_run_can_be_retried(end: str) -> None:
    sim = started_chain()
    if end == "succeed":
        sim.drive(outputs={"b": {"text": "HI ADA"}})
    else:
        sim.cancel()
    status = sim.run.status
    assert not sim.retry()
    assert sim.run.status == status
    running = started_chain()
    assert not running.retry()
