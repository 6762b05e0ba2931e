"""
Readback canonicalisation (firewall.canonical_entry, parse_ipset_save) and the string comparison
the ipset plan relies on, against ``ipaddress`` and against what a real ``ipset save`` prints;
plus the verify shortcuts (one parse per entry, errors worded as before).
"""

import ipaddress
import random
import subprocess

import pytest

from saltext.kube_allowlist.utils import firewall, ipset

import ksb_sign
import netlab


def reference(text):
    """The canonical form by the slow, obviously correct route."""
    net = ipaddress.ip_network(text, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# What ipset prints (hosts without /32 or /128, IPv6 compressed lower case; checked on the kernel
# below) and the spellings that must be normalised.
FORMS = [
    ("10.0.0.7", "10.0.0.7"),
    ("10.0.0.7/32", "10.0.0.7"),
    ("10.244.1.0/24", "10.244.1.0/24"),
    ("192.168.0.0/31", "192.168.0.0/31"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("10.1.2.3/16", "10.1.0.0/16"),  # host bits are masked, as the kernel stores the network
    ("10.0.0.7/032", "10.0.0.7"),
    ("fd00::7", "fd00::7"),
    ("fd00::7/128", "fd00::7"),
    ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # a single zero hextet is not compressed
    ("1:0:0:2::3", "1:0:0:2::3"),  # the longest run is compressed
    ("2001:0:0:1::1", "2001:0:0:1::1"),
    ("0:0:1::", "0:0:1::"),
    ("::", "::"),
    ("2001:db8::/64", "2001:db8::/64"),
    ("fd00:0:0:1::/64", "fd00:0:0:1::/64"),
    ("2001:db8:1::5/48", "2001:db8:1::/48"),
    ("::1.2.3.4", "::102:304"),  # how ipset prints ::102:304
    ("::ffff:1.2.3.4", str(ipaddress.IPv6Address("::ffff:1.2.3.4"))),  # differs between Pythons
    ("::ffff:102:304", str(ipaddress.IPv6Address("::ffff:1.2.3.4"))),
    ("FD00::7", "fd00::7"),
    ("fd00:0::7", "fd00::7"),
    ("fd00:0000:0000:0000:0000:0000:0000:0007", "fd00::7"),
    ("fd00:0:0:0:0:0:0:7", "fd00::7"),
    ("1::2:0:0:0:3", "1:0:0:2::3"),  # compressed run is not the longest
    ("1:0::2:0:0:0:3", "1:0:0:2::3"),
    ("1:0:0::2:0:0:3", "1::2:0:0:3"),  # equally long runs: the first is compressed
]


@pytest.mark.parametrize("raw,canonical", FORMS)
def test_canonical_entry_forms(raw, canonical):
    assert ipset.canonical_entry(raw) == canonical == reference(raw)


@pytest.mark.parametrize("raw", ["", "10.0.0", "10.0.0.256", "fd00:::1", "fd00::1/129", "10.0.0.1/33", "x"])
def test_canonical_entry_refuses_garbage(raw):
    with pytest.raises(ValueError):
        ipset.canonical_entry(raw)


def test_canonical_forms_need_no_ipaddress(monkeypatch):
    """The forms ipset prints for hosts (and IPv4 networks) are recognised without ipaddress."""

    def boom(*args, **kwargs):
        raise AssertionError("ipaddress used for a canonical entry")

    monkeypatch.setattr(ipset.ipaddress, "ip_network", boom)
    for text in (
        "10.0.0.7",
        "10.0.0.7/32",
        "10.244.0.0/16",
        "fd00::7",
        "fd00::7/128",
        "2a05:d018:100b:c924:a23d:7b56:1000:182e",
        "1:0:0:2::3",
        "2001:db8:0:1:1:1:1:1",
    ):
        expected = text.rsplit("/", 1)[0] if text.endswith(("/32", "/128")) else text
        assert ipset.canonical_entry(text) == expected


def _spellings(address):
    hextets = [h.lstrip("0") or "0" for h in address.exploded.split(":")]
    yield str(address)
    yield address.exploded
    yield address.exploded.upper()
    yield ":".join(hextets)
    for start in range(8):
        for end in range(start + 1, 9):
            if all(h == "0" for h in hextets[start:end]):
                yield ":".join(hextets[:start]) + "::" + ":".join(hextets[end:])


def test_canonical_entry_agrees_with_ipaddress():
    """Random addresses rich in zero hextets, in every spelling, hosts and networks."""
    rng = random.Random(5952)
    for _ in range(3000):
        hextets = [rng.choice((0, 0, 0, 1, 0xFFFF, rng.randrange(1 << 16))) for _ in range(8)]
        address = ipaddress.IPv6Address(int("".join(f"{h:04x}" for h in hextets), 16))
        for text in set(_spellings(address)):
            for suffix in ("", "/128", f"/{rng.randrange(129)}"):
                assert ipset.canonical_entry(text + suffix) == reference(text + suffix), text + suffix
    for _ in range(3000):
        address = ipaddress.IPv4Address(rng.choice((rng.randrange(1 << 32), rng.randrange(256) << 24)))
        prefix = rng.randrange(33)
        network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        for text in (str(address), f"{address}/32", f"{address}/{prefix}", str(network)):
            assert ipset.canonical_entry(text) == reference(text), text


def test_parse_ipset_save_canonicalises():
    saved = (
        "create ksb-prod-4 hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1\n"
        "add ksb-prod-4 10.0.0.2/32\nadd ksb-prod-4 10.244.0.0/16\n"
        "create ksb-prod-6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x2\n"
        "add ksb-prod-6 fd00:0:0:1::/64\nadd ksb-prod-6 FD00:0::2\nadd ksb-prod-6 ::1.2.3.4\n"
    )
    assert ipset.parse_ipset_save(saved) == {
        "ksb-prod-4": {"family": "inet", "entries": {"10.0.0.2", "10.244.0.0/16"}},
        "ksb-prod-6": {"family": "inet6", "entries": {"fd00:0:0:1::/64", "fd00::2", "::102:304"}},
    }


RULES = [
    {
        "name": "pg",
        "clusters": ["prod"],
        "proto": "tcp",
        "ports": ["5432"],
        "others": "drop",
        "families": ["ipv4", "ipv6"],
        "extra_sources": {"ipv4": [], "ipv6": []},
    }
]
LISTS = {"ipv4": ["10.0.0.2", "10.244.0.0/16"], "ipv6": ["1:0:0:2::3", "::102:304", "fd00:0:0:1::/64", "fd00::2"]}


def _ipset_plan(saved):
    desired = firewall.desired_state({"rules": RULES, "max_entries": 20000}, {"prod": LISTS})
    current = {"ipset": ipset.parse_ipset_save(saved), "ipv4": None, "ipv6": None, "nft": None}
    return [s["desc"] for s in firewall.plan("ipset", desired, current)]


def test_plan_compares_canonical_strings():
    same = (
        "create ksb-prod-4 hash:net family inet\nadd ksb-prod-4 10.244.0.0/16\nadd ksb-prod-4 10.0.0.2/32\n"
        "create ksb-prod-6 hash:net family inet6\nadd ksb-prod-6 fd00::2\nadd ksb-prod-6 ::1.2.3.4\n"
        "add ksb-prod-6 fd00:0:0:1::/64\nadd ksb-prod-6 1::2:0:0:0:3\n"
    )
    assert _ipset_plan(same) == []
    one_more = same + "add ksb-prod-4 10.0.0.3\n"
    assert _ipset_plan(one_more) == ["ipset: replace ksb-prod-4"]
    one_less = same.replace("add ksb-prod-6 fd00::2\n", "")
    assert _ipset_plan(one_less) == ["ipset: replace ksb-prod-6"]


@pytest.fixture(name="netns")
def fixture_netns(request, extmods):  # pylint: disable=unused-argument
    """One bare network namespace (for ipset), deleted at teardown."""
    name = f"{netlab.PREFIX}ipset{random.randrange(10**6)}"
    netlab.sh(["ip", "netns", "add", name])
    request.addfinalizer(lambda: netlab.sh(["ip", "netns", "del", name], check=False))
    return name


def test_real_ipset_save_reads_back_canonical(netns):
    """Sets filled from canonical entries read back identical; other spellings as ipaddress says."""
    changes = {ipset.ipset_name("prod", f): (f, LISTS[f]) for f in ("ipv4", "ipv6")}

    def run_ipset(args, stdin=None):
        return subprocess.run(
            ["ip", "netns", "exec", netns, "ipset"] + args, input=stdin, text=True, capture_output=True, check=True
        ).stdout

    run_ipset(["restore"], ipset.ipset_script(changes, set(), 65536))
    saved = run_ipset(["save"])
    assert "add ksb-prod-6 1:0:0:2::3\n" in saved and "add ksb-prod-4 10.0.0.2\n" in saved  # as ipset prints
    assert _ipset_plan(saved) == []
    sets = ipset.parse_ipset_save(saved)
    want = {"ksb-prod-4": set(LISTS["ipv4"]), "ksb-prod-6": set(LISTS["ipv6"])}
    assert {n: s["entries"] for n, s in sets.items()} == want

    spelled = {
        "ksb-prod-4": ["10.0.0.9/32", "10.1.2.3/24", "192.168.7.0/31"],
        "ksb-prod-6": [
            "FD00:0:0:0:0:0:0:9/128",
            "2001:db8:1::5/48",
            "2001:db8:0:1:1:1:1:1",
            "::ffff:0:0:1",
            "1::2:0:0:0:4",
            "::1.2.3.5",
            "::ffff:1.2.3.6",
        ],
    }
    for name, entries in spelled.items():
        for entry in entries:
            run_ipset(["add", name, entry])
    raw = {line.split()[1]: [] for line in run_ipset(["save"]).splitlines() if line.startswith("create ")}
    for line in run_ipset(["save"]).splitlines():
        if line.startswith("add "):
            raw[line.split()[1]].append(line.split()[2])
    sets = ipset.parse_ipset_save(run_ipset(["save"]))
    for name, printed in raw.items():
        assert sets[name]["entries"] == {reference(e) for e in printed}
        assert {reference(e) for e in spelled[name]} <= sets[name]["entries"]
    assert _ipset_plan(run_ipset(["save"])) == ["ipset: replace ksb-prod-4, ksb-prod-6"]


# --- verify: one parse per entry, messages unchanged ------------------------------------------

MALFORMED = [
    "10.0.0",
    "10.0.0.256",
    "10.0.0.02",
    "10.0.0.1/33",
    "10.0.0.1/24",
    "fd00:::1",
    "fd00::1/129",
    "fd00::1/64",
    "1:2:3:4:5:6:7:8:9",
    "10.0.0.0/",
    "::1.2.3",
    "1::2::3",
]


@pytest.mark.parametrize("value", MALFORMED)
def test_parse_errors_are_worded_by_ipaddress(utils, value):
    mod = utils["payload"]
    try:
        ipaddress.ip_network(value, strict=True) if "/" in value else ipaddress.ip_address(value)
    except ValueError as err:
        expected = f"entry: {value!r} is not a valid address or network: {err}"
    with pytest.raises(mod.PayloadError) as raised:
        mod.parse_entry(value)
    assert str(raised.value) == expected


def test_info_lists_are_still_checked(utils):
    mod = utils["payload"]
    keys = {ksb_sign.key_id(): ksb_sign.public_raw()}
    for key, value in (("added", ["10.0.0.2", "10.0.0.1;x"]), ("removed", ["fd00::1/8"]), ("added", [7])):
        payload = ksb_sign.resign(dict(ksb_sign.build("prod", 5, ["10.0.0.2"], ["fd00::2"]), **{key: value}))
        with pytest.raises(mod.PayloadError, match=rf"^{key}\[\d\]"):
            mod.verify(payload, keys)
    wide = ksb_sign.build("prod", 5, ["10.0.0.2"], ["fd00::2"], removed=["10.0.0.0/8"])
    assert mod.verify(wide, keys)["removed"] == ["10.0.0.0/8"]  # any prefix in information lists
