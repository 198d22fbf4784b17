"""What every client command shares: settings, the client factory, output and error reporting."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from legato.client import (
    AuthenticationError,
    Client,
    LegatoConnectionError,
    LegatoError,
    ValidationError,
)

__all__ = [
    "ClientFactory",
    "Settings",
    "client_factory",
    "emit_json",
    "err",
    "fail",
    "open_client",
    "out",
    "problem_text",
    "report_error",
    "settings_of",
]

ClientFactory = Callable[[str | None, str | None], Client]

client_factory: ClientFactory = Client
"""Builds the client of every command from ``(url, api_key)``; tests swap it for a fake."""


@dataclass(frozen=True)
class Settings:
    """The global options of the command line."""

    url: str | None = None
    api_key: str | None = None
    json: bool = False


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def out() -> Console:
    """A console on the current stdout (made per use so redirected streams are honoured)."""
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` in red on stderr; returns the ``Exit`` for the caller to raise."""
    err().print(Text(message, style="red"))
    return typer.Exit(code)


def problem_text(problem: dict[str, Any]) -> str:
    """``PATH (line N): MESSAGE`` for one entry of a problem's ``errors`` list."""
    where = str(problem.get("path") or "")
    line = problem.get("line")
    if line is not None:
        where = f"{where} (line {line})" if where else f"line {line}"
    message = str(problem.get("message") or problem.get("code") or "invalid")
    return f"{where}: {message}" if where else message


def report_error(exc: LegatoError) -> None:
    """One red line naming what went wrong (plus the problem list of a validation error)."""
    console = err()
    if isinstance(exc, LegatoConnectionError):
        message = (
            f"Error: could not reach the Legato server at {exc.url} ({exc.reason}). "
            "Is it running? Start one with `make serve` (or `legato serve`), "
            "or point --url / LEGATO_URL at it."
        )
    elif isinstance(exc, AuthenticationError):
        message = (
            f"Error: {exc.detail} ({exc.status} {exc.code}). Pass --api-key or set "
            "LEGATO_API_KEY (the server wrote its admin key to .legato/admin.key)."
        )
    else:
        message = f"Error: {exc.detail} ({exc.status} {exc.code})"
    console.print(Text(message, style="bold red"))
    if isinstance(exc, ValidationError):
        for problem in exc.errors:
            console.print(Text(f"  - {problem_text(problem)}", style="red"))


@contextmanager
def open_client(ctx: typer.Context) -> Iterator[Client]:
    """The command's client; API errors become a red message and exit status 1."""
    settings = settings_of(ctx)
    client = client_factory(settings.url, settings.api_key)
    try:
        yield client
    except LegatoError as exc:
        report_error(exc)
        raise typer.Exit(1) from None
    finally:
        client.close()
