"""Helpers for tests: apply a workflow, start it, wait for the end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from legato.model.starts import StartRun
from legato.model.states import RUN_TERMINAL
from legato.runtime import Legato
from legato.service.principal import Principal

ADMIN_KEY = "lg_test_admin_key_0123456789"


async def admin(legato: Legato) -> Principal:
    return await legato.tenancy.authenticate(ADMIN_KEY)


async def apply(legato: Legato, source: str) -> dict[str, Any]:
    view, _ = await legato.workflows.apply(await admin(legato), source)
    return view


async def start(legato: Legato, workflow: str, **inputs: Any) -> dict[str, Any]:
    view, _ = await legato.runs.start(await admin(legato), StartRun(workflow, inputs=inputs))
    return view


async def wait_for(
    legato: Legato,
    run_id: int,
    timeout: float = 20.0,
    statuses: frozenset[str] | set[str] = RUN_TERMINAL,
) -> dict[str, Any]:
    p = await admin(legato)
    deadline = time.monotonic() + timeout
    while True:
        run = await legato.runs.get(p, run_id)
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']}: {run}")
        await legato.runs.wait_for_change(run_id, 0.2)


async def run_workflow(
    legato: Legato, source: str, timeout: float = 20.0, **inputs: Any
) -> dict[str, Any]:
    wf = await apply(legato, source)
    run = await start(legato, wf["name"], **inputs)
    return await wait_for(legato, run["id"], timeout)


def steps_by_key(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in run["steps"]}


async def sleep_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
