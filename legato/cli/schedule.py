"""``legato schedule``: runs that start themselves on a clock."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from legato.cli.common import emit_json, err, fail, open_client, out, settings_of
from legato.cli.views import format_time
from legato.client import Schedule

__all__ = ["app"]

app = typer.Typer(help="Schedules: runs that start themselves.", no_args_is_help=True)


class Overlap(StrEnum):
    skip = "skip"
    allow = "allow"
    buffer_one = "buffer_one"
    cancel_previous = "cancel_previous"


class Catchup(StrEnum):
    all = "all"
    latest = "latest"


def _pairs(items: list[str], what: str) -> dict[str, Any]:
    """``key=value`` options; a value that reads as JSON is taken as JSON."""
    out_: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"{what} {item!r} must look like key=value")
        try:
            out_[key] = json.loads(value)
        except ValueError:
            out_[key] = value
    return out_


def _when(s: Schedule) -> str:
    if s.cron:
        return f"{s.cron} ({s.timezone})"
    return f"every {s.raw.get('every')}s"


def _show(s: Schedule) -> None:
    console = out()
    console.print(Text(f"{s.name}  (id {s.id})", style="bold"))
    console.print(f"workflow   {s.workflow}" + (f" v{s.version}" if s.version else ""))
    console.print(f"when       {_when(s)}")
    console.print(f"state      {s.state}" + (f" — {s.raw['note']}" if s.raw.get("note") else ""))
    console.print(
        f"overlap    {s.overlap}   catch-up {s.raw.get('catchup')}s ({s.raw.get('catchup_policy')})"
    )
    counts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
    console.print(f"counts     {counts}")
    if s.next_fire_times:
        console.print("next       " + ", ".join(format_time(t) for t in s.next_fire_times))
    if s.recent_fires:
        table = Table(show_edge=False, pad_edge=False, title="latest fires", title_justify="left")
        table.add_column("Fire time", no_wrap=True)
        table.add_column("Outcome", no_wrap=True)
        table.add_column("Run", justify="right")
        table.add_column("Why")
        for f in s.recent_fires:
            table.add_row(
                format_time(f.fire_time),
                f.outcome + (" (manual)" if f.manual else ""),
                str(f.run_id or ""),
                f.message or "",
            )
        console.print(table)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique in the namespace.")],
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="The workflow it starts.")],
    cron: Annotated[
        str | None, typer.Option("--cron", help="'30 2 * * *', 6 fields with seconds, @hourly…")
    ] = None,
    every: Annotated[str | None, typer.Option("--every", help="An interval: 15m, 1h.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", "--tz", help="IANA zone.")] = "UTC",
    inputs: Annotated[
        list[str], typer.Option("--input", "-i", help="name=value (JSON where it parses)")
    ] = [],  # noqa: B006
    labels: Annotated[list[str], typer.Option("--label", "-l", help="key=value")] = [],  # noqa: B006
    overlap: Annotated[Overlap, typer.Option("--overlap")] = Overlap.skip,
    catchup: Annotated[str, typer.Option("--catchup", help="How late a fire may start.")] = "1m",
    catchup_policy: Annotated[Catchup, typer.Option("--catchup-policy")] = Catchup.all,
    start_at: Annotated[str | None, typer.Option("--start-at")] = None,
    end_at: Annotated[str | None, typer.Option("--end-at")] = None,
    jitter: Annotated[str, typer.Option("--jitter")] = "0",
    version: Annotated[int | None, typer.Option("--version", help="Pin a version.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a schedule (give --cron or --every)."""
    body: dict[str, Any] = {
        "name": name,
        "workflow": workflow,
        "timezone": timezone,
        "inputs": _pairs(inputs, "input"),
        "labels": {k: str(v) for k, v in _pairs(labels, "label").items()},
        "overlap": overlap.value,
        "catchup": catchup,
        "catchup_policy": catchup_policy.value,
        "jitter": jitter,
        "paused": paused,
    }
    for key, value in (
        ("cron", cron),
        ("every", every),
        ("start_at", start_at),
        ("end_at", end_at),
        ("version", version),
    ):
        if value is not None:
            body[key] = value
    with open_client(ctx) as client:
        s = client.create_schedule(**body)
    if settings_of(ctx).json:
        emit_json(s.raw)
        return
    _show(s)


