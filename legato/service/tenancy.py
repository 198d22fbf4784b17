"""Namespaces, API keys and who is asking."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

from legato.model.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from legato.model.step_modules import module_refusal
from legato.model.times import iso
from legato.service.flights import Flights
from legato.service.identity import IdentityService
from legato.service.principal import CREDENTIALS_TOPIC, DEFAULT_NAMESPACE, ROLES, Principal
from legato.store.database import Database, Tx
from legato.store.errors import DuplicateKey
from legato.store.limits import forget_limits
from legato.store.tenancy import (
    active_key,
    count_admin_keys,
    count_keys,
    find_key_any,
    find_namespace,
    insert_key,
    insert_namespace,
    key_now,
    list_keys,
    list_namespaces,
    revoke_key,
    update_namespace,
)

if TYPE_CHECKING:
    from legato.service.login_throttle import LoginPolicy

__all__ = ["TenancyService", "hash_secret"]

#: How long a process trusts a key it checked without asking the database again. Revoking
#: wakes every process (NOTIFY on PostgreSQL) to drop its caches at once; this bounds the rest
#: (several processes on one SQLite file).
_CACHE_SECONDS = 1.0
_PREFIX_LENGTH = 10  # "lg_" and 7 random characters: enough to recognise, far from enough to use
NAMESPACE_LIMITS = ("max_queued_runs", "max_concurrent_runs", "retention_days")
NAMESPACE_SETTINGS = (*NAMESPACE_LIMITS, "step_modules")


def hash_secret(secret: str) -> str:
    # API keys are 256-bit random tokens, so a fast hash is safe and keeps auth cheap;
    # user passwords (low entropy) get argon2id instead.
    return hashlib.sha256(secret.encode()).hexdigest()


class TenancyService:
    def __init__(self, db: Database, login: LoginPolicy | None = None) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lookups: Flights[Principal | None] = Flights()
        self._revoked = db.subscribe(CREDENTIALS_TOPIC)
        self.identity: IdentityService = IdentityService(db, login)

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing credentials: send 'Authorization: Bearer <api key>'")
        if self._revoked.is_set():  # a key was revoked, here or in another process
            self._revoked.clear()
            self._cache.clear()
        digest = hash_secret(token)
        hit = self._cache.get(digest)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        # concurrent requests with one key (a burst of pollers) share one look-up
        principal = await self._lookups.run(digest, lambda: self._look_up(digest))
        if principal is None:
            raise Unauthorized("invalid or revoked API key")
        return principal

    async def _look_up(self, digest: str) -> Principal | None:
        started = time.monotonic()
        row = await key_now(self.db, digest)
        if row is None or not hmac.compare_digest(row[5], digest):
            return None
        key_id, namespace_id, namespace, role, name, _ = row
        principal = Principal(namespace_id, namespace, role, key_id, name)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (started + _CACHE_SECONDS, principal)
        return principal

    async def bootstrap(self, admin_key: str | None = None) -> str | None:
        """Create namespace ``default`` and an admin key on an empty store.

        Answers the new key's secret (to print once), or None when keys existed already.
        """

        async def tx_fn(tx: Tx) -> str | None:
            now = time.time()
            ns = await find_namespace(tx.conn, DEFAULT_NAMESPACE)
            if ns is None:
                ns = await insert_namespace(tx.conn, DEFAULT_NAMESPACE, now)
            if admin_key:
                if len(admin_key) < 16:
                    raise InvalidInput("LEGATO_ADMIN_KEY must be at least 16 characters")
                # a revoked LEGATO_ADMIN_KEY stays revoked: a restart does not revive it
                if await find_key_any(tx.conn, hash_secret(admin_key)) is None:
                    await insert_key(
                        tx.conn,
                        ns.id,
                        "admin (LEGATO_ADMIN_KEY)",
                        "admin",
                        hash_secret(admin_key),
                        now,
                    )
                return None
            if await count_keys(tx.conn):
                return None
            secret = new_secret()
            await insert_key(
                tx.conn, ns.id, "admin", "admin", hash_secret(secret), now, secret[:_PREFIX_LENGTH]
            )
            return secret

        return await self.db.write(tx_fn)

    async def create_key(
        self, principal: Principal, name: str, role: str, namespace: str | None = None
    ) -> dict[str, Any]:
        principal.require_admin_of(namespace or principal.namespace)
        if role not in ROLES:
            raise InvalidInput(
                f"role must be one of {', '.join(ROLES)}",
                errors=[{"path": "role", "message": "unknown role"}],
            )
        if not name.strip():
            raise InvalidInput(
                "name must not be empty", errors=[{"path": "name", "message": "empty"}]
            )
        secret = new_secret()

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            now = time.time()
            ns_name = namespace or principal.namespace
            ns = await find_namespace(tx.conn, ns_name)
            if ns is None:
                ns = await insert_namespace(tx.conn, ns_name, now)
            row = await insert_key(
                tx.conn, ns.id, name, role, hash_secret(secret), now, secret[:_PREFIX_LENGTH]
            )
            return {
                "id": row.id,
                "name": name,
                "role": role,
                "namespace": ns.name,
                "prefix": row.prefix,
                "key": secret,
                "created_at": now,
            }

        return await self.db.write(tx_fn)

    async def keys(self, principal: Principal) -> list[dict[str, Any]]:
        """The keys an admin administers (never their secrets or hashes)."""
        principal.require("admin")
        async with self.db.read() as conn:
            rows = await list_keys(conn, principal.admin_scope)
        return [_key_view(r) for r in rows]

    async def revoke_key(self, principal: Principal, key_id: int) -> None:
        """Revoke a key; every process refuses it within a second. The installation's last
        admin key is kept (409): without it nobody could administer the installation."""
        principal.require("admin")

        async def tx_fn(tx: Tx) -> None:
            row = await active_key(tx.conn, key_id, principal.admin_scope)
            if row is None:
                raise NotFound(f"API key {key_id} does not exist", code="key_not_found")
            if (
                row.namespace == DEFAULT_NAMESPACE
                and row.role == "admin"
                and await count_admin_keys(tx.conn, row.namespace_id) <= 1
            ):
                raise Conflict(
                    "this is the installation's last admin key: create another admin key "
                    "in namespace 'default' before revoking it",
                    code="last_admin_key",
                )
            await revoke_key(tx.conn, key_id, time.time())
            tx.wake(CREDENTIALS_TOPIC)

        await self.db.write(tx_fn)

    async def namespaces(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require("admin")
        async with self.db.read() as conn:
            rows = await list_namespaces(conn)
        return [
            _namespace_view(r)
            for r in rows
            if principal.administers_all or r.name == principal.namespace
        ]

    async def create_namespace(
        self, principal: Principal, name: str, limits: dict[str, Any]
    ) -> dict[str, Any]:
        principal.require_admin_of(name)  # a new tenant: only the installation's admins
        if "step_modules" in limits:
            limits = {**limits, "step_modules": _step_modules(principal, limits)}

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            if await find_namespace(tx.conn, name) is not None:
                raise Conflict(f"namespace '{name}' exists already", code="namespace_exists")
            row: Any = await insert_namespace(tx.conn, name, time.time())
            values = {
                **_checked_limits(limits),
                **{k: v for k, v in limits.items() if k == "step_modules"},
            }
            if values:
                await update_namespace(tx.conn, row.id, values)
                row = await find_namespace(tx.conn, name)
            return _namespace_view(row)

        try:
            view = await self.db.write(tx_fn)
        except DuplicateKey:  # created meanwhile by another request
            raise Conflict(f"namespace '{name}' exists already", code="namespace_exists") from None
        forget_limits(self.db.shared)
        return view

    async def update_namespace(
        self, principal: Principal, name: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Sets the limits named in ``changes`` (None lifts a limit), and ``step_modules``:
        the modules its python steps may call, which only the installation's admins set."""
        principal.require_admin_of(name)
        if "step_modules" in changes:
            changes = {**changes, "step_modules": _step_modules(principal, changes)}

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            row = await find_namespace(tx.conn, name)
            if row is None:
                raise NotFound(f"namespace '{name}' does not exist", code="namespace_not_found")
            values = {
                **_checked_limits(changes),
                **{k: v for k, v in changes.items() if k == "step_modules"},
            }
            if values:
                await update_namespace(tx.conn, row.id, values)
                row = await find_namespace(tx.conn, name)
            return _namespace_view(row)

        view = await self.db.write(tx_fn)
        forget_limits(self.db.shared)  # this process applies new limits at once; others in 3 s
        return view

    async def namespace_id(self, name: str) -> int:
        async with self.db.read() as conn:
            row = await find_namespace(conn, name)
        if row is None:
            raise NotFound(f"namespace '{name}' does not exist")
        return int(row.id)


