"""Use cases on workflow definitions: apply (new version when changed), list, get."""

from __future__ import annotations

import time
from typing import Any

from legato.engine.step_modules import StepModules
from legato.model.definition_loading import load_definition
from legato.model.definition_problems import DefinitionError
from legato.model.errors import InvalidInput, NotFound
from legato.service.principal import Principal
from legato.service.schedules import apply_declared
from legato.service.views import workflow_view
from legato.store.database import Database, Tx
from legato.store.errors import DuplicateKey
from legato.store.run_graphs import DefinitionCache
from legato.store.tenancy import namespace_step_modules
from legato.store.workflows import find_workflow, insert_version, list_latest

__all__ = ["WorkflowService"]

#: Workflow versions whose views a process keeps.
KEPT_VERSIONS = 1024


class WorkflowService:
    def __init__(
        self, db: Database, definitions: DefinitionCache, modules: StepModules | None = None
    ) -> None:
        self.db = db
        self.definitions = definitions
        self._versions: dict[tuple[int, str, int], dict[str, Any]] = {}
        self.modules = modules or StepModules()

    async def apply(
        self, p: Principal, source: str, name: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Store a definition; answers the version and whether it is new. Its python steps
        may call only the functions the namespace may call."""
        p.require("operator")
        async with self.db.read() as conn:
            policy = self.modules.policy(await namespace_step_modules(conn, p.namespace_id))
        try:
            definition = load_definition(source, check_function=policy.refusal)
        except DefinitionError as exc:
            raise InvalidInput(
                f"the workflow definition has {len(exc.problems)} problem(s)",
                code="invalid_definition",
                errors=[pr.as_dict() for pr in exc.problems],
            ) from exc
        if name is not None and definition.name != name:
            raise InvalidInput(
                f"the URL names workflow '{name}' but the definition is named '{definition.name}'",
                code="name_mismatch",
                errors=[
                    {
                        "path": "name",
                        "line": None,
                        "message": "does not match the URL",
                        "code": "name_mismatch",
                    }
                ],
            )

        async def tx_fn(tx: Tx) -> tuple[dict[str, Any], bool]:
            now = time.time()
            row, created = await insert_version(tx.conn, p.namespace_id, definition, source, now)
            self.definitions.put(row.id, definition)
            await apply_declared(
                tx, p.namespace_id, definition.name, definition, definition.schedules, now
            )
            return workflow_view(row, p.namespace), created

        for _ in range(5):
            try:
                return await self.db.write(tx_fn)
            except DuplicateKey:
                continue  # a concurrent apply took that version number: look again
        return await self.db.write(tx_fn)

    async def list(self, p: Principal) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await list_latest(conn, p.namespace_id)
        return [workflow_view(r, p.namespace, definition=False) for r in rows]

    async def get(self, p: Principal, name: str, version: int | None = None) -> dict[str, Any]:
        """A version of a workflow (the latest without ``version``). A version never changes
        once stored, so the views of named versions are kept (the dialects read one for
        every status answer)."""
        kept = self._versions.get((p.namespace_id, name, version)) if version else None
        if kept is not None:
            return dict(kept)
        async with self.db.read() as conn:
            row = await find_workflow(conn, p.namespace_id, name, version)
        if row is None:
            which = f"version {version} of " if version else ""
            raise NotFound(f"{which}workflow '{name}' does not exist", code="workflow_not_found")
        view = workflow_view(row, p.namespace)
        view["source"] = row.source
        if len(self._versions) >= KEPT_VERSIONS:
            self._versions.clear()
        self._versions[(p.namespace_id, name, row.version)] = view
        return dict(view)
