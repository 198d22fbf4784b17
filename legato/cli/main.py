"""The ``legato`` command line: global options and the command groups."""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Annotated

import typer

from legato.cli import key, run, schedule, server, workflow
from legato.cli.common import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="legato",
    help="Legato: workflow orchestration that tells you exactly where every run stands.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(workflow.app, name="workflow")
app.add_typer(run.app, name="run")
app.add_typer(key.app, name="key")
app.add_typer(schedule.app, name="schedule")
app.command("serve")(server.serve)
app.command("api")(server.api)
app.command("worker")(server.worker)
app.add_typer(server.db_app, name="db")


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"legato {metadata.version('legato')}")
        except metadata.PackageNotFoundError:
            typer.echo("legato (version unknown)")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="LEGATO_URL",
            help="Server URL (default: http://127.0.0.1:8080).",
            show_envvar=True,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="LEGATO_API_KEY",
            help="API key (default: the key in .legato/admin.key, if any).",
            show_envvar=True,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of tables.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    ctx.obj = Settings(url=url, api_key=api_key, json=json_output)


#: The commands that run Legato itself (they may be given the installation's secrets).
SERVER_COMMANDS = ("serve", "api", "worker")


def main() -> None:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command in SERVER_COMMANDS:
        from legato.settings import seal_environment

        seal_environment()
    app(prog_name="legato")
