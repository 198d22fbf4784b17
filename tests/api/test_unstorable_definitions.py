"""Definitions holding what the store cannot keep (integers beyond 64 bits, NUL characters,
binary values, dates that do not exist) are refused with their path and line, on both stores,
instead of failing as the definition is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apikit import YAML, assert_problem

SOURCE = """name: unstorable
steps:
  - id: a
    uses: python
    with:
      function: "legato_examples.hello:greet"
      name: VALUE
"""


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            str(2**64),
            {
                "path": "steps[0].with.name",
                "line": 7,
                "message": "integer out of range (at most 64 bits)",
                "code": "invalid",
            },
        ),
        (
            '"a\\0b"',
            {
                "path": "steps[0].with.name",
                "line": 7,
                "message": "NUL characters and lone surrogates are not allowed",
                "code": "invalid",
            },
        ),
        (
            "!!binary /w==",
            {
                "path": "",
                "line": 7,
                "message": "invalid YAML: binary values (!!binary) are not allowed",
                "code": "syntax",
            },
        ),
        (
            "2026-02-30",
            {
                "path": "",
                "line": 7,
                "message": "invalid YAML: invalid value '2026-02-30': "
                "day is out of range for month",
                "code": "syntax",
            },
        ),
    ],
)
async def test_what_cannot_be_stored_is_a_located_problem(
    api: httpx.AsyncClient, value: str, error: dict[str, Any]
) -> None:
    source = SOURCE.replace("VALUE", value)
    r = await api.put("/api/v1/workflows/unstorable", content=source, headers=YAML)
    body = assert_problem(r, 422, "invalid_definition")
    assert body["errors"] == [error]
    r = await api.get("/api/v1/workflows/unstorable")
    assert_problem(r, 404, "workflow_not_found")
