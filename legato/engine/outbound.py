"""The guard on every outbound request: webhook deliveries, ``notify_url`` and ``http`` steps.

A request goes out only to a host whose every resolved address the installation allows (see
``legato.model.addresses``), and to the address that was checked: the transport resolves the
name once, checks, and connects to that address (TLS still verifies the name), so a DNS answer
that changes between the check and the connection cannot redirect it. Each redirect hop passes
through the transport again, so it is checked too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

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
        Raises ``OutboundRefused`` when the host or any of its addresses is not allowed."""
        if self.policy.allows_everything:
            return None
        refusal = self._name_refusal(host)
        if refusal is not None:
            raise OutboundRefused(refusal)
        try:
            found = await self.addresses(host, port)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
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

    def transport(self, inner: httpx.AsyncBaseTransport | None = None) -> GuardedTransport:
        return GuardedTransport(self, inner)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks and pins the destination of every request."""

    def __init__(self, guard: OutboundGuard, inner: httpx.AsyncBaseTransport | None = None):
        self._guard = guard
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await self._guard.pinned(url.host, port)
        if address is not None:
            extensions: dict[str, Any] = dict(request.extensions)
            if url.scheme == "https" and _literal(url.host) is None:
                extensions["sni_hostname"] = url.host  # certificates are checked for the name
            request.url = url.copy_with(host=str(address))
            request.extensions = extensions
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
