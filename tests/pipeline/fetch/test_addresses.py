"""The SSRF guard's pure decision: which addresses a fetch may reach."""

from __future__ import annotations

import pytest

from modstream.pipeline.fetch.addresses import AddressPolicy, parse_cidrs

LOOPBACK = parse_cidrs(["127.0.0.0/8"])


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
    ],
)
def test_address_policy_refuses_non_public_addresses(address: str, allowed: bool) -> None:
    """Only global unicast addresses pass; IPv4-mapped IPv6 is judged as the IPv4 inside."""
    assert (AddressPolicy().refusal(address) is None) is allowed


def test_allow_cidr_opens_exactly_that_range() -> None:
    """--allow-cidr 127.0.0.0/8 opens loopback and nothing else."""
    policy = AddressPolicy(LOOPBACK)
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("169.254.169.254") is not None
    assert policy.refusal("10.0.0.1") is not None
