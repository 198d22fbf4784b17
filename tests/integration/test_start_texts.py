"""Text no store can keep alike (a NUL, a lone surrogate) is refused at the start, whatever
face the start came through."""

from __future__ import annotations

import pytest
from helpers import admin, apply

from legato.model.errors import InvalidInput
from legato.model.starts import StartRun
from legato.runtime import Legato

ONE = """
name: one
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
"""


async def test_a_nul_in_what_a_start_names_is_refused_on_every_store(legato: Legato) -> None:
    """Whatever face a start comes through (a dialect's form field, say), text no store can
    keep alike is refused with its path, never a 500."""
    p = await admin(legato)
    await apply(legato, ONE)
    for req in (
        StartRun("one", labels={"name": "a\x00b"}),
        StartRun("one", requestor="\x00"),
        StartRun("one", external_id="x\x00"),
    ):
        with pytest.raises(InvalidInput) as refused:
            await legato.runs.start(p, req)
        assert refused.value.code == "invalid_text"
        assert refused.value.errors[0]["path"] in ("labels.name", "requestor", "external_id")
