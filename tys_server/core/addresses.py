"""IP addresses as callers and feeds give them, and which of them are private. Pure.

"Private" means RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 shared address space
(100.64/10, used for carrier-grade NAT and by some venue Wi-Fi) and IPv6 ULA (fc00::/7).
Loopback, link-local, documentation and public addresses are not private. An IPv4-mapped
IPv6 address (``::ffff:10.0.0.1``, as dual-stack sockets report IPv4 peers) is read as
its IPv4 address.
"""

from __future__ import annotations

import ipaddress

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # RFC 6598 shared address space (CGNAT)
    "fc00::/7",  # RFC 4193 unique local addresses
))


def read_address(text: object) -> IpAddress | None:
    """The address in text (IPv4-mapped IPv6 read as IPv4), None when it is not one."""
    if not isinstance(text, str) or len(text) > 64 or "%" in text:  # no IPv6 zone ids
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_ip(text: object) -> str | None:
    """The canonical text of an IPv4 or IPv6 address given by an API caller, or None."""
    address = read_address(text)
    return None if address is None else str(address)


def is_private(address: IpAddress) -> bool:
    """True for the private ranges of the module docstring."""
    return any(address in network for network in _PRIVATE_NETWORKS
               if network.version == address.version)


def private_ipv4(text: object) -> str | None:
    """The canonical text of the private IPv4 address in text, else None (a feed's ipv4)."""
    address = read_address(text)
    if isinstance(address, ipaddress.IPv4Address) and is_private(address):
        return str(address)
    return None


def is_private_ip(ip: str) -> bool:
    """True when ip is the text of a private address."""
    address = read_address(ip)
    return address is not None and is_private(address)
