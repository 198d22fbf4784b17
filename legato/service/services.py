"""What the faces see of the composition root: the services, nothing below them."""

from __future__ import annotations

from typing import Any, Protocol

from legato.service.aspera_support import AsperaSupport
from legato.service.dashboard import DashboardService
from legato.service.datasourcesvc_support import DatasourcesvcSupport
from legato.service.metrics import MetricsService
from legato.service.oracle_selfservice_support import SelfServiceSupport
from legato.service.runs import RunService
from legato.service.schedules import ScheduleService
from legato.service.sessions import SessionService
from legato.service.status import StatusService
from legato.service.tenancy import TenancyService
from legato.service.webhooks import WebhookService
from legato.service.workflows import WorkflowService

__all__ = ["Services"]


class Services(Protocol):
    runs: RunService
    metrics: MetricsService
    status: StatusService
    workflows: WorkflowService
    tenancy: TenancyService
    webhooks: WebhookService
    schedules: ScheduleService
    sessions: SessionService
    dashboard: DashboardService
    datasourcesvc_support: DatasourcesvcSupport
    aspera_support: AsperaSupport
    oracle_selfservice_support: SelfServiceSupport

    async def workers(self) -> list[dict[str, Any]]: ...
