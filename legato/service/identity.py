"""Identities beyond API keys: users with passwords (argon2id) and JWT bearer tokens verified
against the JWKS a namespace registered under an identifier GUID."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from legato.model.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from legato.model.times import iso
from legato.service.flights import Flights
from legato.service.login_throttle import LoginPolicy, LoginThrottle
from legato.service.principal import CREDENTIALS_TOPIC, ROLES, Principal
from legato.store.database import Database, Tx
from legato.store.errors import DuplicateKey
from legato.store.identities import (
    delete_jwks,
    delete_user,
    find_jwks,
    find_jwks_by_audience,
    find_jwks_by_issuer,
    find_user,
    find_users,
    insert_jwks,
    insert_user,
    list_jwks,
    list_users,
)
from legato.store.tenancy import find_namespace, insert_namespace

__all__ = ["JWT_ALGORITHMS", "MIN_PASSWORD", "IdentityService"]

#: Asymmetric signatures only: ``none`` and the HMAC family (a shared secret) are refused.
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
#: A verified password spares the hash for 30 s; the user is looked up again each second, so a
#: deleted user or a changed password is refused within a second (at once after a wake-up).
_PASSWORD_CACHE_SECONDS = 30.0
_USER_CHECK_SECONDS = 1.0
_PASSWORD_CACHE_SIZE = 10_000
_JWKS_CACHE_SECONDS = 10.0
_TOKEN_CACHE_SIZE = 10_000
_LEEWAY_SECONDS = 30
_KEY_TYPES = {"RSA": ("RS256", "RS384", "RS512", "PS256"), "EC": ("ES256", "ES384")}


def _bad_credentials() -> Unauthorized:
    return Unauthorized("wrong user name or password", code="bad_credentials")


def _invalid_token(detail: str) -> Unauthorized:
    return Unauthorized(detail, code="invalid_token")


@dataclass
class _Verified:
    """A (user, password) pair verified by its hash, cached under an HMAC of the pair."""

    hash_until: float
    checked_until: float
    principal: Principal
    password_hash: str


@dataclass(frozen=True)
class _VerifiedToken:
    """A JWT verified against a registration as the JWKS cache holds it (``source``, that
    cache's entry): the same token verifies the same way while that entry stays and the token
    has not expired."""

    source: tuple[float, list[Any]]
    source_key: str
    valid_until: float  # epoch seconds: its ``exp`` plus the leeway
    principal: Principal


@dataclass
class _Registration:
    """A registered JWKS, parsed once and kept a few seconds."""

    identifier: str
    namespace_id: int
    namespace: str
    role: str
    issuer: str | None
    audience: str | None
    required_scope: str | None
    keys: list[dict[str, Any]]
    parsed: dict[tuple[int, str], jwt.PyJWK] = field(default_factory=dict)

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        usable = [
            (i, k)
            for i, k in enumerate(self.keys)
            if k.get("use", "sig") == "sig" and alg in _KEY_TYPES.get(str(k.get("kty")), ())
        ]
        if kid is not None:
            usable = [(i, k) for i, k in usable if k.get("kid") == kid]
            if not usable:
                raise Unauthorized(
                    f"no key with kid '{kid}' for {alg} is registered under this identifier",
                    code="unknown_key",
                )
        elif len(usable) != 1:
            raise Unauthorized(
                "the token names no key (kid) and the JWKS holds more than one", code="unknown_key"
            )
        index, data = usable[0]
        if data.get("alg") not in (None, alg):
            raise _invalid_token(f"the key '{kid}' is registered for {data['alg']}, not {alg}")
        if (index, alg) not in self.parsed:
            try:
                self.parsed[(index, alg)] = jwt.PyJWK(data, algorithm=alg)
            except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
                raise _invalid_token(f"the registered key cannot verify {alg}: {exc}") from None
        return self.parsed[(index, alg)]


class IdentityService:
    def __init__(self, db: Database, login: LoginPolicy | None = None) -> None:
        self.db = db
        self._hasher = PasswordHasher()  # argon2id, the library's (RFC 9106) defaults
        self._dummy_hash: str | None = None
        self.throttle = LoginThrottle(db, login or LoginPolicy())
        # verified (user, password) pairs: an HMAC under a per-process secret, never the password
        self._cache_secret = secrets.token_bytes(32)
        self._password_cache: dict[bytes, _Verified] = {}
        self._verifying: Flights[Principal | None] = Flights()
        self._user_checks: Flights[Any] = Flights()
        self._jwks_cache: dict[str, tuple[float, list[_Registration]]] = {}
        # verified JWTs, under an HMAC of (identifier, token)
        self._token_cache: dict[bytes, _VerifiedToken] = {}
        self._changed = db.subscribe(CREDENTIALS_TOPIC)

    def close(self) -> None:
        self.throttle.close()

    def _forget_if_changed(self) -> None:
        """Drop the caches when a user, key or JWKS changed here or in another process."""
        if self._changed.is_set():
            self._changed.clear()
            self._password_cache.clear()
            self._jwks_cache.clear()
            self._token_cache.clear()

    # -- users ---------------------------------------------------------------------------

    async def create_user(
        self,
        principal: Principal,
        username: str,
        password: str,
        role: str,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        principal.require("admin")
        _check_role(role)
        if not username.strip() or ":" in username or username != username.strip():
            raise InvalidInput(
                "username must be non-empty, without ':' or surrounding spaces",
                errors=[{"path": "username", "message": "invalid user name"}],
            )
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidInput(
                f"password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters",
                errors=[{"path": "password", "message": "too short or too long"}],
            )
        password_hash = await self.throttle.hash_work(self._hasher.hash, password)

        async def tx_fn(tx: Tx) -> dict[str, Any]:
            # one name, one user: Basic and login/password carry no namespace
            if await find_users(tx.conn, username):
                raise Conflict(f"user '{username}' exists already", code="user_exists")
            now = time.time()
            ns_name = namespace or principal.namespace
            principal.require_admin_of(ns_name)
            ns = await find_namespace(tx.conn, ns_name)
            if ns is None:
                ns = await insert_namespace(tx.conn, ns_name, now)
            row = await insert_user(tx.conn, ns.id, username, password_hash, role, now)
            return _user_view(row, ns.name)

        try:
            return await self.db.write(tx_fn)
        except DuplicateKey:
            raise Conflict(f"user '{username}' exists already", code="user_exists") from None

    async def users(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require("admin")
        async with self.db.read() as conn:
            rows = await list_users(conn, principal.admin_scope)
        return [_user_view(r, r.namespace) for r in rows]

    async def delete_user(self, principal: Principal, user_id: int) -> None:
        principal.require("admin")

        async def tx_fn(tx: Tx) -> bool:
            deleted = await delete_user(tx.conn, user_id, principal.admin_scope)
            if deleted:
                tx.wake(CREDENTIALS_TOPIC)  # every process drops its verified passwords
            return deleted

        if not await self.db.write(tx_fn):
            raise NotFound(f"user {user_id} does not exist", code="user_not_found")

    async def authenticate_password(
        self, username: str, password: str, address: str | None = None
    ) -> Principal:
        """A user's name and password (HTTP Basic, or ``login``/``password`` parameters);
        ``address`` is the client's, for throttling."""
        if not username or not password or len(password) > MAX_PASSWORD:
            raise _bad_credentials()
        self._forget_if_changed()
        digest = hmac.new(
            self._cache_secret,
            len(username).to_bytes(4, "big") + username.encode() + password.encode(),
            hashlib.sha256,
        ).digest()
        known = self._password_cache.get(digest)
        verified = known is not None and known.hash_until > time.monotonic()
        # a locked-out user is refused even with the right password: no guess is checked
        had_failures = await self.throttle.check(username, address, verified=verified)
        principal = await self._cached_password(digest)
        if principal is None:  # concurrent logins with one pair share one hash check
            principal = await self._verifying.run(
                digest, lambda: self._verify_password(digest, username, password)
            )
        if principal is None:
            await self.throttle.failed(username, address)
            raise _bad_credentials()
        if had_failures:
            await self.throttle.succeeded(username)
        return principal

    async def _cached_password(self, digest: bytes) -> Principal | None:
        hit = self._password_cache.get(digest)
        now = time.monotonic()
        if hit is None or hit.hash_until <= now:
            return None
        if hit.checked_until <= now:  # still there, with the same password and role?
            user_id = hit.principal.user_id or 0
            # the requests that find the check lapsed meanwhile share its read
            row = await self._user_checks.run(user_id, lambda: self._user(user_id))
            if (
                row is None
                or row.password_hash != hit.password_hash
                or row.role != hit.principal.role
            ):
                self._password_cache.pop(digest, None)
                return None
            hit.checked_until = now + _USER_CHECK_SECONDS
        return hit.principal

    async def _user(self, user_id: int) -> Any:
        async with self.db.read() as conn:
            return await find_user(conn, user_id)

    async def _verify_password(
        self, digest: bytes, username: str, password: str
    ) -> Principal | None:
        async with self.db.read() as conn:
            rows = await find_users(conn, username)
        if not rows:
            # same cost as a real check, so a wrong name and a wrong password look alike
            await self.throttle.hash_work(self._verify, await self._dummy(), password)
            return None
        for row in rows:
            if await self.throttle.hash_work(self._verify, row.password_hash, password):
                principal = Principal(
                    row.namespace_id,
                    row.namespace,
                    row.role,
                    name=row.username,
                    user_id=row.id,
                    subject=row.username,
                )
                now = time.monotonic()
                if len(self._password_cache) >= _PASSWORD_CACHE_SIZE:
                    self._password_cache = {
                        k: v for k, v in self._password_cache.items() if v.hash_until > now
                    }
                    if len(self._password_cache) >= _PASSWORD_CACHE_SIZE:
                        self._password_cache.clear()
                self._password_cache[digest] = _Verified(
                    now + _PASSWORD_CACHE_SECONDS,
                    now + _USER_CHECK_SECONDS,
                    principal,
                    row.password_hash,
                )
                return principal
        return None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.throttle.hash_work(
                self._hasher.hash, secrets.token_urlsafe(16)
            )
        return self._dummy_hash

    # -- JWKS ----------------------------------------------------------------------------

    async def register_jwks(
        self,
        principal: Principal,
        identifier: str,
        keys: dict[str, Any],
        *,
        role: str = "viewer",
        audience: str,
        issuer: str | None = None,
        required_scope: str | None = None,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Register a JWKS under an identifier for a namespace. Its tokens must name
        ``audience`` (``aud``): that binds them to this registration, so that one identity
        provider registered in two namespaces cannot let one tenant's tokens into the other."""
        principal.require("admin")
        _check_role(role)
        if not audience.strip():
            raise InvalidInput(
                "audience is required: the 'aud' the tokens of this namespace carry",
                errors=[{"path": "audience", "message": "required"}],
            )
        guid = _guid(identifier)
        if guid is None:
            raise InvalidInput(
                "identifier must be a GUID",
                errors=[{"path": "identifier", "message": "not a GUID"}],
            )
        _check_jwks(keys)

        async def tx_fn(tx: Tx) -> Any:
            if await find_jwks(tx.conn, guid) is not None:
                raise Conflict(
                    f"a JWKS is registered under {guid} already", code="identifier_exists"
                )
            now = time.time()
            ns_name = namespace or principal.namespace
            principal.require_admin_of(ns_name)
            for other in await find_jwks_by_audience(tx.conn, issuer, audience):
                if other.namespace != ns_name:
                    # the same tokens would open both namespaces
                    raise Conflict(
                        "another namespace registered this issuer and audience already: "
                        "give each namespace its own audience",
                        code="audience_in_use",
                    )
            ns = await find_namespace(tx.conn, ns_name)
            if ns is None:
                ns = await insert_namespace(tx.conn, ns_name, now)
            row = await insert_jwks(
                tx.conn,
                ns.id,
                {
                    "identifier": guid,
                    "keys": {"keys": keys["keys"]},
                    "issuer": issuer,
                    "audience": audience,
                    "required_scope": required_scope,
                    "role": role,
                    "created_at": now,
                },
            )
            tx.wake(CREDENTIALS_TOPIC)
            return _jwks_view(row, ns.name)

        try:
            view = await self.db.write(tx_fn)
        except DuplicateKey:
            raise Conflict(
                f"a JWKS is registered under {guid} already", code="identifier_exists"
            ) from None
        self._jwks_cache.clear()
        return view  # type: ignore[no-any-return]

    async def jwks(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require("admin")
        async with self.db.read() as conn:
            rows = await list_jwks(conn, principal.admin_scope)
        return [_jwks_view(r, r.namespace) for r in rows]

    async def get_jwks(self, principal: Principal, identifier: str) -> dict[str, Any]:
        principal.require("admin")
        guid = _guid(identifier)
        row = None
        if guid is not None:
            async with self.db.read() as conn:
                row = await find_jwks(conn, guid)
        if row is None or (principal.admin_scope not in (None, row.namespace_id)):
            raise NotFound(f"no JWKS is registered under '{identifier}'", code="jwks_not_found")
        return _jwks_view(row, row.namespace)

    async def delete_jwks(self, principal: Principal, identifier: str) -> None:
        principal.require("admin")
        guid = _guid(identifier)

        async def tx_fn(tx: Tx) -> bool:
            deleted = guid is not None and await delete_jwks(tx.conn, guid, principal.admin_scope)
            if deleted:
                tx.wake(CREDENTIALS_TOPIC)
            return deleted

        if not await self.db.write(tx_fn):
            raise NotFound(f"no JWKS is registered under '{identifier}'", code="jwks_not_found")
        self._jwks_cache.clear()

    async def authenticate_jwt(self, token: str, identifier: str | None) -> Principal:
        """A bearer JWT, verified with the JWKS registered under ``identifier`` (or, without
        one, the only JWKS registered for the token's issuer). A token verified lately is
        not verified again while the registration it was verified with is the one kept."""
        self._forget_if_changed()
        digest = hmac.new(
            self._cache_secret,
            (f"i:{identifier}" if identifier is not None else "n:").encode()
            + b"\n"
            + token.encode(),
            hashlib.sha256,
        ).digest()
        hit = self._token_cache.get(digest)
        if hit is not None and time.time() < hit.valid_until:
            source = self._jwks_cache.get(hit.source_key)
            if source is hit.source and source[0] > time.monotonic():
                return hit.principal
        principal, verified = await self._verify_jwt(token, identifier)
        if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
            self._token_cache.clear()
        self._token_cache[digest] = verified
        return principal

    async def _verify_jwt(
        self, token: str, identifier: str | None
    ) -> tuple[Principal, _VerifiedToken]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid_token("the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in JWT_ALGORITHMS:
            raise _invalid_token(
                f"algorithm {alg!r} is not accepted; use one of {', '.join(JWT_ALGORITHMS)}"
            )
        registration, source_key = await self._registration(token, identifier)
        source = self._jwks_cache.get(source_key)
        if registration.audience is None:
            # registered before audiences were required: its tokens are bound to no namespace
            raise _invalid_token(
                "the JWKS registered under this identifier names no audience; "
                "register it again with one"
            )
        kid = header.get("kid")
        key = registration.key_for(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=registration.audience,
                issuer=registration.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "aud"], "verify_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid_token(f"the token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise _invalid_token("the token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise _invalid_token("the token comes from another issuer") from None
        except jwt.InvalidSignatureError:
            raise _invalid_token("the token's signature does not verify") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _invalid_token(f"the token is not valid: {exc}") from None
        scopes = _scopes(claims)
        if registration.required_scope and registration.required_scope not in scopes:
            raise Forbidden(
                f"the token lacks the scope '{registration.required_scope}'",
                code="insufficient_scope",
            )
        subject = claims.get("sub")
        subject = str(subject) if subject is not None else None
        principal = Principal(
            registration.namespace_id,
            registration.namespace,
            registration.role,
            name=subject or "",
            subject=subject,
            scopes=scopes,
        )
        valid_until = float(claims["exp"]) + _LEEWAY_SECONDS
        # a source the cache no longer holds (cleared meanwhile) keeps no token
        kept = (0.0, []) if source is None else source
        return principal, _VerifiedToken(kept, source_key, valid_until, principal)

    async def _registration(self, token: str, identifier: str | None) -> tuple[_Registration, str]:
        """The registration the token is verified with, and its key in the JWKS cache."""
        if identifier is not None:
            guid = _guid(identifier)
            if guid is None:
                raise Unauthorized(
                    "the Identifier header must be a GUID registered with a JWKS",
                    code="unknown_key",
                )
            found = await self._cached(guid)
            if not found:
                raise Unauthorized(f"no JWKS is registered under {guid}", code="unknown_key")
            return found[0], guid
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise _invalid_token("the bearer token is not a well-formed JWT") from None
        found = await self._cached(f"iss:{issuer}") if isinstance(issuer, str) else []
        if len(found) != 1:
            raise _invalid_token("send the Identifier header naming the JWKS of this token")
        return found[0], f"iss:{issuer}"

    async def _cached(self, key: str) -> list[_Registration]:
        now = time.monotonic()
        hit = self._jwks_cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        async with self.db.read() as conn:
            if key.startswith("iss:"):
                rows = await find_jwks_by_issuer(conn, key[4:])
            else:
                one = await find_jwks(conn, key)
                rows = [one] if one is not None else []
        found = [
            _Registration(
                identifier=r.identifier,
                namespace_id=r.namespace_id,
                namespace=r.namespace,
                role=r.role,
                issuer=r.issuer,
                audience=r.audience,
                required_scope=r.required_scope,
                keys=list((r.keys or {}).get("keys", [])),
            )
            for r in rows
        ]
        if len(self._jwks_cache) > 1000:
            self._jwks_cache.clear()
        self._jwks_cache[key] = (now + _JWKS_CACHE_SECONDS, found)
        return found


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}",
            errors=[{"path": "role", "message": "unknown role"}],
        )


def _guid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return None


def _check_jwks(document: dict[str, Any]) -> None:
    keys = document.get("keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidInput(
            'keys must be a JWKS document: {"keys": [ ...public JWKs ]}',
            errors=[{"path": "keys.keys", "message": "a non-empty list of JWKs"}],
        )
    for index, key in enumerate(keys):
        path = f"keys.keys[{index}]"

        def bad(message: str, path: str = path) -> InvalidInput:
            return InvalidInput(f"{path}: {message}", errors=[{"path": path, "message": message}])

        if not isinstance(key, dict):
            raise bad("a JWK must be an object")
        kty = key.get("kty")
        if kty not in _KEY_TYPES:
            raise bad("only RSA and EC public keys are accepted (kty RSA or EC)")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi")):
            raise bad("this is a private key; register the public key only")
        alg = key.get("alg")
        if alg is not None and alg not in _KEY_TYPES[kty]:
            raise bad(f"alg {alg!r} is not accepted for a {kty} key")
        try:
            jwt.PyJWK(key, algorithm=alg)
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise bad(f"not a valid JWK: {exc}") from None


def _scopes(claims: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found += value.split()
        elif isinstance(value, list):
            found += [str(v) for v in value]
    return tuple(dict.fromkeys(found))


def _user_view(row: Any, namespace: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "role": row.role,
        "namespace": namespace,
        "created_at": iso(row.created_at),
    }


def _jwks_view(row: Any, namespace: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "identifier": row.identifier,
        "namespace": namespace,
        "role": row.role,
        "issuer": row.issuer,
        "audience": row.audience,
        "required_scope": row.required_scope,
        "keys": row.keys,
        "created_at": iso(row.created_at),
    }
