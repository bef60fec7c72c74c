"""Server-side request forgery guard for http targets.

A target URL is user input; without a guard it could point the dispatcher at the metadata
service, the broker or anything else on the private network. Addresses that are not globally
routable (loopback, link-local, private, reserved, multicast, and prefixes that translate to or
tunnel into such addresses) are refused unless a setting allows them. The HTTP client
(dispatchers/http_client.py) checks the addresses a name resolves to and connects to those
very addresses, so a name cannot pass the check and then resolve elsewhere.
"""

from __future__ import annotations

import ipaddress


class ForbiddenAddress(OSError):
    """The target resolves only to addresses the dispatcher may not call."""


# Prefixes that `ipaddress` counts as global but that must not be called: they reach another
# network by translation or tunnelling, are deprecated or reserved for special uses, or name no
# host a webhook could live on.
NOT_TARGETS = tuple(
    ipaddress.ip_network(prefix)
    for prefix in (
        "192.0.0.0/24",  # IETF protocol assignments (anycast relays, NAT helpers)
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated
        "::/96",  # IPv4-compatible IPv6, deprecated; reaches the IPv4 address inside
        "64:ff9b:1::/48",  # local-use NAT64: translated into the operator's own networks
        "fec0::/10",  # site-local, deprecated: private in practice
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing identifiers
    )
)
# IPv6 prefixes that carry an IPv4 address the packet ends up at: the IPv4 address is judged.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_forbidden(address: str) -> bool:
    ip = _destination(ipaddress.ip_address(address.split("%", 1)[0]))
    if any(ip.version == net.version and ip in net for net in NOT_TARGETS):
        return True
    return not ip.is_global or ip.is_multicast


def _destination(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 address is translated or tunnelled to, else itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def literal_address(host: str) -> str | None:
    """The host if it is an IP literal (which is connected to without resolving)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
