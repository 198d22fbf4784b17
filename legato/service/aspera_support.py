"""What the Aspera Orchestrator dialect needs beyond the other services: integer workflow
ids. A workflow's id there is the id of its first version; its revision is the version."""

from __future__ import annotations

from legato.model.errors import NotFound
from legato.model.ids import MAX_ID
from legato.service.principal import Principal
from legato.store import workflows as workflow_store
from legato.store.database import Database
from legato.store.step_lookup import find_step_run

__all__ = ["AsperaSupport"]


class AsperaSupport:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def workflow_ids(self, p: Principal) -> dict[str, int]:
        """Every workflow of the namespace by name, with its integer id."""
        ids: dict[str, int] = {}
        async with self.db.read() as conn:
            for row in await workflow_store.list_latest(conn, p.namespace_id):
                first = await workflow_store.find_workflow(conn, p.namespace_id, row.name, 1)
                ids[row.name] = int((first or row).id)
        return ids

    async def workflow_id(self, p: Principal, name: str) -> int | None:
        async with self.db.read() as conn:
            first = await workflow_store.find_workflow(conn, p.namespace_id, name, 1)
            if first is None:
                first = await workflow_store.find_workflow(conn, p.namespace_id, name)
        return None if first is None else int(first.id)

    async def workflow_name(self, p: Principal, ref: str) -> str:
        """A workflow named by its integer id or by its name."""
        ids = await self.workflow_ids(p)
        if ref in ids:
            return ref
        for name, ident in ids.items():
            if str(ident) == ref:
                return name
        raise NotFound(f"workflow {ref} does not exist", code="workflow_not_found")

    async def run_of_step(self, p: Principal, step_id: int) -> int:
        """The run a step (by integer id) belongs to; another namespace's step is not found."""
        run_id = None
        if 0 < step_id <= MAX_ID:
            async with self.db.read() as conn:
                run_id = await find_step_run(conn, p.namespace_id, step_id)
        if run_id is None:
            raise NotFound(f"work step {step_id} does not exist", code="step_not_found")
        return run_id
