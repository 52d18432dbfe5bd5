"""Where a webhook may be sent: an ``https`` URL (``http`` only when allowed, for local runs)
whose host resolves to public addresses only. Checked when an endpoint is registered and
again at every connection (:mod:`integrations.delivery.sender`), so a name that later resolves
to an internal address (DNS rebinding) reaches nothing.

An address is refused when it, or an IPv4 address carried inside it (IPv4-mapped
``::ffff:a.b.c.d``, IPv4-compatible, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``, Teredo), is
not a public unicast address: private, loopback, link-local, carrier-grade NAT, unspecified,
multicast, reserved, documentation ranges... unless it lies in one of the allowed networks
(``WEBHOOK_ALLOW_PRIVATE_NETWORKS``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class TargetRefused(Exception):
    """The URL or one of the addresses its host resolves to may not be a target."""

    def __init__(self, reason: str, code: str = "target_refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class TargetPolicy:
    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, allow_http: bool, networks: Sequence[str]) -> TargetPolicy:
        return cls(allow_http, tuple(ipaddress.ip_network(n, strict=False) for n in networks))


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def parse_url(url: str, policy: TargetPolicy) -> Target:
    """The URL's scheme, host and port, or :class:`TargetRefused` saying what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters", "invalid_url")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetRefused("the URL contains spaces or control characters", "invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"the URL is not valid: {exc}", "invalid_url") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise TargetRefused("the URL must be an https:// URL", "https_required")
    if scheme == "http" and not policy.allow_http:
        raise TargetRefused("the URL must be an https:// URL", "https_required")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("credentials in the URL are not accepted", "invalid_url")
    if parts.fragment:
        raise TargetRefused("the URL may not have a fragment", "invalid_url")
    host = parts.hostname
    if not host:
        raise TargetRefused("the URL has no host", "invalid_url")
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """An IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _public(address: IPAddress) -> bool:
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_private
    )


def address_problem(address: IPAddress, policy: TargetPolicy) -> str | None:
    """Why ``address`` may not be a target, or None. An IPv4-mapped address is its IPv4
    address; other IPv6 forms that tunnel to an IPv4 address (6to4, Teredo, NAT64,
    IPv4-compatible) are refused unless allowed: no https receiver needs them, and they are a
    way around the check."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    effective: IPAddress = mapped if mapped is not None else address
    if any(effective in net for net in policy.allowed_networks if net.version == effective.version):
        return None
    if mapped is None and (embedded_ipv4(address) is not None or address in _NAT64_LOCAL):
        return f"{address} tunnels to an IPv4 address"
    if not _public(effective):
        return f"{address} is not a public address"
    return None


def check_addresses(addresses: Sequence[str], policy: TargetPolicy) -> list[IPAddress]:
    """Every address must be allowed (a name that resolves to one internal address among public
    ones is refused: the client could connect to any of them)."""
    if not addresses:
        raise TargetRefused("the host does not resolve to any address", "target_unresolvable")
    parsed = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        problem = address_problem(address, policy)
        if problem is not None:
            raise TargetRefused(f"the host resolves to {problem}")
        parsed.append(address)
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return sorted({str(info[4][0]) for info in infos})


async def resolve(
    host: str, port: int, resolver: Resolver = system_resolver, timeout: float = 5.0
) -> list[str]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        return [str(literal)]
    try:
        async with asyncio.timeout(timeout):
            return await resolver(host, port)
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve", "target_unresolvable") from exc


async def check_target(
    url: str, policy: TargetPolicy, resolver: Resolver = system_resolver, timeout: float = 5.0
) -> list[IPAddress]:
    """The addresses ``url`` may be delivered to, or :class:`TargetRefused`."""
    target = parse_url(url, policy)
    return check_addresses(await resolve(target.host, target.port, resolver, timeout), policy)
