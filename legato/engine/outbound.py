"""The guard on every outbound request: webhook deliveries, ``notify_url`` and ``http`` steps.

A request goes out only to a host whose every resolved address the installation allows (see
``legato.model.addresses``), and to the address that was checked: the transport resolves the
name once, checks, and connects to that address (TLS still verifies the name), so a DNS answer
that changes between the check and the connection cannot redirect it. Each redirect to another
origin opens a new connection, so it is checked too. Clients using it ignore proxy settings of
the environment (a proxy would connect on their behalf, unchecked).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from legato.model.addresses import Address, AddressPolicy

__all__ = ["GuardedTransport", "OutboundGuard", "OutboundRefused"]

_RESOLVE_SECONDS = 5.0
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


class OutboundRefused(Exception):
    """The destination is not allowed; nothing was sent."""

    code = "url_not_allowed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OutboundGuard:
    def __init__(self, policy: AddressPolicy | None = None) -> None:
        self.policy = policy or AddressPolicy()

    async def addresses(self, host: str, port: int) -> list[Address]:
        """``host`` as addresses: itself when literal, else resolved (``OSError`` if not)."""
        literal = _literal(host)
        if literal is not None:
            return [literal]
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(_RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        return list(dict.fromkeys(found))

    def _name_refusal(self, host: str) -> str | None:
        """``localhost`` and its subdomains name this machine (127.0.0.1) whatever DNS says."""
        name = host.rstrip(".").lower()
        if not (name == "localhost" or name.endswith(".localhost")):
            return None
        refusal = self.policy.refusal(_LOOPBACK)
        return None if refusal is None else f"destination {host} is not allowed: {refusal}"

    def _refusal(self, host: str, found: list[Address]) -> str | None:
        for address in found:
            refusal = self.policy.refusal(address)
            if refusal is not None:
                shown = host if _literal(host) is not None else f"{host} ({address})"
                return f"destination {shown} is not allowed: {refusal}"
        return None

    async def pinned(self, host: str, port: int) -> Address | None:
        """The address to connect to (None: connect as usual, everything is allowed).
        Raises ``OutboundRefused`` when the host or any of its addresses is not allowed,
        ``OSError`` when it does not resolve."""
        if self.policy.allows_everything:
            return None
        refusal = self._name_refusal(host)
        if refusal is not None:
            raise OutboundRefused(refusal)
        try:
            found = await self.addresses(host, port)
        except (TimeoutError, UnicodeError) as exc:
            raise OSError(f"cannot resolve {host}: {exc or type(exc).__name__}") from exc
        refusal = self._refusal(host, found)
        if refusal is not None:
            raise OutboundRefused(refusal)
        return found[0]

    async def check_url(self, url: str) -> str | None:
        """Why requests to ``url`` are refused (None: not refused). A name that does not
        resolve now is not refused here: it is checked again at every request."""
        if self.policy.allows_everything:
            return None
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            return None  # the caller's syntax check reports it
        if not parsed.host:
            return None
        refusal = self._name_refusal(parsed.host)
        if refusal is not None:
            return refusal
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = await self.addresses(parsed.host, port)
        except (OSError, TimeoutError, UnicodeError):
            return None
        return self._refusal(parsed.host, found)

    def transport(self, backend: httpcore.AsyncNetworkBackend | None = None) -> GuardedTransport:
        return GuardedTransport(self, backend)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens each connection to the address the guard checked, never to another."""

    def __init__(self, guard: OutboundGuard, inner: httpcore.AsyncNetworkBackend) -> None:
        self._guard = guard
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            address = await self._guard.pinned(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return await self._inner.connect_tcp(
            host if address is None else str(address),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("outbound requests do not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, whose connections go through the guard: every new connection (the
    first request to an origin, each redirect to another) is checked and pinned. Connections
    stay pooled per host name, and TLS verifies the name, as usual."""

    def __init__(
        self, guard: OutboundGuard, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(guard, backend or httpcore.AnyIOBackend()),
        )
