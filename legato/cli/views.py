"""Rich renderings of runs, steps and logs, shared by ``run start --wait`` and ``run status``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from legato.client import LogLine, Run, Step, Workflow

__all__ = [
    "STATUS_STYLES",
    "counts_text",
    "format_duration",
    "format_time",
    "live_view",
    "log_text",
    "outputs_view",
    "progress_row",
    "run_summary",
    "run_table",
    "status_text",
    "step_table",
    "workflow_table",
]

STATUS_STYLES: dict[str, str] = {
    "QUEUED": "cyan",
    "PENDING": "dim",
    "READY": "cyan",
    "RUNNING": "bold blue",
    "CANCELING": "yellow",
    "SUCCEEDED": "bold green",
    "FAILED": "bold red",
    "CANCELED": "yellow",
    "TIMED_OUT": "red",
    "SKIPPED": "dim",
}

LEVEL_STYLES: dict[str, str] = {
    "DEBUG": "dim",
    "WARNING": "yellow",
    "WARN": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold red",
}


_BAR_STYLES = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "CANCELED": "yellow"}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_duration(ms: float | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``1h02m``; empty when unknown."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{int(ms)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_time(value: datetime | None, *, millis: bool = False) -> str:
    """UTC ISO 8601 with ``Z``; empty when unknown."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def _elapsed_ms(
    duration_ms: int | None, started: datetime | None, finished: datetime | None
) -> float | None:
    if duration_ms is not None:
        return duration_ms
    if started is None:
        return None
    end = finished or datetime.now(UTC)
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return max(0.0, (end - started).total_seconds() * 1000)


def step_table(steps: Sequence[Step] | None, *, title: str | None = None) -> Table:
    """One row per step: key/name, status, attempt/max, duration, status message."""
    table = Table(title=title, expand=False, show_edge=False, pad_edge=False)
    table.add_column("Step", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Attempt", justify="right", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    table.add_column("Message", overflow="fold")
    for step in sorted(steps or [], key=lambda s: (s.rank, s.id)):
        label = Text(step.key, style="bold")
        if step.name and step.name != step.key:
            label.append(f" {step.name}", style="dim")
        status = status_text(step.status)
        if step.status == "RUNNING" and step.progress is not None:
            status.append(f" {step.progress * 100:.0f}%", style="blue")
        message = step.status_message or ""
        if step.error and step.error.get("message") and not message:
            message = str(step.error["message"])
        waiting = waiting_text(step.raw.get("waiting_reason"))
        if waiting:
            message = f"{message} ({waiting})" if message else waiting
        if step.raw.get("counts_by_status"):
            message = f"{message} [{counts_text(step.raw['counts_by_status']).plain}]".strip()
        if step.raw.get("slower_than_usual"):
            message = f"{message} · slower than usual".strip(" ·")
        table.add_row(
            label,
            status,
            f"{step.attempt}/{step.max_attempts}" if step.attempt else f"-/{step.max_attempts}",
            format_duration(_elapsed_ms(step.duration_ms, step.started_at, step.finished_at)),
            Text(message, style="red" if step.error else ""),
        )
    return table


def waiting_text(reason: Mapping[str, Any] | None) -> str:
    """``waiting_reason`` in words: what the step waits on."""
    if not reason:
        return ""
    kind = str(reason.get("reason", ""))
    if kind == "upstream":
        return "waits for " + ", ".join(reason.get("on") or []) if reason.get("on") else ""
    if kind in ("backoff_until", "sleep_until"):
        word = "retry" if kind == "backoff_until" else "sleeps"
        return f"{word} at {reason.get('until', '')}"
    if kind == "child_run":
        return f"runs as run {reason.get('run_id')}"
    if kind == "no_worker":
        return "no worker is running"
    if kind == "concurrency_limit":
        return f"waits for a free slot ({reason.get('on', 'workers')})"
    if kind == "approval":
        return "waits for approval"
    return kind


def time_left_text(run: Run) -> Text | None:
    left = run.raw.get("time_left")
    if not left or run.is_terminal:
        return None
    if left.get("seconds") is None:
        return Text("unknown (a step waits for a decision)", style="dim")
    text = Text(format_duration(left["seconds"] * 1000), style="bold")
    low, high = left.get("low_seconds"), left.get("high_seconds")
    if low is not None and high is not None:
        text.append(
            f"  ({format_duration(low * 1000)} to {format_duration(high * 1000)}, "
            f"{left.get('confidence', 'low')} confidence)",
            style="dim",
        )
    eta = run.raw.get("estimated_completion_time")
    if eta:
        text.append(f"  ETA {eta}", style="dim")
    return text


def counts_text(counts: Mapping[str, int]) -> Text:
    text = Text()
    for i, (status, count) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
        if i:
            text.append(" · ", style="dim")
        text.append(f"{count} ", style="bold")
        text.append(status.lower(), style=STATUS_STYLES.get(status, ""))
    return text


def progress_row(run: Run, width: int = 40) -> Table:
    """A bar of ``progress.percent`` with the percentage and finished/total steps."""
    percent = max(0.0, min(100.0, run.progress.percent))
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        ProgressBar(
            total=100.0,
            completed=percent,
            width=width,
            complete_style=_BAR_STYLES.get(run.status, "blue"),
            finished_style=_BAR_STYLES.get(run.status, "green"),
        ),
        Text(f"{percent:5.1f}%", style="bold"),
        Text(f"{run.progress.finished_steps}/{run.progress.total_steps} steps", style="dim"),
    )
    return grid