def _key_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "namespace": row.namespace,
        "prefix": row.prefix,
        "created_at": iso(row.created_at),
    }


def _namespace_view(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "max_queued_runs": row.max_queued_runs,
        "max_concurrent_runs": row.max_concurrent_runs,
        "retention_days": row.retention_days,
        "step_modules": list(row.step_modules or []),
    }


def _step_modules(principal: Principal, changes: dict[str, Any]) -> list[str]:
    """The namespace's new step modules, checked: what code a tenant may run is the
    installation's decision, so only its admins (admins of ``default``) set them."""
    if not principal.administers_all:
        raise Forbidden(
            "only the installation's admins (admins of namespace 'default') set step_modules"
        )
    modules = list(changes["step_modules"] or [])
    errors = [
        {"path": f"step_modules[{i}]", "message": refusal, "code": "module_not_allowed"}
        for i, module in enumerate(modules)
        if (refusal := module_refusal(module)) is not None
    ]
    if errors:
        raise InvalidInput(
            "step_modules names modules no step may call", code="module_not_allowed", errors=errors
        )
    return list(dict.fromkeys(modules))


def new_secret() -> str:
    return "lg_" + secrets.token_urlsafe(32)


def _checked_limits(limits: dict[str, int | None]) -> dict[str, int | None]:
    """The namespace limits among ``limits``: whole numbers from 1 (``True`` is none), or
    None for no limit."""
    values = {k: v for k, v in limits.items() if k in NAMESPACE_LIMITS}
    for key, value in values.items():
        if value is not None and (type(value) is not int or not 1 <= value <= 2**31 - 1):
            raise InvalidInput(
                f"{key} must be a whole number from 1 to {2**31 - 1}, or null",
                errors=[{"path": key, "message": "expected a whole number or null"}],
            )
    return values
