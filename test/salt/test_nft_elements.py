"""The nftables set elements: the integer collapse gives exactly what ipaddress.collapse_addresses gives."""

import ipaddress
import random

import pytest

from saltext.kube_allowlist.utils import nftables


def by_ipaddress(entries):
    """The elements as ``ipaddress`` renders them (the reference the backend must match)."""
    nets = [ipaddress.ip_network(e) for e in entries]
    collapsed = [n for v in (4, 6) for n in ipaddress.collapse_addresses(x for x in nets if x.version == v)]
    return ", ".join(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in collapsed)


def canonical(net):
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["10.0.0.2", "10.0.0.3"], "10.0.0.2/31"),
        (["10.0.0.1", "10.0.0.2"], "10.0.0.1, 10.0.0.2"),
        (["10.0.0.0/25", "10.0.0.128/26", "10.0.0.192/26"], "10.0.0.0/24"),
        (["10.0.0.7", "10.0.0.0/24", "10.0.0.9"], "10.0.0.0/24"),
        (["fd00::3", "fd00::2", "10.0.0.1"], "10.0.0.1, fd00::2/127"),
        (["fd00::1", "fd00::"], "fd00::/127"),
        (["0.0.0.0/1", "128.0.0.0/1"], "0.0.0.0/0"),
        (["::/1", "8000::/1"], "::/0"),
        (["255.255.255.255", "255.255.255.254"], "255.255.255.254/31"),
    ],
)
def test_collapse(entries, expected):
    assert nftables._nft_elements(entries) == expected
    assert by_ipaddress(entries) == expected


@pytest.mark.parametrize("entry", ["10.0.0.1/32", "10.0.0.0/08", "::ffff:10.0.0.1", "fd00::1/128", "FD00::1"])
def test_other_spellings_as_ipaddress_renders_them(entry):
    # Not the contract's canonical form (payloads never carry these): the ipaddress path renders them.
    assert nftables._collapsed_fast([entry, "10.0.0.9"]) is None
    assert nftables._nft_elements([entry, "10.0.0.9"]) == by_ipaddress([entry, "10.0.0.9"])


def test_host_bits_refused_as_before():
    with pytest.raises(ValueError, match="host bits set"):
        nftables._nft_elements(["10.0.0.1/24"])


def test_random_lists_match_ipaddress():
    rnd = random.Random(20261201)
    for _ in range(3000):
        entries = []
        base4 = rnd.choice([0x0A000000, 0xC0A80000, 0, 0xFFFFFF00])
        base6 = rnd.choice([0, 1 << 120, 2**128 - 256, 0x20010DB8 << 96])
        for _ in range(rnd.randint(1, 12)):
            if rnd.random() < 0.5:
                length = rnd.choice([32, 32, 32, 31, 30, 29, 28, 24, 25, 26])
                value = ((base4 + rnd.randint(0, 64)) & 0xFFFFFFFF) & ~((1 << (32 - length)) - 1)
                entries.append(canonical(ipaddress.IPv4Network((value, length))))
            else:
                length = rnd.choice([128, 128, 127, 126, 124, 120, 121])
                value = ((base6 + rnd.randint(0, 300)) % 2**128) & ~((1 << (128 - length)) - 1)
                entries.append(canonical(ipaddress.IPv6Network((value, length))))
        assert nftables._collapsed_fast(entries) is not None
        assert nftables._nft_elements(entries) == by_ipaddress(entries), entries
