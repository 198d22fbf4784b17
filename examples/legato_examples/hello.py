"""Steps of the ``hello`` example."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.engine.context import StepContext

__all__ = ["greet"]


def greet(name: str, ctx: StepContext) -> dict[str, str]:
    """Greet ``name``: logs a line and answers ``{"greeting": "Hello, <name>!"}``."""
    who = name.strip()
    if not who:
        raise ValueError("name must not be empty")
    ctx.log.info("Greeting %s", who)
    return {"greeting": f"Hello, {who}!"}
