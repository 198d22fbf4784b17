"""``uses: python`` — call ``module:function`` with the step's ``with`` values, if the step's
namespace may call it (``legato.model.step_modules``): checked before the module is imported,
and the function found must belong to an allowed module too (not one it imported)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from legato.engine.context import StepContext
from legato.engine.kinds.errors import StepFailure
from legato.engine.step_threads import StepThreads
from legato.model.step_modules import ModulePolicy

__all__ = ["load_function", "run_python", "set_thread_pool"]

_pool: StepThreads | None = None
NOT_ALLOWED = "function_not_allowed"


def set_thread_pool(pool: StepThreads) -> None:
    """Sync functions run on this pool (sized to the worker's concurrency)."""
    global _pool
    _pool = pool


@cache
def _import(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StepFailure(
            "import_error", f"cannot import {module_name!r}: {exc}", retryable=False
        ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise StepFailure(
            "import_error", f"{module_name!r} has no function {attr!r}", retryable=False
        )
    return fn  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def load_function(path: str, policy: ModulePolicy) -> Callable[..., Any]:
    """The function ``path`` names, if ``policy`` lets steps call it (answers are kept per
    function and policy: a changed policy is another policy; a refusal is not kept)."""
    refusal = policy.refusal(path)
    if refusal is not None:
        raise StepFailure(NOT_ALLOWED, refusal, retryable=False)
    fn = _import(path)
    owner = getattr(fn, "__module__", None)
    if not isinstance(owner, str) or not policy.allows_module(owner):
        raise StepFailure(
            NOT_ALLOWED,
            f"{path!r} belongs to module {owner!r}, which is not an allowed step module",
            retryable=False,
        )
    return fn


@cache
def _wants_ctx(fn: Callable[..., Any]) -> bool:
    return "ctx" in inspect.signature(fn).parameters


async def run_python(ctx: StepContext, args: dict[str, Any]) -> dict[str, Any]:
    fn = load_function(str(args["function"]), ctx.modules)
    kwargs = {k: v for k, v in args.items() if k != "function"}
    if _wants_ctx(fn):
        kwargs["ctx"] = ctx
    if inspect.iscoroutinefunction(fn):
        result = await fn(**kwargs)
    elif _pool is not None:
        result = await _pool.run(lambda: fn(**kwargs))
    else:
        result = await asyncio.get_running_loop().run_in_executor(None, lambda: fn(**kwargs))
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    return {"result": result}
