"""The installation's step modules, and each namespace's policy, for the apply-time check and
for the worker's check before it calls a function.

The installation trusts the modules registered in the ``legato.steps`` entry-point group
(entries naming a module, without ``:attribute``) and those of ``LEGATO_STEP_MODULES``; the
installation's admins may allow more per namespace (``step_modules`` of the namespace).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from importlib.metadata import entry_points

from legato.model.step_modules import ModulePolicy, module_refusal
from legato.store.database import Database
from legato.store.tenancy import step_modules_now

__all__ = ["StepModules", "registered_modules"]

log = logging.getLogger("legato")
CACHE_SECONDS = 3.0


def registered_modules() -> tuple[str, ...]:
    """Modules registered as step modules through the ``legato.steps`` entry points."""
    return tuple(ep.value for ep in entry_points(group="legato.steps") if ":" not in ep.value)


class StepModules:
    """What every namespace may call, plus a short-lived cache of each namespace's own list."""

    def __init__(self, installation: Sequence[str] = (), registered: Sequence[str] = ()) -> None:
        trusted = []
        for module in dict.fromkeys([*registered, *installation]):
            refusal = module_refusal(module)
            if refusal is None:
                trusted.append(module)
            else:
                log.warning("step module ignored: %s", refusal)
        self.installation = ModulePolicy(tuple(trusted))
        self._namespaces: dict[int, tuple[float, ModulePolicy]] = {}

    @classmethod
    def of_installation(cls, installation: Sequence[str] = ()) -> StepModules:
        return cls(installation, registered_modules())

    def policy(self, namespace_modules: Sequence[str]) -> ModulePolicy:
        return self.installation.extended(namespace_modules)

    async def for_namespace(self, db: Database, namespace_id: int) -> ModulePolicy:
        """The namespace's policy; a change by an admin reaches workers within seconds."""
        hit = self._namespaces.get(namespace_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        policy = self.policy(await step_modules_now(db, namespace_id))
        self._namespaces[namespace_id] = (now + CACHE_SECONDS, policy)
        return policy
