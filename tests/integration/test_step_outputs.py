"""Step outputs the store could not keep fail their step (``bad_outputs``), and the worker
goes on with the next runs."""

from __future__ import annotations

import json

import pytest
from helpers import run_workflow, steps_by_key

from legato.runtime import Legato


def printing(line: str) -> str:
    """A definition whose one shell step prints ``line`` (JSON is YAML too)."""
    step = {"id": "emit", "uses": "shell", "with": {"argv": ["printf", "%s\\n", line]}}
    return json.dumps({"name": "outputs", "steps": [step]})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"n": 18446744073709551616}', "outputs.n: integers must fit in 64 bits"),
        ('{"t": "\\ud800"}', "outputs.t: text holds a lone surrogate, not valid Unicode"),
        ('{"d": ' + "[" * 70 + "]" * 70 + "}", "nested deeper than 64 levels"),
    ],
)
async def test_outputs_no_store_can_keep_fail_the_step(
    engine: Legato, line: str, message: str
) -> None:
    run = await run_workflow(engine, printing(line))
    assert run["status"] == "FAILED", run
    step = steps_by_key(run)["emit"]
    assert step["status"] == "FAILED"
    assert step["error"]["code"] == "bad_outputs", step["error"]
    assert message in step["error"]["message"], step["error"]
    fine = await run_workflow(engine, printing('{"n": 9223372036854775807}'))
    assert fine["status"] == "SUCCEEDED", fine
    assert steps_by_key(fine)["emit"]["outputs"] == {"n": 2**63 - 1}
