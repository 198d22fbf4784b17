"""The installation's settings: read from ``LEGATO_*`` environment variables once, at start-up.

The server, the API and the workers build one :class:`Settings` at their composition root and
pass its values down; nothing below reads the environment. Secrets (the admin key, the
database URL with its password) are then removed from the process environment, so step code
running in the worker never finds them there.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Network", "Settings", "is_secret_variable", "scrub_secrets", "seal_environment"]

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
    #: this process fires schedules and releases delayed runs (any number of processes may)
    scheduler: bool = True

    #: failed logins of one user, and from one address, before a lockout
    login_max_failures: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(50, ge=1)
    #: the window failures are counted in, the first lockout and the longest one (seconds)
    login_window_seconds: float = Field(900.0, gt=0)
    login_lockout_seconds: float = Field(60.0, gt=0)
    login_max_lockout_seconds: float = Field(3600.0, gt=0)
    #: password hashes computed at once (each takes a core for ~50 ms)
    password_hash_concurrency: int = Field(2, ge=1)
    #: how often a step whose worker was lost is taken over before it fails
    max_takeovers: int = Field(5, ge=1)
    #: the largest request body, and the largest workflow definition (bytes)
    max_body_bytes: int = Field(1 << 20, ge=1)
    max_definition_bytes: int = Field(8 << 20, ge=1)
    #: how long a dashboard session lasts
    ui_session_hours: float = Field(8.0, gt=0)
    #: SQLite's ``synchronous``: NORMAL survives a killed process, FULL also a power cut
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    #: the level of the server's log
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("sqlite_synchronous", "log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

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


_SEALED_FD = "LEGATO_SEALED_SECRETS_FD"


def seal_environment() -> None:
    """Start this process again without the installation's secrets in its environment.

    Scrubbing ``os.environ`` is not enough on Linux: ``/proc/<pid>/environ`` keeps the
    environment a process was started with, and a shell step running as the same user could
    read it there. So a server process that was given secrets in its environment hands them
    to a fresh image of itself through a pipe (readable once, by it alone) and ``exec``s
    itself without them; the new image puts them back in its (heap) environment, where the
    settings read them before :func:`scrub_secrets` removes them for good."""
    fd = os.environ.pop(_SEALED_FD, None)
    if fd is not None:
        with os.fdopen(int(fd), "rb") as pipe:
            os.environ.update(json.loads(pipe.read()))
        return
    secrets = {name: value for name, value in os.environ.items() if is_secret_variable(name)}
    if not secrets or not sys.platform.startswith("linux"):
        return
    payload = json.dumps(secrets).encode()
    read, write = os.pipe()
    if len(payload) >= 65536:  # more than a pipe holds before a reader takes it: keep as is
        os.close(read)
        os.close(write)
        return
    os.write(write, payload)
    os.close(write)
    os.set_inheritable(read, True)
    env = {name: value for name, value in os.environ.items() if name not in secrets}
    env[_SEALED_FD] = str(read)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