@app.command("list")
def list_(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
) -> None:
    """The namespace's schedules and when each fires next."""
    with open_client(ctx) as client:
        schedules = client.list_schedules(workflow)
    if settings_of(ctx).json:
        emit_json([s.raw for s in schedules])
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("Id", "Name", "Workflow", "When", "State", "Next fire", "Started"):
        table.add_column(column, no_wrap=column != "When")
    for s in schedules:
        table.add_row(
            str(s.id),
            s.name,
            s.workflow,
            _when(s),
            s.state,
            format_time(s.next_fire_times[0]) if s.next_fire_times else "",
            str(s.counts.get("started", 0)),
        )
    out().print(table)


Ref = Annotated[str, typer.Argument(metavar="SCHEDULE", help="Its name or id.")]


@app.command("get")
def get(ctx: typer.Context, ref: Ref) -> None:
    """A schedule: its next fire times, latest fires (with their runs) and counts."""
    with open_client(ctx) as client:
        s = client.get_schedule(ref)
    if settings_of(ctx).json:
        emit_json(s.raw)
        return
    _show(s)


@app.command("next")
def next_(
    ctx: typer.Context,
    ref: Ref,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=100)] = 10,
) -> None:
    """The next fire times."""
    with open_client(ctx) as client:
        times = client.next_fire_times(ref, count)
    if settings_of(ctx).json:
        emit_json([t.isoformat() for t in times])
        return
    for t in times:
        out().print(format_time(t))


@app.command("pause")
def pause(
    ctx: typer.Context, ref: Ref, note: Annotated[str | None, typer.Option("--note")] = None
) -> None:
    """Stop firing until resumed (fire times meanwhile are recorded as paused)."""
    with open_client(ctx) as client:
        s = client.pause_schedule(ref, note)
    _done(ctx, s, f"Paused schedule {s.name}.")


@app.command("resume")
def resume(
    ctx: typer.Context, ref: Ref, note: Annotated[str | None, typer.Option("--note")] = None
) -> None:
    """Fire again, from now on."""
    with open_client(ctx) as client:
        s = client.resume_schedule(ref, note)
    nxt = format_time(s.next_fire_times[0]) if s.next_fire_times else "never"
    _done(ctx, s, f"Resumed schedule {s.name}; next fire {nxt}.")


@app.command("trigger")
def trigger(
    ctx: typer.Context,
    ref: Ref,
    overlap: Annotated[Overlap | None, typer.Option("--overlap")] = None,
) -> None:
    """Fire now, once."""
    with open_client(ctx) as client:
        fire = client.trigger_schedule(ref, overlap.value if overlap else None)
    if settings_of(ctx).json:
        emit_json(
            {
                "fire_time": fire.fire_time.isoformat() if fire.fire_time else None,
                "outcome": fire.outcome,
                "run_id": fire.run_id,
                "message": fire.message,
            }
        )
        return
    if fire.run_id is not None:
        err().print(Text(f"Started run {fire.run_id}.", style="green"))
    else:
        err().print(Text(f"No run started: {fire.outcome} ({fire.message}).", style="yellow"))


@app.command("delete")
def delete(ctx: typer.Context, ref: Ref) -> None:
    """Delete a schedule (the runs it started stay)."""
    with open_client(ctx) as client:
        client.delete_schedule(ref)
    if settings_of(ctx).json:
        emit_json({"schedule": ref, "deleted": True})
        return
    err().print(Text(f"Deleted schedule {ref}.", style="green"))


def _done(ctx: typer.Context, s: Schedule, message: str) -> None:
    if settings_of(ctx).json:
        emit_json(s.raw)
        return
    err().print(Text(message, style="green"))
