"""Which network addresses a fetch may reach: the SSRF guard's pure decision.

A URL from a firehose is attacker-controlled. Fetching it must not reach the cloud metadata service
(169.254.169.254), the loopback interface, the private network, or anything else that is not the
public internet, unless an operator allowed that range explicitly (``--allow-cidr``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from modstream.errors import BlockedAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidrs(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Refuses every non-global address unless it falls in ``allowed``."""

    allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be fetched, or ``None`` when it may."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed):
            return None
        for label, test in _CLASSES:
            if test(ip):
                return f"{ip} is a {label} address"
        if not ip.is_global:
            return f"{ip} is not a public address"
        return None

    def check(self, address: str, *, host: str) -> None:
        reason = self.refusal(address)
        if reason is not None:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            raise BlockedAddress(
                f"refused to fetch from {host}: {reason}; to let it through, start with "
                f"--allow-cidr {ip}/{ip.max_prefixlen} (or a wider range)"
            )


_CLASSES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local (cloud metadata)", lambda ip: ip.is_link_local),
    ("private", lambda ip: ip.is_private),
    ("multicast", lambda ip: ip.is_multicast),
    ("reserved", lambda ip: ip.is_reserved),
    ("unspecified", lambda ip: ip.is_unspecified),
)