def run_summary(run: Run) -> Table:
    """Key facts of a run as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    grid.add_row("Run", Text(f"{run.id}  {run.uuid or ''}".rstrip(), style="bold"))
    version = f" v{run.workflow_version}" if run.workflow_version is not None else ""
    grid.add_row("Workflow", f"{run.workflow}{version}")
    status = status_text(run.status)
    if run.status_message:
        status.append(f"  {run.status_message}", style="")
    grid.add_row("Status", status)
    grid.add_row("Progress", progress_row(run))
    left = time_left_text(run)
    if left is not None:
        grid.add_row("Time left", left)
    if run.counts_by_status:
        grid.add_row("Steps", counts_text(run.counts_by_status))
    if run.created_at:
        grid.add_row("Created", format_time(run.created_at))
    if run.started_at:
        grid.add_row("Started", format_time(run.started_at))
    if run.finished_at:
        grid.add_row("Finished", format_time(run.finished_at))
    duration = _elapsed_ms(run.duration_ms, run.started_at, run.finished_at)
    if duration is not None:
        grid.add_row("Duration", format_duration(duration))
    if run.labels:
        grid.add_row("Labels", ", ".join(f"{k}={v}" for k, v in run.labels.items()))
    if run.external_id:
        grid.add_row("External id", run.external_id)
    if run.error:
        where = f" (step {run.error['step']})" if run.error.get("step") else ""
        message = f"{run.error.get('code', 'error')}: {run.error.get('message', '')}{where}"
        grid.add_row("Error", Text(message, style="red"))
    return grid


def live_view(run: Run) -> Group:
    """What ``run start --wait`` redraws on every poll."""
    header = Text.assemble(
        ("Run ", "dim"),
        (str(run.id), "bold"),
        f"  {run.workflow}  ",
        status_text(run.status),
        (f"  {run.status_message}" if run.status_message else "", ""),
    )
    return Group(header, progress_row(run), step_table(run.steps))


def outputs_view(outputs: Mapping[str, Any]) -> RenderableType:
    if not outputs:
        return Text("(no outputs)", style="dim")
    return JSON.from_data(dict(outputs), default=str)


def run_table(runs: Iterable[Run]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("Id", justify="right", no_wrap=True)
    table.add_column("Workflow", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Progress", justify="right", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    table.add_column("Message")
    for run in runs:
        version = f" v{run.workflow_version}" if run.workflow_version is not None else ""
        table.add_row(
            str(run.id),
            f"{run.workflow}{version}",
            status_text(run.status),
            f"{run.progress.percent:.0f}%",
            format_time(run.created_at),
            format_duration(_elapsed_ms(run.duration_ms, run.started_at, run.finished_at)),
            run.status_message or "",
        )
    return table


def workflow_table(workflows: Iterable[Workflow]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("Name", style="bold", no_wrap=True)
    table.add_column("Version", justify="right")
    table.add_column("Operation type")
    table.add_column("Created", no_wrap=True)
    table.add_column("Description")
    for wf in workflows:
        table.add_row(
            wf.name,
            str(wf.version),
            wf.operation_type or "",
            format_time(wf.created_at),
            wf.description or "",
        )
    return table


def log_text(line: LogLine) -> Text:
    """``time level [step#attempt] message``."""
    text = Text()
    text.append(format_time(line.time, millis=True) or str(line.raw.get("time", "")), "dim")
    level = line.level.upper()
    text.append(f" {level:<7}", LEVEL_STYLES.get(level, ""))
    if line.step:
        attempt = f"#{line.attempt}" if line.attempt is not None else ""
        text.append(f" [{line.step}{attempt}]", "cyan")
    text.append(f" {line.message}")
    return text
