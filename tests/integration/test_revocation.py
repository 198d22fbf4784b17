"""A revoked key, a deleted user and a removed JWKS are refused by every process within a
second: at once after the wake-up on PostgreSQL (LISTEN/NOTIFY), within the cache's second on
SQLite (processes sharing a file have no wake-ups between them)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import pytest

from legato.model.errors import Unauthorized
from legato.runtime import Legato
from legato.service.principal import CREDENTIALS_TOPIC
from legato.store.database import Tx
from legato.store.identities import insert_jwks
from legato.store.tenancy import find_namespace

ADMIN_KEY = "lg_test_admin_key_0123456789"
PASSWORD = "correct horse battery"


@pytest.fixture
async def other(legato: Legato) -> AsyncIterator[Legato]:
    """A second process on the same database: its own Database, caches and listener."""
    app = Legato(legato.database_url)
    await app.open()
    try:
        yield app
    finally:
        await app.close()


async def _until_seen(legato: Legato, woken: asyncio.Event) -> None:
    if legato.db.is_sqlite:
        await asyncio.sleep(1.05)  # the longest a process trusts what it checked
    else:
        await asyncio.wait_for(woken.wait(), 5)


async def test_a_revoked_key_is_refused_by_another_process(legato: Legato, other: Legato) -> None:
    admin = await legato.tenancy.authenticate(ADMIN_KEY)
    key = await legato.tenancy.create_key(admin, "leaked", "operator")
    seen = await other.tenancy.authenticate(key["key"])  # now cached by the other process
    assert (seen.key_id, seen.role) == (key["id"], "operator")
    woken = other.db.subscribe(CREDENTIALS_TOPIC)

    await legato.tenancy.revoke_key(admin, key["id"])
    with pytest.raises(Unauthorized):  # this process: at once
        await legato.tenancy.authenticate(key["key"])
    await _until_seen(legato, woken)
    with pytest.raises(Unauthorized, match="invalid or revoked API key"):
        await other.tenancy.authenticate(key["key"])


async def test_a_deleted_user_is_refused_by_another_process(legato: Legato, other: Legato) -> None:
    admin = await legato.tenancy.authenticate(ADMIN_KEY)
    user = await legato.tenancy.identity.create_user(admin, "ops", PASSWORD, "operator")
    seen = await other.tenancy.identity.authenticate_password("ops", PASSWORD)
    assert seen.user_id == user["id"]
    assert await other.tenancy.identity.authenticate_password("ops", PASSWORD) == seen  # cached
    woken = other.db.subscribe(CREDENTIALS_TOPIC)

    await legato.tenancy.identity.delete_user(admin, user["id"])
    await _until_seen(legato, woken)
    with pytest.raises(Unauthorized, match="wrong user name or password"):
        await other.tenancy.identity.authenticate_password("ops", PASSWORD)


async def test_a_jwks_registered_without_audience_is_refused(legato: Legato) -> None:
    """Registrations from before audiences were required bind their tokens to no namespace."""

    async def add(tx: Tx) -> None:
        conn = tx.conn
        ns = await find_namespace(conn, "default")
        assert ns is not None
        await insert_jwks(
            conn,
            ns.id,
            {
                "identifier": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                "keys": {"keys": []},
                "issuer": None,
                "audience": None,
                "required_scope": None,
                "role": "admin",
                "created_at": 0.0,
            },
        )

    await legato.db.write(add)
    token = f"{_part({'alg': 'RS256', 'typ': 'JWT'})}.{_part({'sub': 'x', 'exp': 2**31})}.c2ln"
    with pytest.raises(Unauthorized, match="names no audience; register it again with one"):
        await legato.tenancy.identity.authenticate_jwt(
            token, "7c9e6679-7425-40de-944b-e07fc1f90ae7"
        )


def _part(data: dict[str, object]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
