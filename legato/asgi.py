"""The ASGI application (routers, middleware, the dashboard; its lifespan opens the store
and, in ``serve``, the in-process workers) and the commands that serve it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from legato import __version__
from legato.api import admin, identity, ops, runs, schedules, webhooks, workflows
from legato.api import status as status_api
from legato.api.fast_path import native_answer
from legato.dialects import aspera as aspera_dialect
from legato.dialects import datasourcesvc, encoding_com, oracle_selfservice
from legato.dialects import oac as oac_dialect
from legato.dialects.fast_path import DialectFastPath, dialect_answer
from legato.engine.worker import WorkerConfig
from legato.http.limits import BodyLimit
from legato.http.negotiation import FormatSuffix
from legato.http.openapi import describe_problems
from legato.http.problems import install_problem_handlers
from legato.http.responses import JSONResponse
from legato.runtime import (
    Legato,
    add_step_paths,
    configure_logging,
    load_examples,
    load_settings,
    settle_memory,
    upgrade_database,
)
from legato.settings import Settings
from legato.web import mount as mount_dashboard

__all__ = ["LegatoApp", "create_app", "run_api", "serve", "serve_app"]

log = logging.getLogger("legato")


class LegatoApp(FastAPI):
    """The application; the status reads that pollers send thousands of times a second (the
    native API's run, steps, step and list, and each dialect's status read) are answered before
    the framework's middleware and routing, which cost more than the read itself. A read the
    shortcut declines, or that fails before anything was sent, goes the regular way."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and self.hot_reads:
            scope["app"] = self
            response: Response | None = None
            try:
                response = await native_answer(scope) or await dialect_answer(scope, receive)
            except Exception:  # nothing was sent yet: the routes answer it, problem and all
                response = None
            if response is not None:
                return await response(scope, receive, send)
        await super().__call__(scope, receive, send)

    #: whether the shortcut is taken (tests compare its answers with the routes')
    hot_reads = True


def create_app(
    legato: Legato,
    *,
    concurrency: int = 0,
    examples: bool = False,
    announce: str | None = None,
    server: bool = False,
) -> FastAPI:
    """``concurrency`` > 0 runs an in-process worker with that many step slots; ``announce``
    is the URL to print once the server is up; ``server``: the application is the process's
    for its whole life (what startup built is then left out of garbage collection)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await legato.open()
        secret = await legato.bootstrap()
        if secret is not None:
            _remember_key(secret)
        if examples:
            loaded = await load_examples(legato)
            log.info("examples loaded: %s", ", ".join(loaded))
        if concurrency:
            legato.start_engine(
                config=WorkerConfig(
                    concurrency=concurrency,
                    lease_seconds=legato.settings.lease_seconds,
                    namespaces=legato.settings.worker_namespaces,
                )
            )
        elif legato.settings.scheduler:  # an API process fires schedules too
            legato.start_scheduler()
        if announce:
            _announce(announce, secret)
        if server:
            settle_memory()
        try:
            yield
        finally:
            await legato.close()

    app = LegatoApp(
        title="Legato",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        description="Workflow orchestration: start runs, watch every step.",
    )
    app.state.legato = legato
    install_problem_handlers(app)
    describe_problems(app)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(workflows.router)
    app.include_router(runs.router)
    app.include_router(status_api.router)
    app.add_middleware(DialectFastPath)
    app.add_middleware(FormatSuffix, patterns=status_api.SUFFIXED)
    app.include_router(admin.router)
    app.include_router(identity.router)
    app.include_router(webhooks.router)
    app.include_router(schedules.router)
    app.include_router(aspera_dialect.router)
    app.include_router(ops.router)
    app.include_router(datasourcesvc.router)
    app.include_router(encoding_com.router)
    app.include_router(oac_dialect.router)
    app.include_router(oracle_selfservice.router)
    app.add_middleware(
        BodyLimit,
        max_body=legato.settings.max_body_bytes,
        max_definition=legato.settings.max_definition_bytes,
    )
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


def _announce(url: str, secret: str | None) -> None:
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


#: The package of the example workflows' steps, which ``serve`` with examples lets them call.
EXAMPLE_STEPS = "legato_examples"


def serve(database_url: str, host: str, port: int, workers: int, load_examples: bool) -> None:
    """Migrate, bootstrap, load examples, and serve API + an in-process worker."""
    settings = load_settings()
    configure_logging(settings)
    upgrade_database(database_url)
    add_step_paths()
    if load_examples and EXAMPLE_STEPS not in settings.step_modules:
        settings = settings.model_copy(
            update={"step_modules": (*settings.step_modules, EXAMPLE_STEPS)}
        )
    serve_app(database_url, host, port, settings, concurrency=workers, examples=load_examples)


def run_api(database_url: str, host: str, port: int, processes: int = 1) -> None:
    """The API alone; workers run in other processes (PostgreSQL). With ``processes`` > 1,
    that many server processes share the port (reads scale with the cores)."""
    settings = load_settings()
    configure_logging(settings)
    if processes <= 1:
        serve_app(database_url, host, port, settings, concurrency=0, examples=False)
        return
    import asyncio

    asyncio.run(_bootstrap(database_url, settings, f"http://{host}:{port}"))
    listener = socket.create_server((host, port), backlog=2048)
    serve_processes(
        lambda: create_app(Legato(database_url, settings=settings), server=True),
        listener,
        processes,
    )


def serve_processes(build: Callable[[], FastAPI], listener: socket.socket, processes: int) -> None:
    """Serve on ``listener`` from ``processes`` forked server processes, each building its own
    app (its own connections and event loop) from the settings this process read; one that
    dies is replaced. SIGINT and SIGTERM are passed on, and the call returns once all ended."""
    import uvicorn

    def start() -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            config = uvicorn.Config(build(), log_level="warning", lifespan="on")
            uvicorn.Server(config).run(sockets=[listener])
        except BaseException:
            log.exception("a server process failed")
            code = 1
        finally:
            os._exit(code)

    children = {start() for _ in range(processes)}
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while children:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            log.warning("server process %d ended; starting another", pid)
            children.add(start())
    listener.close()


async def _bootstrap(database_url: str, settings: Settings, url: str) -> None:
    """Once, before the API processes start (they would race to do it)."""
    legato = Legato(database_url, settings=settings)
    try:
        secret = await legato.bootstrap()
        if secret is not None:
            _remember_key(secret)
        _announce(url, secret)
    finally:
        await legato.close()


def serve_app(
    database_url: str,
    host: str,
    port: int,
    settings: Settings,
    *,
    concurrency: int,
    examples: bool,
) -> None:
    import uvicorn

    app = create_app(
        Legato(database_url, settings=settings),
        concurrency=concurrency,
        examples=examples,
        announce=f"http://{host}:{port}",
        server=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
