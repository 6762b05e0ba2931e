"""Contract verification: shared vectors and a decision table of good and hostile payloads."""

import hashlib
import json
import pathlib

import pytest

import ksb_sign

VECTORS = json.loads(
    (pathlib.Path(__file__).resolve().parents[1] / "vectors" / "payloads.json").read_text()
)["vectors"]
KEY = "k1"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["payload"]["cluster"] for v in VECTORS])
def test_shared_vectors_reproduce_canonical_digest_signature(utils, vector):
    mod, payload = utils["payload"], vector["payload"]
    assert mod.canonical(payload) == vector["canonical"]
    assert mod.digest(payload["ipv4"], payload["ipv6"]) == payload["digest"]
    assert mod.sign(payload, vector["key"]) == payload["signature"]
    assert mod.verify(dict(payload, _stamp="2026-11-22T10:00:00.123456"), vector["key"])["cluster"] == payload["cluster"]


def test_test_signer_agrees_with_vectors():
    for vector in VECTORS:
        payload = vector["payload"]
        assert ksb_sign.resign(payload, vector["key"])["signature"] == payload["signature"]


def good(**changes):
    base = ksb_sign.build("prod", 5, ["10.0.0.2", "10.244.0.0/16"], ["fd00::2"], key=KEY)
    base.update(changes)
    return ksb_sign.resign(base, KEY)


def consistent(family, entries):
    """A payload carrying ``entries`` with a matching digest and signature: only entry checks can fail."""
    lists = {"ipv4": ["10.0.0.2"], "ipv6": ["fd00::2"], family: entries}
    body = json.dumps(lists, sort_keys=True, separators=(",", ":")).encode()
    payload = dict(ksb_sign.build("prod", 5, key=KEY), **lists)
    payload["digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    return ksb_sign.resign(payload, KEY)


HOSTILE = [
    ("shell metacharacters", consistent("ipv4", ["10.0.0.1;reboot"]), "only lower-case hex"),
    ("command substitution", consistent("ipv4", ["$(id)"]), "only lower-case hex"),
    ("whitespace", consistent("ipv4", [" 10.0.0.1"]), "only lower-case hex"),
    ("newline", consistent("ipv4", ["10.0.0.1\n"]), "only lower-case hex"),
    ("ipv4 any", consistent("ipv4", ["0.0.0.0/0"]), "wider than /16"),
    ("ipv6 any", consistent("ipv6", ["::/0"]), "wider than /48"),
    ("wide ipv4", consistent("ipv4", ["10.0.0.0/8"]), "wider than /16"),
    ("ipv4-mapped ipv6", consistent("ipv6", ["::ffff:a00:1"]), "IPv4-mapped"),
    ("zone id", consistent("ipv6", ["fe80::1%eth0"]), "only lower-case hex"),
    ("upper case ipv6", consistent("ipv6", ["FD00::2"]), "only lower-case hex"),
    ("uncompressed ipv6", consistent("ipv6", ["fd00:0::2"]), "canonical form"),
    ("host bits", consistent("ipv4", ["10.0.0.1/24"]), "host bits"),
    ("explicit /32", consistent("ipv4", ["10.0.0.1/32"]), "canonical form"),
    ("wrong family", consistent("ipv4", ["fd00::1"]), "is ipv6, expected ipv4"),
    ("unsorted", consistent("ipv4", ["10.0.0.3", "10.0.0.2"]), "sorted"),
    ("duplicate", consistent("ipv4", ["10.0.0.2", "10.0.0.2"]), "sorted"),
    ("leading zeros", consistent("ipv4", ["10.0.0.02"]), "not a valid address"),
    ("unspecified", consistent("ipv4", ["0.0.0.0"]), "not a unicast"),
    ("not a string", consistent("ipv4", [167772161]), "expected a string"),
    ("list is a string", consistent("ipv4", "10.0.0.1"), "expected a list"),
    ("huge list", consistent("ipv4", [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(20001)]),
     "exceed the bound"),
    ("bad signature", dict(good(), signature="hmac-sha256:" + "0" * 64), "signature: does not match"),
    ("signed with other key", ksb_sign.resign(good(), "other"), "signature: does not match"),
    ("tampered list", dict(good(), ipv4=["10.0.0.2", "10.0.0.66"]), "signature: does not match"),
    ("tampered generation", dict(good(), generation=99), "signature: does not match"),
    ("tampered target", dict(good(), target="*"), "signature: does not match"),
    ("signature missing", {k: v for k, v in good().items() if k != "signature"}, "signature: expected"),
    ("digest mismatch", good(digest="sha256:" + "0" * 64), "digest:"),
    ("wrong version", good(version=2), "not supported"),
    ("version as string", good(version="1"), "not supported"),
    ("cluster not a label", good(cluster="Prod_1"), "not a DNS label"),
    ("cluster injection", good(cluster="prod/../x"), "not a DNS label"),
    ("generation zero", good(generation=0), "generation"),
    ("generation bool", good(generation=True), "generation"),
    ("generation float", good(generation=5.0), "generation"),
    ("nodes negative", good(nodes=-1), "nodes"),
    ("bad issued_at", good(issued_at="yesterday"), "issued_at"),
    ("missing key", {k: v for k, v in good().items() if k != "nodes"}, "missing keys nodes"),
    ("added not list", good(added="x"), "added"),
    ("truncated flag not bool", good(added_truncated="yes"), "added_truncated"),
    ("not a mapping", ["version", 1], "expected a mapping"),
]


@pytest.mark.parametrize("payload,message", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_payloads_are_refused(utils, payload, message):
    mod = utils["payload"]
    with pytest.raises(mod.PayloadError, match=message.replace("(", r"\(").replace("$", r"\$")):
        mod.verify(payload, KEY)


GOOD = [
    ("hosts and networks", good()),
    ("empty lists", consistent("ipv4", [])),
    ("ipv6 /48 at the bound", consistent("ipv6", ["2001:db8:1::/48"])),
    ("unknown keys ignored", dict(good(), _stamp="x", __pub_fun="kube_allowlist.apply")),
    ("truncation flags signed", good(added_truncated=True, removed_truncated=False)),
    ("20000 entries", consistent("ipv4", sorted(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
                                                for i in range(1, 20001)))),
]


@pytest.mark.parametrize("payload", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_payloads_verify(utils, payload):
    assert utils["payload"].verify(payload, KEY)["digest"] == payload["digest"]


def test_max_prefix_is_configurable(utils):
    payload = consistent("ipv4", ["10.0.0.0/8"])
    assert utils["payload"].verify(payload, KEY, max_prefix={"ipv4": 8, "ipv6": 48})
