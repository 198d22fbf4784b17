"""A step whose worker dies is taken over a configurable number of times (apart from its retry
policy); once more and the step fails with ``lease_lost_too_often``. Workers are "killed" here
by claiming steps with leases that have already lapsed, which is what the reaper sees of a
worker that died."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import admin, apply, start, steps_by_key
from pydantic import ValidationError

from legato.engine.claims import claim
from legato.engine.reaper import Reaper
from legato.model.records import StepResult
from legato.model.states import StepStatus
from legato.runtime import Legato, login_policy
from legato.settings import Settings

FAILING = """\
name: fragile
steps:
  - id: work
    uses: python
    with: {function: "demo_steps:fail"}
    retry: {attempts: 2, backoff: fixed, initial: 0s}
"""


async def _lose_worker(legato: Legato, reaper: Reaper) -> None:
    """A worker claims the step and dies: its lease lapses, the reaper takes the step over."""
    claimed = await claim(legato.db, "ghost", 10, lease_seconds=-1.0)
    assert len(claimed) == 1, claimed
    assert await reaper.sweep() == 1


async def _step(legato: Legato, run_id: int) -> dict[str, Any]:
    view = await legato.runs.get(await admin(legato), run_id)
    return steps_by_key(view)["work"]


async def test_the_takeover_limit_is_apart_from_retries(legato: Legato) -> None:
    await apply(legato, FAILING)
    run = await start(legato, "fragile")
    reaper = Reaper(legato.db, legato.transitions, max_takeovers=2)
    for attempt in (1, 2):
        await _lose_worker(legato, reaper)
        step = await _step(legato, run["id"])
        assert (step["status"], step["attempt"]) == ("READY", attempt)
    # the retry policy's two tries are still whole: a real failure is tried again
    claimed = await claim(legato.db, "worker", 10, lease_seconds=30.0)
    failure = {"code": "step_failed", "message": "boom"}
    await legato.transitions.complete(
        [StepResult(claimed[0].id, 3, StepStatus.FAILED, error=failure, worker="worker")],
        [run["id"]],
    )
    step = await _step(legato, run["id"])
    assert (step["status"], step["attempt"]) == ("READY", 3)
    claimed = await claim(legato.db, "worker", 10, lease_seconds=30.0)
    await legato.transitions.complete(
        [StepResult(claimed[0].id, 4, StepStatus.FAILED, error=failure, worker="worker")],
        [run["id"]],
    )
    step = await _step(legato, run["id"])
    assert (step["status"], step["error"]) == ("FAILED", failure)


async def test_a_step_lost_once_too_often_fails_with_a_clear_error(legato: Legato) -> None:
    await apply(legato, FAILING)
    run = await start(legato, "fragile")
    reaper = Reaper(legato.db, legato.transitions, max_takeovers=2)
    for _ in range(3):
        await _lose_worker(legato, reaper)
    view = await legato.runs.get(await admin(legato), run["id"])
    assert view["status"] == "FAILED"
    step = steps_by_key(view)["work"]
    assert step["status"] == "FAILED"
    assert step["error"] == {
        "code": "lease_lost_too_often",
        "message": "the step's worker was lost 3 times; it is taken over at most 2 times "
        "(LEGATO_MAX_TAKEOVERS). Last: worker ghost stopped responding",
    }
    events = await legato.runs.events(await admin(legato), run["id"])
    failed = [e for e in events if e["type"] == "step.failed"]
    assert [e["data"]["error"]["code"] for e in failed] == ["lease_lost_too_often"]


async def test_by_default_a_step_survives_more_than_two_lost_workers(legato: Legato) -> None:
    await apply(legato, FAILING)
    run = await start(legato, "fragile")
    reaper = Reaper(legato.db, legato.transitions, max_takeovers=legato.settings.max_takeovers)
    for attempt in range(1, 6):  # five take-overs by default
        await _lose_worker(legato, reaper)
        step = await _step(legato, run["id"])
        assert (step["status"], step["attempt"]) == ("READY", attempt)
    await _lose_worker(legato, reaper)
    step = await _step(legato, run["id"])
    assert (step["status"], step["error"]["code"]) == ("FAILED", "lease_lost_too_often")


def test_the_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_takeovers == 5
    monkeypatch.setenv("LEGATO_MAX_TAKEOVERS", "7")
    monkeypatch.setenv("LEGATO_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("LEGATO_LOGIN_LOCKOUT_SECONDS", "2.5")
    assert Settings().max_takeovers == 7
    login = login_policy(Settings())
    assert (login.max_user_failures, login.lockout_seconds) == (3, 2.5)
    for bad in ("x", "0", "-1", "1.5"):
        monkeypatch.setenv("LEGATO_MAX_TAKEOVERS", bad)
        with pytest.raises(ValidationError, match="max_takeovers"):
            Settings()
