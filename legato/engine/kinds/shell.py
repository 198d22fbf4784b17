"""``uses: shell`` — run an argv list (never a shell string) and stream its output as logs.

Workflow commands on stdout, as CI systems have them: ``::progress 0.4 transcoding``,
``::var name=value``, ``::resource TYPE ID ACTION``. A JSON object on the last stdout line
becomes the step's outputs. Cancel and timeout send SIGTERM to the process group, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

from legato.engine.context import StepContext
from legato.engine.kinds.errors import StepFailure
from legato.model.durations import parse_duration

__all__ = ["INHERITED_VARIABLES", "KILL_GRACE_SECONDS", "run_shell", "step_environment"]

KILL_GRACE_SECONDS = 5.0
#: What a shell step inherits of the worker's environment (plus ``LC_*``): enough to find
#: programs and speak the locale, nothing of the installation's settings or secrets.
INHERITED_VARIABLES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}
)


def step_environment(ctx: StepContext, args: dict[str, Any]) -> dict[str, str]:
    """The environment of a shell step: the allow-listed variables, the step's ``env``, and
    the variables that name the run, step and attempt."""
    inherited = {
        k: v for k, v in os.environ.items() if k in INHERITED_VARIABLES or k.startswith("LC_")
    }
    return {
        **inherited,
        **{k: str(v) for k, v in (args.get("env") or {}).items()},
        "LEGATO_RUN_ID": str(ctx.run_id),
        "LEGATO_STEP": ctx.step_key,
        "LEGATO_ATTEMPT": str(ctx.attempt),
        "LEGATO_IDEMPOTENCY_KEY": ctx.idempotency_key,
    }


def _command(ctx: StepContext, line: str) -> bool:
    """Handle a ``::`` workflow command; False when the line is ordinary output."""
    if not line.startswith("::"):
        return False
    name, _, rest = line[2:].partition(" ")
    try:
        if name == "progress":
            fraction, _, details = rest.partition(" ")
            ctx.progress(float(fraction), details or None)
        elif name == "var":
            key, _, value = rest.partition("=")
            try:
                parsed: Any = json.loads(value)
            except ValueError:
                parsed = value
            ctx.set_var(key.strip(), parsed)
        elif name == "resource":
            parts = rest.split(maxsplit=2)
            ctx.add_resource(parts[0], parts[1], parts[2] if len(parts) > 2 else "CREATED")
        else:
            return False
    except (ValueError, IndexError):
        ctx.log.warning("malformed workflow command: %s", line)
    return True


async def _pump(
    stream: asyncio.StreamReader, ctx: StepContext, level: str, last: list[str]
) -> None:
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip("\r\n")
        if level == "INFO" and _command(ctx, line):
            continue
        if line.strip():
            last[:] = [line]
        ctx.log._emit(level, line)


async def _terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def _grace(args: dict[str, Any]) -> float:
    value = args.get("kill_grace")
    return KILL_GRACE_SECONDS if value is None else parse_duration(value)


async def run_shell(ctx: StepContext, args: dict[str, Any]) -> dict[str, Any]:
    argv = [str(a) for a in args["argv"]]
    env = step_environment(ctx, args)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=args.get("cwd"),
            env=env,
            start_new_session=True,  # its own process group, so kills reach grandchildren
        )
    except OSError as exc:
        raise StepFailure(
            "exec_error", f"cannot run {argv[0]!r}: {exc.strerror or exc}", retryable=False
        ) from exc
    assert proc.stdout is not None and proc.stderr is not None
    last_out: list[str] = []
    last_err: list[str] = []
    pumps: asyncio.Future[Any] = asyncio.gather(
        _pump(proc.stdout, ctx, "INFO", last_out), _pump(proc.stderr, ctx, "ERROR", last_err)
    )
    cancel_watch: asyncio.Future[Any] = asyncio.ensure_future(ctx.cancel_requested.wait())
    try:
        done, _ = await asyncio.wait({pumps, cancel_watch}, return_when=asyncio.FIRST_COMPLETED)
        if cancel_watch in done:
            ctx.log.warning("cancel requested: sending SIGTERM to %s", argv[0])
            await _terminate(proc, _grace(args))
            raise StepFailure("canceled", "canceled while running", retryable=False)
        code = await proc.wait()
    finally:
        if proc.returncode is None:  # timeout or worker shutdown: no orphans
            await _terminate(proc, _grace(args))
        cancel_watch.cancel()
        with contextlib.suppress(BaseException):
            await pumps
    if code != 0:
        detail = last_err[0] if last_err else (last_out[0] if last_out else "")
        raise StepFailure(
            "exit_code", f"{argv[0]} exited with code {code}" + (f": {detail}" if detail else "")
        )
    if last_out:
        with contextlib.suppress(ValueError):
            value = json.loads(last_out[0])
            if isinstance(value, dict):
                return value
    return {}
