"""``/metrics``: Prometheus text, for the installation's administrators."""

from __future__ import annotations

from prometheus_client import generate_latest

from legato.engine.metrics import REGISTRY, RUNS, STEPS_WAITING
from legato.model.errors import Forbidden
from legato.service.principal import Principal
from legato.store.database import Database
from legato.store.metrics import ready_steps, run_counts

__all__ = ["MetricsService"]


class MetricsService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def render(self, principal: Principal) -> bytes:
        if not principal.administers_all:
            raise Forbidden("metrics cover every namespace: they need an admin of 'default'")
        async with self.db.read() as conn:
            counts = await run_counts(conn)
            ready = await ready_steps(conn)
        RUNS.clear()
        for (namespace, status), n in counts.items():
            RUNS.labels(namespace, status).set(n)
        STEPS_WAITING.set(ready)
        return generate_latest(REGISTRY)
