"""Server-side request forgery guard for http targets.

A target URL is user input; without a guard it could point the dispatcher at the metadata
service, the broker or anything else on the private network. Addresses that are not globally
routable (loopback, link-local, private, reserved, multicast) are refused unless a setting allows
them. The check runs on the resolved addresses inside aiohttp's resolver, so a name cannot pass
the check and then resolve elsewhere when the connection is made.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class ForbiddenAddress(OSError):
    """The target resolves only to addresses the dispatcher may not call."""


def is_forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def literal_address(host: str) -> str | None:
    """The host if it is an IP literal (which aiohttp connects to without resolving)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if not is_forbidden(r["host"])]
        if not allowed:
            raise ForbiddenAddress(f"{host} resolves only to non-public addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
