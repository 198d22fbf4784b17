"""The installation's settings: read from ``LEGATO_*`` environment variables once, at start-up.

The server, the API and the workers build one :class:`Settings` at their composition root and
pass its values down; nothing below reads the environment. Secrets (the admin key, the
database URL with its password) are then removed from the process environment, so step code
running in the worker never finds them there.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Network", "Settings", "is_secret_variable", "scrub_secrets"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "DATABASE_URL")
_OTHER_SECRETS = frozenset({"PGPASSWORD", "PGPASSFILE", "DATABASE_URL"})


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Each field is the environment variable ``LEGATO_<NAME>``; lists are comma-separated."""

    model_config = SettingsConfigDict(env_prefix="LEGATO_", frozen=True, extra="ignore")

    #: the admin key of namespace ``default``, created on first start; needed only then
    admin_key: SecretStr | None = None
    #: how long a worker's claim on a step lasts without a heartbeat
    lease_seconds: float = Field(30.0, gt=0)
    #: module prefixes whose functions every namespace may call from ``uses: python``
    step_modules: Annotated[tuple[str, ...], NoDecode] = ()
    #: the namespaces a worker (``legato worker``, the worker of ``serve``) serves (empty: all)
    worker_namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    #: let webhooks, ``notify_url`` and ``http`` steps reach private and loopback addresses
    allow_private_urls: bool = False
    #: networks outbound requests may reach although private, e.g. ``10.0.0.0/8``
    allowed_cidrs: Annotated[tuple[Network, ...], NoDecode] = ()

    @field_validator("step_modules", "worker_namespaces", "allowed_cidrs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    def without_admin_key(self) -> Settings:
        """The settings a running process keeps once bootstrap has used the admin key."""
        return self.model_copy(update={"admin_key": None})


def is_secret_variable(name: str) -> bool:
    """Whether an environment variable holds an installation secret."""
    upper = name.upper()
    if upper in _OTHER_SECRETS:
        return True
    return upper.startswith("LEGATO_") and any(word in upper for word in _SECRET_WORDS)


def scrub_secrets(environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """Remove the installation's secrets from the environment (after they were read);
    answers the names removed."""
    env = os.environ if environ is None else environ
    names = sorted(n for n in env if is_secret_variable(n))
    for name in names:
        env.pop(name, None)
    return names
