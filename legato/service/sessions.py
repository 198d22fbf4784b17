"""Browser sessions of the dashboard: a signed, expiring token in a cookie.

The token names the API key or user it was opened with (never a secret), the namespace an
installation admin chose to look at, and the session's CSRF token. It is signed with a
per-installation secret kept in the store, so every API process of the installation accepts
it; each use checks again (at most every few seconds) that the key or user is still valid.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from legato.model.errors import Forbidden, NotFound, Unauthorized
from legato.service.principal import DEFAULT_NAMESPACE, Principal
from legato.store import sessions as store
from legato.store.database import Database, Tx
from legato.store.tenancy import find_namespace

__all__ = ["Session", "SessionService"]

_SECRET_SETTING = "dashboard_session_secret"
_SALT = "legato.dashboard.session"
_RECHECK_SECONDS = 10.0
_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Session:
    #: who acts: the signed-in key or user, in the namespace chosen (installation admins)
    principal: Principal
    #: who signed in, in their own namespace
    home: Principal
    csrf: str
    expires_at: float


class SessionService:
    def __init__(self, db: Database, lifetime: float = 8 * 3600) -> None:
        self.db = db
        #: how long a session lasts (seconds)
        self.lifetime = int(lifetime)
        self._signer: URLSafeTimedSerializer | None = None
        self._checked: dict[str, tuple[float, Session]] = {}

    async def _serializer(self) -> URLSafeTimedSerializer:
        if self._signer is None:
            self._signer = URLSafeTimedSerializer(await self._secret(), salt=_SALT)
        return self._signer

    async def _secret(self) -> str:
        async with self.db.read() as conn:
            found = await store.read_setting(conn, DEFAULT_NAMESPACE, _SECRET_SETTING)
        if isinstance(found, str):
            return found

        async def tx_fn(tx: Tx) -> str:
            # first use: make it, unless another process just did
            current = await store.read_setting(tx.conn, DEFAULT_NAMESPACE, _SECRET_SETTING)
            if isinstance(current, str):
                return current
            made = secrets.token_urlsafe(48)
            if not await store.write_setting(tx.conn, DEFAULT_NAMESPACE, _SECRET_SETTING, made):
                raise NotFound(f"namespace '{DEFAULT_NAMESPACE}' does not exist")
            return made

        return await self.db.write(tx_fn)

    async def issue(self, principal: Principal) -> tuple[str, Session]:
        """A new session for a key or a user (not a JWT: those are for programs)."""
        if principal.key_id is None and principal.user_id is None:
            raise Forbidden("only an API key or a user can sign in to the dashboard")
        claims = {"k": principal.key_id, "u": principal.user_id, "c": secrets.token_urlsafe(24)}
        token = (await self._serializer()).dumps(claims)
        return token, await self.open(token)

    async def switch(self, session: Session, namespace: str) -> str:
        """A token for the same sign-in looking at ``namespace`` (installation admins only)."""
        if namespace != session.home.namespace:
            session.home.require_admin_of(namespace)
            async with self.db.read() as conn:
                if await find_namespace(conn, namespace) is None:
                    raise NotFound(
                        f"namespace '{namespace}' does not exist", code="namespace_not_found"
                    )
        claims = {
            "k": session.home.key_id,
            "u": session.home.user_id,
            "c": session.csrf,
            "n": namespace,
        }
        return (await self._serializer()).dumps(claims)

    async def open(self, token: str) -> Session:
        """The session of a cookie's token; 401 when it is forged, expired or its key or user
        is no longer valid."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        hit = self._checked.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        lifetime = self.lifetime
        serializer = await self._serializer()
        try:
            claims, signed_at = serializer.loads(token, max_age=lifetime, return_timestamp=True)
        except SignatureExpired:
            raise Unauthorized(
                "the session has expired: sign in again", code="session_expired"
            ) from None
        except BadSignature:
            raise Unauthorized("invalid session", code="invalid_session") from None
        home = await self._home(claims)
        principal = await self._acting(home, claims.get("n"))
        session = Session(principal, home, str(claims["c"]), signed_at.timestamp() + lifetime)
        if len(self._checked) >= _CACHE_SIZE:
            self._checked.clear()
        self._checked[digest] = (min(now + _RECHECK_SECONDS, session.expires_at), session)
        return session

    async def _home(self, claims: dict[str, Any]) -> Principal:
        async with self.db.read() as conn:
            if claims.get("k") is not None:
                key = await store.active_key(conn, int(claims["k"]))
                if key is not None:
                    return Principal(key.namespace_id, key.namespace, key.role, key.id, key.name)
            elif claims.get("u") is not None:
                user = await store.active_user(conn, int(claims["u"]))
                if user is not None:
                    return Principal(
                        user.namespace_id,
                        user.namespace,
                        user.role,
                        name=user.username,
                        user_id=user.id,
                        subject=user.username,
                    )
        raise Unauthorized(
            "the key or user of this session is no longer valid", code="session_revoked"
        )

    async def _acting(self, home: Principal, namespace: Any) -> Principal:
        if not isinstance(namespace, str) or namespace == home.namespace:
            return home
        if not home.administers_all:
            raise Unauthorized("invalid session", code="invalid_session")
        async with self.db.read() as conn:
            row = await find_namespace(conn, namespace)
        if row is None:
            return home
        return Principal(
            row.id,
            row.name,
            home.role,
            home.key_id,
            home.name,
            user_id=home.user_id,
            subject=home.subject,
        )
