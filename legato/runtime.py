"""Composition root: the CLI, the app and the tests build the same object graph here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from legato.engine.delivery import Deliverer, DeliveryConfig
from legato.engine.outbound import OutboundGuard
from legato.engine.reaper import Reaper
from legato.engine.scheduler import Scheduler, SchedulerConfig
from legato.engine.step_modules import StepModules
from legato.engine.transitions import Transitions
from legato.engine.worker import Worker, WorkerConfig
from legato.model.addresses import AddressPolicy
from legato.model.times import iso
from legato.service.aspera_support import AsperaSupport
from legato.service.dashboard import DashboardService
from legato.service.datasourcesvc_support import DatasourcesvcSupport
from legato.service.login_throttle import LoginPolicy
from legato.service.metrics import MetricsService
from legato.service.oracle_selfservice_support import SelfServiceSupport
from legato.service.reads import RunReads
from legato.service.runs import RunService
from legato.service.schedules import ScheduleService
from legato.service.sessions import SessionService
from legato.service.status import StatusService
from legato.service.tenancy import TenancyService
from legato.service.webhooks import WebhookService
from legato.service.workflows import WorkflowService
from legato.settings import Settings, scrub_secrets
from legato.store.database import Database
from legato.store.migrate import upgrade
from legato.store.run_graphs import DefinitionCache
from legato.store.workers import live_workers

__all__ = [
    "Legato",
    "add_step_paths",
    "configure_logging",
    "load_settings",
    "login_policy",
    "run_event_loop",
    "run_worker",
    "settle_memory",
    "upgrade_database",
]

T = TypeVar("T")
log = logging.getLogger("legato")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def login_policy(settings: Settings) -> LoginPolicy:
    """The ``LEGATO_LOGIN_*`` and ``LEGATO_PASSWORD_HASH_CONCURRENCY`` settings."""
    return LoginPolicy(
        max_user_failures=settings.login_max_failures,
        max_address_failures=settings.login_max_failures_per_address,
        window_seconds=settings.login_window_seconds,
        lockout_seconds=settings.login_lockout_seconds,
        max_lockout_seconds=settings.login_max_lockout_seconds,
        hash_concurrency=settings.password_hash_concurrency,
    )


@dataclass
class Legato:
    """Everything one process needs, wired once."""

    database_url: str
    #: the installation's settings (``load_settings()`` in the server processes)
    settings: Settings = field(default_factory=Settings)
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
    schedules: ScheduleService = field(init=False)
    sessions: SessionService = field(init=False)
    dashboard: DashboardService = field(init=False)
    datasourcesvc_support: DatasourcesvcSupport = field(init=False)
    aspera_support: AsperaSupport = field(init=False)
    step_modules: StepModules = field(init=False)
    outbound: OutboundGuard = field(init=False)
    #: how the engine delivers webhooks (tests shorten the backoff)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _stop: asyncio.Event | None = field(default=None, init=False)

    @property
    def _scheduling(self) -> bool:
        return any(t.get_name().startswith("scheduler") for t in self._tasks if not t.done())

    def __post_init__(self) -> None:
        settings = self.settings
        self.step_modules = StepModules.of_installation(settings.step_modules)
        self.outbound = OutboundGuard(
            AddressPolicy.of(settings.allow_private_urls, settings.allowed_cidrs)
        )
        self.db = Database(self.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        self.definitions = DefinitionCache()
        self.transitions = Transitions(self.db, self.definitions)
        self.reads = RunReads(self.db)
        self.status = StatusService(self.db, self.reads)
        self.runs = RunService(
            self.db, self.transitions, self.definitions, self.reads, self.status, self.outbound
        )
        self.metrics = MetricsService(self.db)
        self.workflows = WorkflowService(self.db, self.definitions, self.step_modules)
        self.tenancy = TenancyService(self.db, login_policy(settings))
        self.webhooks = WebhookService(self.db, self.outbound)
        self.schedules = ScheduleService(self.db, self.transitions)
        self.sessions = SessionService(self.db, settings.ui_session_hours * 3600)
        self.dashboard = DashboardService(self.db)
        self.datasourcesvc_support = DatasourcesvcSupport(self.db)
        self.aspera_support = AsperaSupport(self.db)
        self.oracle_selfservice_support = SelfServiceSupport(self.db, self.runs)

    async def open(self) -> None:
        await self.db.start_listening()

    async def bootstrap(self) -> str | None:
        """Namespace ``default`` and its admin key on an empty store (the generated secret,
        to show once); the admin key is forgotten afterwards: nothing running needs it."""
        key = self.settings.admin_key
        secret = await self.tenancy.bootstrap(key.get_secret_value() if key else None)
        self.settings = self.settings.without_admin_key()
        return secret

    def worker(self, config: WorkerConfig | None = None, name: str | None = None) -> Worker:
        return Worker(
            self.db,
            self.transitions,
            config,
            name,
            modules=self.step_modules,
            outbound=self.outbound,
        )

    def deliverer(self) -> Deliverer:
        return Deliverer(self.db, self.delivery, guard=self.outbound)

    def scheduler(self, config: SchedulerConfig | None = None) -> Scheduler:
        return Scheduler(self.db, self.transitions, config)

    def start_scheduler(self, config: SchedulerConfig | None = None) -> Scheduler:
        """Fire schedules and release delayed runs, as a task of the current event loop
        (every server and worker process runs one; the store keeps fires exactly-once)."""
        self._stop = self._stop or asyncio.Event()
        scheduler = self.scheduler(config)
        self._tasks.append(asyncio.create_task(scheduler.run(self._stop), name="scheduler"))
        return scheduler

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
            worker = self.worker(config)
            self._tasks.append(asyncio.create_task(worker.run(self._stop)))
            started.append(worker)
        reaper = Reaper(
            self.db,
            self.transitions,
            interval=reaper_interval,
            max_takeovers=self.settings.max_takeovers,
        )
        self._tasks.append(asyncio.create_task(reaper.run(self._stop)))
        self._tasks.append(asyncio.create_task(self.deliverer().run(self._stop)))
        if self.settings.scheduler and not self._scheduling:
            self.start_scheduler()
        return started

    async def stop_engine(self) -> None:
        """Stop what ``start_engine`` and ``start_scheduler`` started, and wait for it."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()

    async def close(self) -> None:
        await self.stop_engine()
        self.tenancy.identity.close()
        await self.db.close()


