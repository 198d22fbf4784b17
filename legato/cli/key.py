"""``legato key``: API keys."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from legato.cli.common import emit_json, err, open_client, out, settings_of
from legato.cli.views import format_time

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


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The API keys you administer: never their secrets, a prefix to recognise each by."""
    with open_client(ctx) as client:
        keys = client.list_keys()
    if settings_of(ctx).json:
        emit_json([k.raw for k in keys])
        return
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("Id", justify="right", no_wrap=True)
    table.add_column("Name")
    table.add_column("Role", no_wrap=True)
    table.add_column("Namespace", no_wrap=True)
    table.add_column("Prefix", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.role,
            key.namespace or "",
            f"{key.prefix}…" if key.prefix else "",
            format_time(key.created_at),
        )
    out().print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[int, typer.Argument(metavar="ID", help="The key's id (see key list).")],
) -> None:
    """Revoke an API key: every server refuses it within a second."""
    with open_client(ctx) as client:
        client.revoke_key(key_id)
    if settings_of(ctx).json:
        emit_json({"id": key_id, "revoked": True})
        return
    err().print(Text(f"Revoked key {key_id}.", style="green"))
