"""Fixtures shared by every test: a migrated database on each store, a wired Legato, an
in-process API client. Integration tests run once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from legato.asgi import create_app
from legato.engine.worker import WorkerConfig
from legato.runtime import Legato
from legato.settings import Settings
from legato.store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "steps"))
sys.path.insert(0, str(ROOT / "examples"))

ADMIN_KEY = "lg_test_admin_key_0123456789"
PG_BASE = os.environ.get("LEGATO_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
FAST = WorkerConfig(
    concurrency=16, lease_seconds=2.0, poll_interval=0.05, flush_interval=0.05, cancel_grace=1.0
)
#: The modules of the tests' python steps, and of the examples the tests run.
STEP_MODULES = ("demo_steps", "aspera_steps", "encoding_com_steps", "legato_examples")
#: The installation the tests run: their step modules; outbound requests guarded as shipped
#: (tests that post to a local receiver allow it through ``local_urls``).
SETTINGS = Settings(step_modules=STEP_MODULES, allow_private_urls=False, allowed_cidrs=())
#: ... and for the tests whose webhook receivers listen on 127.0.0.1.
LOCAL_RECEIVERS = SETTINGS.model_copy(update={"allowed_cidrs": (ip_network("127.0.0.1/32"),)})


def _worker_id(config: pytest.Config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "main")


async def _pg_admin(sql: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


def _outside_loop(coro: Any) -> Any:
    """Session fixtures may be set up from inside a test's event loop: run on a thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One migrated PostgreSQL database per test process; CI must have PostgreSQL."""
    # Unique per test process, so concurrent test runs on one machine never collide.
    name = f"legato_test_{_worker_id(request.config)}_{os.getpid()}"
    try:
        _outside_loop(
            _pg_admin(
                [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"']
            )
        )
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    url = f"{PG_BASE}/{name}"
    upgrade(url)
    yield url
    _outside_loop(_pg_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "legato.db"
    upgrade(f"sqlite:///{path}")
    return path


async def _truncate(url: str) -> None:
    import asyncpg

    from legato.store.tables import metadata

    conn = await asyncpg.connect(url)
    try:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "legato.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    await _truncate(url)
    return url


@pytest.fixture
def settings() -> Settings:
    """The installation's settings; a test module overrides this fixture to change them."""
    return SETTINGS


@pytest.fixture
async def legato(database_url: str, settings: Settings) -> AsyncIterator[Legato]:
    app = Legato(database_url, settings=settings)
    await app.open()
    await app.tenancy.bootstrap(ADMIN_KEY)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def engine(legato: Legato) -> Legato:
    """Legato with one in-process worker and a reaper, tuned for quick tests."""
    legato.start_engine(workers=1, config=FAST, reaper_interval=0.2)
    return legato


@pytest.fixture
async def api(engine: Legato) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real ASGI app (in process), authenticated as admin."""
    app = create_app(engine)
    app.router.lifespan_context = _no_lifespan  # the fixtures own open/close
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://legato.test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


from contextlib import asynccontextmanager  # noqa: E402


@asynccontextmanager
async def _no_lifespan(_app: object) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def live_url(engine: Legato) -> AsyncIterator[str]:
    """The app behind a real HTTP server on a free local port; answers its base URL."""
    app = create_app(engine)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done(), "the test server did not start"
        assert time.monotonic() < deadline, "the test server did not start in time"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
