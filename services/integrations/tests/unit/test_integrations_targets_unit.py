"""Which URLs and addresses may be webhook targets (SSRF rules)."""

from __future__ import annotations

import ipaddress

import pytest

from integrations.delivery.targets import (
    TargetPolicy,
    TargetRefused,
    address_problem,
    check_addresses,
    check_target,
    embedded_ipv4,
    parse_url,
)

PRODUCTION = TargetPolicy()
LOCAL = TargetPolicy.of(True, ["127.0.0.0/8", "::1/128"])

NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::808:808",  # NAT64, even of a public address
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "::ffff:8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), PRODUCTION) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_targets(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), PRODUCTION) is None


def test_allowed_networks_open_exactly_themselves() -> None:
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert address_problem(ipaddress.ip_address(address), LOCAL) is None, address
    for address in ("10.0.0.1", "::ffff:10.0.0.1", "169.254.169.254", "2002:7f00:1::"):
        assert address_problem(ipaddress.ip_address(address), LOCAL) is not None, address


def test_embedded_ipv4_addresses_are_found() -> None:
    assert embedded_ipv4(ipaddress.ip_address("::ffff:10.1.2.3")) == ipaddress.ip_address(
        "10.1.2.3"
    )
    assert embedded_ipv4(ipaddress.ip_address("2002:a01:203::")) == ipaddress.ip_address("10.1.2.3")
    assert embedded_ipv4(ipaddress.ip_address("64:ff9b::a01:203")) == ipaddress.ip_address(
        "10.1.2.3"
    )
    assert embedded_ipv4(ipaddress.ip_address("::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("10.1.2.3")) is None


def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(TargetRefused):
        check_addresses(["8.8.8.8", "10.0.0.1"], PRODUCTION)
    with pytest.raises(TargetRefused) as refused:
        check_addresses([], PRODUCTION)
    assert refused.value.code == "target_unresolvable"
    assert [str(a) for a in check_addresses(["8.8.8.8", "1.1.1.1"], PRODUCTION)] == [
        "8.8.8.8",
        "1.1.1.1",
    ]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.com/", "https_required"),
        ("ftp://example.com/", "https_required"),
        ("javascript:alert(1)", "https_required"),
        ("https://user:secret@example.com/", "invalid_url"),
        ("https://example.com/#frag", "invalid_url"),
        ("https:///path", "invalid_url"),
        ("https://example.com:99999/", "invalid_url"),
        ("https://exa mple.com/", "invalid_url"),
        ("https://example.com/" + "a" * 2000, "invalid_url"),
    ],
)
def test_urls_refused(url: str, code: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        parse_url(url, PRODUCTION)
    assert refused.value.code == code


def test_urls_accepted() -> None:
    assert parse_url("https://hooks.example.com/in?x=1", PRODUCTION).port == 443
    assert parse_url("HTTPS://Hooks.Example.com:8443/in", PRODUCTION).host == "hooks.example.com"
    assert parse_url("http://127.0.0.1:9000/", LOCAL).port == 9000


async def test_names_are_resolved_and_every_address_checked() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"public.test": ["8.8.8.8"], "rebind.test": ["8.8.8.8", "127.0.0.1"]}[host]

    await check_target("https://public.test/hook", PRODUCTION, resolver)
    with pytest.raises(TargetRefused) as refused:
        await check_target("https://rebind.test/hook", PRODUCTION, resolver)
    assert refused.value.code == "target_refused"

    async def nothing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetRefused) as unresolvable:
        await check_target("https://nowhere.test/hook", PRODUCTION, nothing)
    assert unresolvable.value.code == "target_unresolvable"
