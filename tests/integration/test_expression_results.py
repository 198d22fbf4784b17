"""An expression whose result JSON cannot carry fails its step as ``bad_expression``; the
start that evaluates it answers (the other such results: tests/unit)."""

from __future__ import annotations

import pytest
from helpers import run_workflow

from legato.runtime import Legato


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("range", "the result is a function, not data"),
        ("(1 if 0.__class__ else 2)", "not allowed: access to attribute '__class__'"),
    ],
)
async def test_a_result_that_is_no_data_fails_the_step(
    engine: Legato, expression: str, detail: str
) -> None:
    source = f"""
name: no-data
steps:
  - id: first
    uses: python
    with: {{function: "demo_steps:add", a: "${{{{ {expression} }}}}", b: 1}}
"""
    run = await run_workflow(engine, source)
    assert run["status"] == "FAILED"
    step = run["steps"][0]
    assert (step["status"], step["error"]["code"]) == ("FAILED", "bad_expression")
    assert detail in step["error"]["message"]
    assert step["started_at"] is None
