"""Server-side commands: ``serve`` (all in one), ``api``, ``worker`` and ``db upgrade``.

They build their object graph through ``legato.runtime``, imported only when used so that the
client commands start fast and need nothing of the server.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["api", "db_app", "serve", "upgrade", "worker"]

DEFAULT_DATABASE_URL = "sqlite:///./legato.db"

DatabaseUrl = Annotated[
    str,
    typer.Option("--database-url", envvar="LEGATO_DATABASE_URL", help="SQLite or PostgreSQL URL."),
]
Host = Annotated[str, typer.Option("--host", envvar="LEGATO_HOST", help="Address to bind.")]
Port = Annotated[int, typer.Option("--port", envvar="LEGATO_PORT", help="Port to listen on.")]

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def serve(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    host: Host = "127.0.0.1",
    port: Port = 8080,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "--concurrency",
            min=0,
            help="Steps run at once by the built-in worker (0: no worker in this process).",
        ),
    ] = 32,
    examples: Annotated[
        bool, typer.Option("--examples/--no-examples", help="Load the example workflows.")
    ] = True,
) -> None:
    """Run the API, the dashboard and a worker in one process (creates the database)."""
    import legato.asgi as asgi

    asgi.serve(
        database_url=database_url, host=host, port=port, workers=workers, load_examples=examples
    )


def api(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    host: Host = "127.0.0.1",
    port: Port = 8080,
    processes: Annotated[
        int,
        typer.Option(
            "--workers",
            "--processes",
            min=1,
            help="Server processes sharing the port (e.g. one per core); they run no steps.",
        ),
    ] = 1,
) -> None:
    """Run the API and the dashboard only (workers run elsewhere)."""
    import legato.asgi as asgi

    asgi.run_api(database_url=database_url, host=host, port=port, processes=processes)


def worker(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", "--workers", min=1, help="Steps run at once."),
    ] = 32,
    name: Annotated[
        str | None, typer.Option("--name", help="Worker name (default: host and pid).")
    ] = None,
    namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            help="Run only the steps of this namespace's runs (repeat for more; default: all).",
        ),
    ] = None,
) -> None:
    """Run a worker that claims and runs steps."""
    import legato.runtime as runtime

    runtime.run_worker(
        database_url=database_url,
        concurrency=concurrency,
        name=name,
        namespaces=tuple(dict.fromkeys(namespaces or ())),
    )


@db_app.command("upgrade")
def upgrade(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Migrate the database schema to the latest version."""
    import legato.runtime as runtime

    runtime.upgrade_database(database_url=database_url)
    typer.echo("Database is up to date.")