def upgrade_database(database_url: str) -> None:
    upgrade(database_url)


def load_settings() -> Settings:
    """The installation's settings, read once; its secrets then leave the environment, so
    that step code running in this process cannot read them there."""
    settings = Settings()
    scrub_secrets()
    return settings


def add_step_paths(paths: list[str] | None = None) -> None:
    """Make Python steps importable: the current directory and ``examples/``."""
    for p in [os.getcwd(), str(EXAMPLES), *(paths or [])]:
        if p not in sys.path and Path(p).is_dir():
            sys.path.insert(0, p)


async def load_examples(app: Legato) -> list[str]:
    """Apply every workflow under ``examples/`` (top level) to namespace ``default``."""
    from legato.service.principal import Principal

    ns_id = await app.tenancy.namespace_id("default")
    admin = Principal(ns_id, "default", "admin")
    loaded = []
    for path in sorted(EXAMPLES.glob("*.y*ml")):
        view, _created = await app.workflows.apply(admin, path.read_text())
        loaded.append(f"{view['name']} v{view['version']}")
    return loaded


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


#: Allocations between young collections (CPython's default is 700): a step or a request
#: makes a few thousand short-lived objects that reference counting frees anyway, and each
#: young collection walked them for nothing. 6 % of a busy engine's CPU went to the
#: collector before, 3 % after ``freeze``, 1 % with these thresholds as well.
GC_THRESHOLDS = (7000, 20, 20)


def settle_memory() -> None:
    """Leave what startup built (modules, classes, the application: some 150,000 objects)
    out of the garbage collector's full passes, and collect the young less often. Under load
    the full passes came every second or two, and walking all of that held every request and
    step for about 100 ms each time on a small machine; it lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the event loop ``legato serve`` runs on: uvloop where it is installed
    (uvicorn's standard extras bring it, and uvicorn picks it the same way), asyncio's own
    otherwise. A worker waits on its database's socket at every statement; uvloop's loop
    and transports cost about a tenth less CPU there than asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def run_worker(
    database_url: str, concurrency: int, name: str | None, namespaces: tuple[str, ...] = ()
) -> None:
    """A worker process (any host) sharing the database with API servers and other workers;
    with ``namespaces``, it runs the steps of those namespaces only."""
    settings = load_settings()
    configure_logging(settings)
    namespaces = namespaces or settings.worker_namespaces
    add_step_paths()

    async def main() -> None:
        app = Legato(database_url, settings=settings.without_admin_key())
        await app.open()
        settle_memory()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        worker = app.worker(
            WorkerConfig(
                concurrency=concurrency,
                lease_seconds=settings.lease_seconds,
                namespaces=namespaces,
            ),
            name=name,
        )
        reaper = Reaper(app.db, app.transitions, max_takeovers=settings.max_takeovers)
        serves = ", ".join(namespaces) if namespaces else "all namespaces"
        log.info("worker %s started (concurrency %d, %s)", worker.name, concurrency, serves)
        try:
            loops = [worker.run(stop), reaper.run(stop), app.deliverer().run(stop)]
            if settings.scheduler:
                loops.append(app.scheduler().run(stop))
            await asyncio.gather(*loops)
        finally:
            await app.close()

    run_event_loop(main())
