"""Composition root: the CLI, the app and the tests build the same object graph here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legato.engine.delivery import Deliverer, DeliveryConfig
from legato.engine.reaper import Reaper
from legato.engine.worker import Worker, WorkerConfig
from legato.service.aspera_support import AsperaSupport
from legato.service.dashboard import DashboardService
from legato.service.datasourcesvc_support import DatasourcesvcSupport
from legato.service.metrics import MetricsService
from legato.service.oracle_selfservice_support import SelfServiceSupport
from legato.service.reads import RunReads
from legato.service.runs import RunService
from legato.service.sessions import SessionService
from legato.service.status import StatusService
from legato.service.tenancy import TenancyService
from legato.service.views import iso
from legato.service.webhooks import WebhookService
from legato.service.workflows import WorkflowService
from legato.store.database import Database
from legato.store.graphs import DefinitionCache
from legato.store.migrate import upgrade
from legato.store.transitions import Transitions
from legato.store.workers import live_workers

__all__ = ["Legato", "add_step_paths", "configure_logging", "run_worker", "upgrade_database"]

log = logging.getLogger("legato")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Legato:
    """Everything one process needs, wired once."""

    database_url: str
    db: Database = field(init=False)
    definitions: DefinitionCache = field(init=False)
    transitions: Transitions = field(init=False)
    reads: RunReads = field(init=False)
    runs: RunService = field(init=False)
    status: StatusService = field(init=False)
    metrics: MetricsService = field(init=False)
    workflows: WorkflowService = field(init=False)
    tenancy: TenancyService = field(init=False)
    webhooks: WebhookService = field(init=False)
    sessions: SessionService = field(init=False)
    dashboard: DashboardService = field(init=False)
    datasourcesvc_support: DatasourcesvcSupport = field(init=False)
    aspera_support: AsperaSupport = field(init=False)
    #: how the engine delivers webhooks (tests shorten the backoff)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _stop: asyncio.Event | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.db = Database(self.database_url)
        self.definitions = DefinitionCache()
        self.transitions = Transitions(self.db, self.definitions)
        self.reads = RunReads(self.db)
        self.status = StatusService(self.db, self.reads)
        self.runs = RunService(self.db, self.transitions, self.definitions, self.reads, self.status)
        self.metrics = MetricsService(self.db)
        self.workflows = WorkflowService(self.db, self.definitions)
        self.tenancy = TenancyService(self.db)
        self.webhooks = WebhookService(self.db)
        self.sessions = SessionService(self.db)
        self.dashboard = DashboardService(self.db)
        self.datasourcesvc_support = DatasourcesvcSupport(self.db)
        self.aspera_support = AsperaSupport(self.db)
        self.oracle_selfservice_support = SelfServiceSupport(self.db, self.runs)

    async def open(self) -> None:
        await self.db.start_listening()

    async def workers(self) -> list[dict[str, Any]]:
        rows = await live_workers(self.db)
        return [
            {**w, "started_at": iso(w["started_at"]), "heartbeat_at": iso(w["heartbeat_at"])}
            for w in rows
        ]

    def start_engine(
        self, *, workers: int = 1, config: WorkerConfig | None = None, reaper_interval: float = 1.0
    ) -> list[Worker]:
        """Run workers and a reaper as tasks of the current event loop."""
        self._stop = self._stop or asyncio.Event()
        started = []
        for _ in range(workers):
            worker = Worker(self.db, self.transitions, config)
            self._tasks.append(asyncio.create_task(worker.run(self._stop)))
            started.append(worker)
        reaper = Reaper(self.db, self.transitions, interval=reaper_interval)
        self._tasks.append(asyncio.create_task(reaper.run(self._stop)))
        deliverer = Deliverer(self.db, self.delivery)
        self._tasks.append(asyncio.create_task(deliverer.run(self._stop)))
        return started

    async def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
        await self.db.close()


def upgrade_database(database_url: str) -> None:
    upgrade(database_url)


def add_step_paths(paths: list[str] | None = None) -> None:
    """Make Python steps importable: the current directory and ``examples/``."""
    for p in [os.getcwd(), str(EXAMPLES), *(paths or [])]:
        if p not in sys.path and Path(p).is_dir():
            sys.path.insert(0, p)


async def load_examples(app: Legato) -> list[str]:
    """Apply every workflow under ``examples/`` (top level) to namespace ``default``."""
    from legato.service.tenancy import Principal

    ns_id = await app.tenancy.namespace_id("default")
    admin = Principal(ns_id, "default", "admin")
    loaded = []
    for path in sorted(EXAMPLES.glob("*.y*ml")):
        view, _created = await app.workflows.apply(admin, path.read_text())
        loaded.append(f"{view['name']} v{view['version']}")
    return loaded


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LEGATO_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_worker(database_url: str, concurrency: int, name: str | None) -> None:
    """A worker process (any host) sharing the database with API servers and other workers."""
    configure_logging()
    add_step_paths()

    async def main() -> None:
        app = Legato(database_url)
        await app.open()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        worker = Worker(
            app.db,
            app.transitions,
            WorkerConfig(
                concurrency=concurrency,
                lease_seconds=float(os.environ.get("LEGATO_LEASE_SECONDS", "30")),
            ),
            name=name,
        )
        reaper = Reaper(app.db, app.transitions)
        log.info("worker %s started (concurrency %d)", worker.name, concurrency)
        try:
            await asyncio.gather(
                worker.run(stop), reaper.run(stop), Deliverer(app.db, app.delivery).run(stop)
            )
        finally:
            await app.db.close()

    asyncio.run(main())
