"""``legato run``: start, watch, list, read logs of, cancel and delete runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from legato.cli import views
from legato.cli.common import emit_json, fail, open_client, out, settings_of
from legato.client import Client, Run

__all__ = ["POLL_INTERVAL", "app", "parse_inputs", "parse_labels"]

app = typer.Typer(help="Runs of workflows.", no_args_is_help=True)

POLL_INTERVAL = 0.2
"""Seconds between status reads while waiting for a run."""

RunIdArg = Annotated[str, typer.Argument(help="Run id or UUID.", metavar="RUN_ID")]


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint=option)
    return key.strip(), value


def parse_inputs(pairs: list[str] | None, input_file: Path | None = None) -> dict[str, Any]:
    """Inputs from a JSON file, overridden by ``key=value`` pairs.

    A value is taken as JSON when it parses (``3``, ``true``, ``[1,2]``, ``{"a":1}``, ``"x"``),
    else as the string it is.
    """
    inputs: dict[str, Any] = {}
    if input_file is not None:
        try:
            loaded = json.loads(input_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--input-file") from exc
        if not isinstance(loaded, dict):
            raise typer.BadParameter("must hold a JSON object", param_hint="--input-file")
        inputs.update(loaded)
    for pair in pairs or []:
        key, raw = _pair(pair, "-i/--input")
        try:
            inputs[key] = json.loads(raw)
        except ValueError:
            inputs[key] = raw
    return inputs


def parse_labels(pairs: list[str] | None) -> dict[str, str]:
    return dict(_pair(pair, "--label") for pair in pairs or [])


def _show_final(run: Run) -> None:
    console = out()
    console.print(views.run_summary(run))
    console.print()
    console.print(views.step_table(run.steps))
    console.print()
    console.print(Text("Outputs", style="bold"))
    console.print(views.outputs_view(run.outputs))


def _wait(client: Client, run: Run, live_view: bool) -> Run:
    if not live_view:
        return client.wait(run.id, poll_interval=POLL_INTERVAL)
    with Live(views.live_view(run), console=out(), refresh_per_second=10, transient=True) as live:
        return client.wait(
            run.id,
            poll_interval=POLL_INTERVAL,
            on_update=lambda current: live.update(views.live_view(current)),
        )


@app.command("start")
def start(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow name.", metavar="NAME")],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="Input KEY=VALUE (VALUE parsed as JSON if it can be)."),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("--input-file", help="JSON object of inputs.", exists=True, dir_okay=False),
    ] = None,
    labels: Annotated[list[str] | None, typer.Option("--label", help="Label KEY=VALUE.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first.")] = 0,
    version: Annotated[
        int | None, typer.Option("--version", help="Workflow version (default: latest).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Watch the run until it ends.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Start at most one run per key.")
    ] = None,
    external_id: Annotated[
        str | None, typer.Option("--external-id", help="Your own id for the run.")
    ] = None,
    notify_url: Annotated[
        str | None, typer.Option("--notify-url", help="Webhook called when the run ends.")
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option("--start-at", help="Start later: ISO 8601 (UTC unless it has an offset)."),
    ] = None,
) -> None:
    """Start a run; with --wait, show its steps live and exit 0 only if it SUCCEEDED."""
    settings = settings_of(ctx)
    body = parse_inputs(inputs, input_file)
    with open_client(ctx) as client:
        run = client.start_run(
            workflow,
            body,
            version=version,
            labels=parse_labels(labels) or None,
            priority=priority,
            external_id=external_id,
            notify_url=notify_url,
            idempotency_key=idempotency_key,
            start_at=start_at,
        )
        if not wait:
            if settings.json:
                emit_json(run.raw)
            else:
                out().print(
                    Text.assemble(
                        "Started run ",
                        (str(run.id), "bold"),
                        f" ({run.uuid}) of {run.workflow}: ",
                        views.status_text(run.status),
                    )
                )
            return
        try:
            run = _wait(client, run, live_view=not settings.json and out().is_terminal)
        except KeyboardInterrupt:
            raise fail(
                f"Stopped watching; run {run.id} goes on (`legato run cancel {run.id}` stops it).",
                130,
            ) from None
    if settings.json:
        emit_json(run.raw)
    else:
        _show_final(run)
    raise typer.Exit(0 if run.status == "SUCCEEDED" else 1)


@app.command("status")
def status(ctx: typer.Context, run_id: RunIdArg) -> None:
    """Where a run stands: summary, progress, counts by status and its steps."""
    with open_client(ctx) as client:
        run = client.get_run(run_id)
    if settings_of(ctx).json:
        emit_json(run.raw)
        return
    console = out()
    console.print(views.run_summary(run))
    console.print()
    console.print(views.step_table(run.steps))
    if run.is_terminal and run.outputs:
        console.print()
        console.print(Text("Outputs", style="bold"))
        console.print(views.outputs_view(run.outputs))


@app.command("watch")
def watch(ctx: typer.Context, run_id: RunIdArg) -> None:
    """Follow a run live until it ends; exit code 0 only if it succeeded."""
    with open_client(ctx) as client:
        run = _wait(client, client.get_run(run_id), out().is_terminal and not settings_of(ctx).json)
    if settings_of(ctx).json:
        emit_json(run.raw)
    else:
        _show_final(run)
    raise typer.Exit(0 if run.status == "SUCCEEDED" else 1)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="e.g. RUNNING.")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Workflow name.")] = None,
    labels: Annotated[list[str] | None, typer.Option("--label", help="KEY=VALUE.")] = None,
    created_after: Annotated[
        str | None, typer.Option("--created-after", help="ISO 8601 time.")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--created-before", help="ISO 8601 time.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
) -> None:
    """Runs, newest first, with filters."""
    with open_client(ctx) as client:
        runs: list[Run] = []
        for run in client.iter_runs(
            status=status,
            workflow=workflow,
            label=parse_labels(labels) or None,
            created_after=created_after,
            created_before=created_before,
            page_size=min(limit, 100),
        ):
            runs.append(run)
            if len(runs) >= limit:
                break
    if settings_of(ctx).json:
        emit_json([r.raw for r in runs])
    else:
        out().print(views.run_table(runs))


@app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: RunIdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    step: Annotated[str | None, typer.Option("--step", help="Only this step's lines.")] = None,
    after: Annotated[int | None, typer.Option("--after", help="Only lines after this seq.")] = None,
) -> None:
    """Print log lines: time, level, step#attempt and message."""
    as_json = settings_of(ctx).json
    console = out()
    with open_client(ctx) as client:
        lines = (
            client.follow_logs(run_id, step, after) if follow else client.logs(run_id, step, after)
        )
        try:
            for line in lines:
                if as_json:
                    typer.echo(json.dumps(line.raw, ensure_ascii=False))
                else:
                    console.print(views.log_text(line), soft_wrap=True)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


