"""Credentials verified lately, on both stores: a JWT is not verified again while the
registration it was verified with is the one kept, and never past its expiry; a password
verified lately skips the read of failed logins until a login fails."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import admin
from statements import counting

from legato.model.errors import Unauthorized
from legato.runtime import Legato
from legato.service import identity as identity_module

IDENTIFIER = "5c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
AUDIENCE = "legato-verified"


def _token(key: rsa.RSAPrivateKey, expires_in: float = 300) -> str:
    now = time.time()
    claims = {"sub": "someone", "aud": AUDIENCE, "iat": int(now), "exp": now + expires_in}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


async def _register(legato: Legato) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    await legato.tenancy.identity.register_jwks(
        await admin(legato),
        IDENTIFIER,
        {"keys": [{**public, "kid": "k1", "use": "sig"}]},
        audience=AUDIENCE,
    )
    return key


async def test_a_verified_jwt_is_kept_until_its_registration_changes(
    legato: Legato, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = legato.tenancy.identity
    key = await _register(legato)
    token = _token(key)
    decoded: list[Any] = []
    decode = jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        decoded.append(args)
        return decode(*args, **kwargs)

    monkeypatch.setattr(identity_module.jwt, "decode", counted)
    first = await identity.authenticate_jwt(token, IDENTIFIER)
    await asyncio.sleep(0.5)  # the registration's own wake-up (NOTIFY) clears what is kept
    await identity.authenticate_jwt(token, IDENTIFIER)
    decoded.clear()
    with counting(legato.db) as seen:
        again = await identity.authenticate_jwt(token, IDENTIFIER)
    assert again == first
    assert not decoded and seen.count == 0, seen
    await identity.delete_jwks(await admin(legato), IDENTIFIER)
    with pytest.raises(Unauthorized):
        await identity.authenticate_jwt(token, IDENTIFIER)


async def test_a_kept_jwt_is_refused_once_it_expires(
    legato: Legato, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity_module, "_LEEWAY_SECONDS", 0)
    identity = legato.tenancy.identity
    token = _token(await _register(legato), expires_in=1.0)
    await identity.authenticate_jwt(token, IDENTIFIER)
    await asyncio.sleep(1.2)
    with pytest.raises(Unauthorized) as refused:
        await identity.authenticate_jwt(token, IDENTIFIER)
    assert refused.value.code == "token_expired"


async def test_a_verified_password_skips_the_failure_read_until_a_login_fails(
    legato: Legato,
) -> None:
    identity = legato.tenancy.identity
    await identity.create_user(await admin(legato), "poller", "poller-password-1", "viewer")
    await identity.authenticate_password("poller", "poller-password-1", "10.0.0.1")
    with counting(legato.db) as kept:
        await identity.authenticate_password("poller", "poller-password-1", "10.0.0.1")
    assert kept.count == 0, kept
    with pytest.raises(Unauthorized):
        await identity.authenticate_password("poller", "a wrong guess", "10.0.0.1")
    with counting(legato.db) as after_failure:
        await identity.authenticate_password("poller", "poller-password-1", "10.0.0.1")
    assert any("login_failures" in sql for sql in after_failure.sql), after_failure
