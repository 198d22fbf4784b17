"""``legato workflow``: apply, list and show workflow definitions, print their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.syntax import Syntax
from rich.text import Text

from legato.cli.common import emit_json, err, open_client, out, settings_of
from legato.cli.views import format_time, workflow_table
from legato.client import DefinitionTextError, ValidationError

__all__ = ["app", "problem_line"]

app = typer.Typer(help="Workflow definitions.", no_args_is_help=True)


def problem_line(file: str, problem: dict[str, Any]) -> str:
    """``FILE:LINE: PATH: MESSAGE`` (leaving out what the problem does not say)."""
    line = problem.get("line")
    where = f"{file}:{line}" if line is not None else file
    path = problem.get("path")
    message = problem.get("message") or problem.get("code") or "invalid"
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def _content_type(path: Path) -> str:
    return "application/json" if path.suffix.lower() == ".json" else "application/yaml"


@app.command("apply")
def apply(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="YAML or JSON workflow definitions.", exists=True, dir_okay=False, readable=True
        ),
    ],
) -> None:
    """Create a new version of each workflow whose definition changed."""
    settings = settings_of(ctx)
    failed = False
    applied: list[dict[str, Any]] = []
    with open_client(ctx) as client:
        for path in files:
            text = path.read_text(encoding="utf-8")
            try:
                workflow, created = client.apply_workflow(None, text, _content_type(path))
            except DefinitionTextError as exc:
                failed = True
                problem = {"line": exc.line, "message": str(exc)}
                err().print(Text(problem_line(str(path), problem), style="red"))
                continue
            except ValidationError as exc:
                failed = True
                problems = exc.errors or [{"message": exc.detail}]
                for problem in problems:
                    err().print(Text(problem_line(str(path), problem), style="red"))
                continue
            applied.append(
                {
                    "file": str(path),
                    "name": workflow.name,
                    "version": workflow.version,
                    "created": created,
                }
            )
            if not settings.json:
                verb = "created" if created else "unchanged"
                style = "green" if created else "dim"
                out().print(
                    Text.assemble((f"{verb:<9}", style), f" {workflow.name} v{workflow.version}")
                )
    if settings.json:
        emit_json(applied)
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The latest version of each workflow."""
    with open_client(ctx) as client:
        workflows = client.list_workflows()
    if settings_of(ctx).json:
        emit_json([w.raw for w in workflows])
    else:
        out().print(workflow_table(workflows))


@app.command("get")
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="A version (default: latest).")
    ] = None,
) -> None:
    """Show one workflow definition."""
    with open_client(ctx) as client:
        workflow = client.get_workflow(name, version)
    if settings_of(ctx).json:
        emit_json(workflow.raw)
        return
    console = out()
    console.print(
        Text.assemble(
            (workflow.name, "bold"),
            f" v{workflow.version}",
            (f"  {workflow.uuid or ''}  created {format_time(workflow.created_at)}", "dim"),
        )
    )
    if workflow.description:
        console.print(workflow.description)
    text = yaml.safe_dump(workflow.definition or {}, sort_keys=False, allow_unicode=True)
    console.print(Syntax(text, "yaml", background_color="default"))


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of workflow definitions (for editors)."""
    from legato.model.definition import json_schema

    value = json_schema()
    typer.echo(value if isinstance(value, str) else json.dumps(value, indent=2))