@app.command("events")
def events(ctx: typer.Context, run_id: RunIdArg) -> None:
    """The run's history of state changes, in order."""
    with open_client(ctx) as client:
        history = client.events(run_id)
    if settings_of(ctx).json:
        emit_json([e.raw for e in history])
        return
    console = out()
    for event in history:
        text = Text(views.format_time(event.time, millis=True), style="dim")
        text.append(f" {event.type}")
        if event.step:
            text.append(f" [{event.step}]", style="cyan")
        if event.status:
            text.append(" ")
            text.append_text(views.status_text(event.status))
        if event.message:
            text.append(f" {event.message}")
        console.print(text, soft_wrap=True)


@app.command("cancel")
def cancel(ctx: typer.Context, run_id: RunIdArg) -> None:
    """Ask a run to stop; running steps see the request, waiting ones are canceled at once."""
    with open_client(ctx) as client:
        run = client.cancel_run(run_id)
    if settings_of(ctx).json:
        emit_json(run.raw)
    else:
        out().print(Text.assemble(f"Run {run.id}: ", views.status_text(run.status)))


@app.command("delete")
def delete(ctx: typer.Context, run_id: RunIdArg) -> None:
    """Delete a finished run with its steps, logs and events."""
    with open_client(ctx) as client:
        client.delete_run(run_id)
    if settings_of(ctx).json:
        emit_json({"deleted": run_id})
    else:
        out().print(f"Deleted run {run_id}")
