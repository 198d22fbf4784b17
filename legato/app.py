"""The ASGI app: mounts the routers; its lifespan opens the store and, in ``serve``, the
in-process workers."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse

from legato import __version__
from legato.api import admin, identity, ops, runs, webhooks, workflows
from legato.api import status as status_api
from legato.api.fast_path import StatusFastPath
from legato.dialects import aspera as aspera_dialect
from legato.dialects import datasourcesvc, encoding_com, oracle_selfservice
from legato.dialects import oac as oac_dialect
from legato.engine.worker import WorkerConfig
from legato.http.negotiation import FormatSuffix
from legato.http.problems import install_problem_handlers
from legato.http.responses import JSONResponse
from legato.runtime import (
    Legato,
    add_step_paths,
    configure_logging,
    load_examples,
    upgrade_database,
)
from legato.web import mount as mount_dashboard

__all__ = ["create_app", "run_api", "serve", "serve_app"]

log = logging.getLogger("legato")


def create_app(
    legato: Legato, *, concurrency: int = 0, examples: bool = False, announce: bool = False
) -> FastAPI:
    """``concurrency`` > 0 runs an in-process worker with that many step slots."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await legato.open()
        secret = await legato.tenancy.bootstrap(os.environ.get("LEGATO_ADMIN_KEY"))
        if secret is not None:
            _remember_key(secret)
        if examples:
            loaded = await load_examples(legato)
            log.info("examples loaded: %s", ", ".join(loaded))
        if concurrency:
            legato.start_engine(
                config=WorkerConfig(
                    concurrency=concurrency,
                    lease_seconds=float(os.environ.get("LEGATO_LEASE_SECONDS", "30")),
                )
            )
        if announce:
            _announce(secret)
        try:
            yield
        finally:
            await legato.close()

    app = FastAPI(
        title="Legato",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        description="Workflow orchestration: start runs, watch every step.",
    )
    app.state.legato = legato
    install_problem_handlers(app)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(workflows.router)
    app.include_router(runs.router)
    app.include_router(status_api.router)
    app.add_middleware(StatusFastPath)  # inside FormatSuffix: sees paths without suffix
    app.add_middleware(FormatSuffix, patterns=status_api.SUFFIXED)
    app.include_router(admin.router)
    app.include_router(identity.router)
    app.include_router(webhooks.router)
    app.include_router(aspera_dialect.router)
    app.include_router(ops.router)
    app.include_router(datasourcesvc.router)
    app.include_router(encoding_com.router)
    app.include_router(oac_dialect.router)
    app.include_router(oracle_selfservice.router)
    mount_dashboard(app)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=307)

    return app


KEY_FILE = Path(".legato") / "admin.key"


def _remember_key(secret: str) -> None:
    """Keep the generated admin key where the CLI on this machine finds it (mode 0600)."""
    KEY_FILE.parent.mkdir(exist_ok=True)
    KEY_FILE.touch(mode=0o600)
    KEY_FILE.write_text(secret + "\n")


def _announce(secret: str | None) -> None:
    url = (
        f"http://{os.environ.get('LEGATO_HOST', '127.0.0.1')}:"
        f"{os.environ.get('LEGATO_PORT', '8080')}"
    )
    lines = [
        "",
        "Legato is running.",
        f"  API      {url}/api/v1",
        f"  API docs {url}/docs",
        f"  Dashboard {url}/ui",
        f"  Health   {url}/healthz",
    ]
    if secret:
        lines += [f"  Admin API key (shown once, also saved to {KEY_FILE}):", f"    {secret}"]
    elif KEY_FILE.exists():
        lines += [f"  Admin API key: see {KEY_FILE}"]
    lines += [
        "",
        "In another shell:",
        "  source .venv/bin/activate",
        "  legato run start hello --wait",
        "",
    ]
    print("\n".join(lines), flush=True)


def serve(database_url: str, host: str, port: int, workers: int, load_examples: bool) -> None:
    """Migrate, bootstrap, load examples, and serve API + an in-process worker."""
    configure_logging()
    upgrade_database(database_url)
    add_step_paths()
    serve_app(database_url, host, port, concurrency=workers, examples=load_examples)


def run_api(database_url: str, host: str, port: int) -> None:
    """The API alone; workers run in other processes (PostgreSQL)."""
    configure_logging()
    serve_app(database_url, host, port, concurrency=0, examples=False)


def serve_app(database_url: str, host: str, port: int, *, concurrency: int, examples: bool) -> None:
    import uvicorn

    os.environ["LEGATO_HOST"], os.environ["LEGATO_PORT"] = host, str(port)
    app = create_app(
        Legato(database_url), concurrency=concurrency, examples=examples, announce=True
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
