"""Namespaces, API keys and who is asking."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from legato.model.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from legato.store.database import Database, Tx
from legato.store.limits import forget_limits
from legato.store.tenancy import (
    count_keys,
    find_key,
    find_namespace,
    insert_key,
    insert_namespace,
    list_namespaces,
    update_namespace,
)

if TYPE_CHECKING:
    from legato.service.identity import IdentityService

__all__ = ["ROLES", "Principal", "TenancyService", "hash_secret"]

ROLES = ("viewer", "operator", "admin")
DEFAULT_NAMESPACE = "default"
_CACHE_SECONDS = 10.0
NAMESPACE_LIMITS = ("max_queued_runs", "max_concurrent_runs", "retention_days")


def hash_secret(secret: str) -> str:
    # API keys are 256-bit random tokens, so a fast hash is safe and keeps auth cheap;
    # user passwords (low entropy) get argon2id instead.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    namespace_id: int
    namespace: str
    role: str
    key_id: int | None = None
    name: str = ""
    user_id: int | None = None  # a user with a password
    subject: str | None = None  # the user's name, or a JWT's ``sub``
    scopes: tuple[str, ...] = ()  # a JWT's scopes

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise Forbidden(f"this needs the {role} role; you have {self.role}")

    @property
    def administers_all(self) -> bool:
        """Admins of the ``default`` namespace administer the installation: every namespace.
        Admins of any other namespace administer only their own."""
        return self.role == "admin" and self.namespace == DEFAULT_NAMESPACE

    def require_admin_of(self, namespace: str) -> None:
        self.require("admin")
        if namespace != self.namespace and not self.administers_all:
            raise Forbidden(
                f"an admin of namespace '{self.namespace}' administers only that namespace"
            )

    @property
    def admin_scope(self) -> int | None:
        """The namespace id lists of keys, users and JWKS are limited to (None: all)."""
        return None if self.administers_all else self.namespace_id


class TenancyService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Principal]] = {}
        from legato.service.identity import IdentityService

        self.identity: IdentityService = IdentityService(db)

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing credentials: send 'Authorization: Bearer <api key>'")
        digest = hash_secret(token)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        async with self.db.read() as conn:
            row = await find_key(conn, digest)
        if row is None or not hmac.compare_digest(row.secret_hash, digest):
            raise Unauthorized("invalid or revoked API key")
        principal = Principal(row.namespace_id, row.namespace, row.role, row.id, row.name)
        self._cache[digest] = (now + _CACHE_SECONDS, principal)
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
                if await find_key(tx.conn, hash_secret(admin_key)) is None:
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
            await insert_key(tx.conn, ns.id, "admin", "admin", hash_secret(secret), now)
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
            row = await insert_key(tx.conn, ns.id, name, role, hash_secret(secret), now)
            return {
                "id": row.id,
                "name": name,
                "role": role,
                "namespace": ns.name,
                "key": secret,
                "created_at": now,
            }

        return await self.db.write(tx_fn)

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
        self, principal: Principal, name: str, limits: dict[str, int | None]
    ) -> dict[str, Any]:
        principal.require_admin_of(name)  # a new tenant: only the installation's admins

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            if await find_namespace(tx.conn, name) is not None:
                raise Conflict(f"namespace '{name}' exists already", code="namespace_exists")
            row: Any = await insert_namespace(tx.conn, name, time.time())
            values = _checked_limits(limits)
            if values:
                await update_namespace(tx.conn, row.id, values)
                row = await find_namespace(tx.conn, name)
            return _namespace_view(row)

        try:
            view = await self.db.write(tx_fn)
        except IntegrityError:  # created meanwhile by another request
            raise Conflict(f"namespace '{name}' exists already", code="namespace_exists") from None
        forget_limits(self.db.shared)
        return view

    async def update_namespace(
        self, principal: Principal, name: str, changes: dict[str, int | None]
    ) -> dict[str, Any]:
        """Sets the limits named in ``changes``; None lifts a limit."""
        principal.require_admin_of(name)

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            row = await find_namespace(tx.conn, name)
            if row is None:
                raise NotFound(f"namespace '{name}' does not exist", code="namespace_not_found")
            values = _checked_limits(changes)
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


def _namespace_view(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "max_queued_runs": row.max_queued_runs,
        "max_concurrent_runs": row.max_concurrent_runs,
        "retention_days": row.retention_days,
    }


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
