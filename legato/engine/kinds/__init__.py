"""Step kinds that run on a worker, one module each; more register through the
``legato.steps`` entry-point group (a callable ``async (ctx, args) -> outputs``; an entry
naming a module without a callable registers a step module for ``uses: python`` instead)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Any

from legato.engine.context import StepContext
from legato.engine.kinds.errors import StepFailure
from legato.engine.kinds.http import run_http
from legato.engine.kinds.python import run_python
from legato.engine.kinds.shell import run_shell

__all__ = ["Runner", "StepFailure", "runner_for"]

Runner = Callable[[StepContext, dict[str, Any]], Awaitable[dict[str, Any]]]


async def _run_sleep(_ctx: StepContext, _args: dict[str, Any]) -> dict[str, Any]:
    return {}  # the wait happened before the claim (``not_before``); nothing holds a worker


_BUILTIN: dict[str, Runner] = {
    "python": run_python,
    "shell": run_shell,
    "http": run_http,
    "sleep": _run_sleep,
}


def runner_for(kind: str) -> Runner | None:
    runner = _BUILTIN.get(kind)
    if runner is None:
        for ep in entry_points(group="legato.steps", name=kind):
            if not ep.attr:
                continue  # a step module (for ``uses: python``), not a kind
            runner = ep.load()
            _BUILTIN[kind] = runner
    return runner
