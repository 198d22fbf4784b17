"""``legato key``: API keys."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.text import Text

from legato.cli.common import emit_json, err, open_client, settings_of

__all__ = ["Role", "app"]

app = typer.Typer(help="API keys.", no_args_is_help=True)


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    role: Annotated[Role, typer.Option("--role", help="What the key may do.")] = Role.operator,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace (default: the caller's).")
    ] = None,
) -> None:
    """Create an API key and print its secret (shown this once only) on stdout."""
    with open_client(ctx) as client:
        key = client.create_key(name, role.value, namespace)
    if settings_of(ctx).json:
        emit_json(key.raw)
        return
    console = err()
    console.print(
        Text(
            f"Created {key.role} key {key.name!r} (id {key.id}) "
            f"in namespace {key.namespace or 'default'}.",
            style="green",
        )
    )
    typer.echo(key.key or "")
    console.print(Text("Store it now: it is not shown again.", style="yellow"))
