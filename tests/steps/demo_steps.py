"""Python steps used by the tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def noop() -> None:
    return None


def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


def echo(ctx: Any, **values: Any) -> dict[str, Any]:
    ctx.log.info("echo %s", values)
    return dict(values)


def flaky(ctx: Any, counter_file: str, succeed_on: int) -> dict[str, Any]:
    """Fails until its ``succeed_on``-th call; records the time of every call."""
    path = Path(counter_file)
    calls = path.read_text().splitlines() if path.exists() else []
    calls.append(repr(time.time()))
    path.write_text("\n".join(calls))
    if len(calls) < succeed_on:
        raise RuntimeError(f"attempt {len(calls)} fails on purpose")
    return {"attempts": len(calls)}


def slow(seconds: float) -> dict[str, float]:
    time.sleep(seconds)
    return {"slept": seconds}


def report(ctx: Any) -> dict[str, str]:
    ctx.progress(0.5, "half way")
    ctx.set_var("color", "blue")
    ctx.add_resource("bucket", "b-1", "CREATED", {"region": "eu"})
    ctx.log.warning("careful")
    return {"ok": "yes"}


def fail() -> None:
    raise ValueError("broken on purpose")


def crash_target(ctx: Any, marker: str, seconds: float) -> dict[str, int]:
    """Marks that an attempt started, then works long enough to be killed mid-step."""
    with Path(marker).open("a") as f:
        f.write(f"{ctx.attempt}\n")
    time.sleep(seconds if ctx.attempt == 1 else 0.05)
    return {"attempt": ctx.attempt}


def fail_unless(flag: str) -> dict[str, bool]:
    """Fails until the file ``flag`` exists."""
    if not Path(flag).exists():
        raise RuntimeError("flag is not set")
    return {"ok": True}


def stamp() -> dict[str, float]:
    return {"at": time.time()}
