"""Which addresses outbound requests (webhooks, ``notify_url``, ``uses: http``) may reach.

Only public unicast addresses, unless the installation allows private ones (all of them, or
some networks). Checked on the resolved address, so a name that resolves to a private address
is refused like the address itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Address", "AddressPolicy", "Network", "address_kind"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: Address) -> str | None:
    """What makes ``address`` non-public ("loopback", "private", …); None when it is public."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return address_kind(inner)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """The installation's rule: public addresses, plus private ones it allows."""

    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, allow_private: bool, networks: Iterable[Network] = ()) -> AddressPolicy:
        return cls(allow_private, tuple(networks))

    @property
    def allows_everything(self) -> bool:
        return self.allow_private

    def refusal(self, address: Address) -> str | None:
        """Why requests may not go to ``address`` (None: they may)."""
        if self.allow_private:
            return None
        inner = _embedded_ipv4(address)
        candidates = [address] if inner is None else [address, inner]
        if any(a in n for a in candidates for n in self.allowed_networks if a.version == n.version):
            return None
        kind = address_kind(address)
        if kind is None:
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{address} is {article} {kind} address, which outbound requests may not reach"
