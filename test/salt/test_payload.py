"""Contract version 2 verification: the shared vectors, then decision tables of good and hostile payloads."""

import base64
import hashlib
import json
import math
import pathlib

import pytest

import ksb_sign

VECTORS = json.loads((pathlib.Path(__file__).resolve().parents[1] / "vectors" / "payloads-v2.json").read_text())
KEY = ksb_sign.SEED
OTHER = "another key"


def ring(*keys):
    return {ksb_sign.key_id(k): ksb_sign.public_raw(k) for k in keys}


RING = ring(KEY)


def refused(utils, payload, message, keys=None, **kwargs):
    mod = utils["payload"]
    with pytest.raises(mod.PayloadError) as err:
        mod.verify(payload, RING if keys is None else keys, **kwargs)
    assert message in str(err.value), str(err.value)
    return str(err.value)


# --- shared vectors (test/vectors/payloads-v2.json, written by the bridge's generator) ----------


def vector_keys(utils):  # pylint: disable=unused-argument
    """The vectors' public keys by name."""
    return {name: bytes.fromhex(k["public_hex"]) for name, k in VECTORS["keys"].items()}


def vector_ring():
    """The vectors' public keys by key id, as a minion holds them."""
    return {k["key_id"]: bytes.fromhex(k["public_hex"]) for k in VECTORS["keys"].values()}


def test_vector_keys_derive_as_the_contract_says(utils):
    mod = utils["payload"]
    for key in VECTORS["keys"].values():
        seed = bytes.fromhex(key["seed_hex"])
        assert mod.parse_key_text(key["private_text"]) == seed
        assert ksb_sign.public_raw(seed).hex() == key["public_hex"]
        assert mod.parse_key_text(key["public_key"]) == bytes.fromhex(key["public_hex"])
        assert mod.key_id(bytes.fromhex(key["public_hex"])) == key["key_id"] == ksb_sign.key_id(seed)


@pytest.mark.parametrize("vector", VECTORS["payloads"], ids=[v["name"] for v in VECTORS["payloads"]])
def test_vector_payloads_reproduce_canonical_digest_key_id_signature(utils, vector):
    mod, payload = utils["payload"], vector["payload"]
    key = VECTORS["keys"][vector["key"]]
    assert mod.canonical(payload) == vector["canonical"]
    assert mod.digest(payload["ipv4"], payload["ipv6"]) == vector["digest"] == payload["digest"]
    assert payload["key_id"] == key["key_id"]
    # Ed25519 is deterministic: the independent test signer reproduces the bridge's signature.
    assert ksb_sign.resign(payload, bytes.fromhex(key["seed_hex"]))["signature"] == vector["signature"]
    view = mod.verify(dict(payload, _stamp="2026-11-22T10:00:00.123456"), vector_ring())
    assert view["cluster"] == vector["tag"].split("/")[2] and view["signature"] == vector["signature"]


@pytest.mark.parametrize("vector", VECTORS["deltas"], ids=[v["name"] for v in VECTORS["deltas"]])
def test_vector_deltas_reproduce_and_apply_to_exactly_their_base(utils, vector):
    mod, payload = utils["payload"], vector["payload"]
    key = VECTORS["keys"][vector["key"]]
    base, result = vector["base"], vector["result"]
    assert mod.is_delta(payload) and not {"ipv4", "ipv6"} & set(payload)
    assert mod.canonical(payload) == vector["canonical"]
    assert mod.digest(base["ipv4"], base["ipv6"]) == base["digest"] == payload["base_digest"]
    assert mod.digest(result["ipv4"], result["ipv6"]) == result["digest"] == payload["digest"]
    assert payload["key_id"] == key["key_id"]
    assert ksb_sign.resign(payload, bytes.fromhex(key["seed_hex"]))["signature"] == vector["signature"]
    view = mod.verify(dict(payload, _stamp="2026-11-22T10:00:00.123456", minions=["db1"]), vector_ring())
    assert view == dict(payload) and view["cluster"] == vector["tag"].split("/")[2]
    assert mod.apply_delta(base, view) == {"ipv4": result["ipv4"], "ipv6": result["ipv6"]}
    if payload["added"] or payload["removed"]:
        # Applied to the list it produced, it does not apply (an entry removed is not held, or one
        # added already is): the minion refuses it instead of computing another list.
        with pytest.raises(mod.PayloadError, match="the delta does not apply to the base it names"):
            mod.apply_delta(result, view)


def test_vectors_hold_a_delta_and_a_check_form():
    kinds = {d["payload"]["base_digest"] == d["payload"]["digest"] for d in VECTORS["deltas"]}
    assert kinds == {True, False}
    forms = [v for v in VECTORS["verify"] if "base_digest" in v["payload"]]
    assert any(v["verifies_with"] for v in forms) and any(not v["verifies_with"] for v in forms)


@pytest.mark.parametrize("vector", VECTORS["key_text"], ids=[v["name"] for v in VECTORS["key_text"]])
def test_vector_key_texts_normalise_identically(utils, vector):
    mod = utils["payload"]
    data = base64.b64decode(vector["text_b64"])
    texts = [data, data.decode("latin-1")]  # a file's bytes, and the same as a pillar string
    for text in texts:
        if vector["ok"]:
            assert mod.parse_key_text(text).hex() == vector["raw_hex"]
        else:
            with pytest.raises(mod.PayloadError) as err:
                mod.parse_key_text(text, "kube_allowlist:public_keys[0]")
            message = str(err.value)
            assert message.startswith("kube_allowlist:public_keys[0]: ")
            if len(data) >= 8:
                assert data.decode("latin-1").strip(" \t\r\n")[:8] not in message, "the key text is never quoted"


@pytest.mark.parametrize("vector", VECTORS["verify"], ids=[v["name"] for v in VECTORS["verify"]])
def test_vector_payloads_verify_only_with_their_key(utils, vector):
    mod = utils["payload"]
    for name, raw in vector_keys(utils).items():
        keys = {mod.key_id(raw): raw}
        if name in vector["verifies_with"]:
            assert mod.verify(vector["payload"], keys)["key_id"] == mod.key_id(raw)
        else:
            with pytest.raises(mod.PayloadError):
                mod.verify(vector["payload"], keys)
    both = vector_ring()
    if vector["verifies_with"]:
        assert mod.verify(vector["payload"], both)["cluster"] == vector["payload"]["cluster"]
    else:
        with pytest.raises(mod.PayloadError):
            mod.verify(vector["payload"], both)


def test_test_signer_agrees_with_the_module(utils):
    payload = ksb_sign.build("prod", 5, ["10.0.0.2"], ["fd00::2"], key=OTHER)
    assert utils["payload"].verify(payload, ring(KEY, OTHER))["key_id"] == ksb_sign.key_id(OTHER)


# --- key text: the pillar's own messages -------------------------------------------------------


KEY_TEXT = [
    ("placeholder", "CHANGE-ME", "not valid base64"),
    ("short base64", base64.b64encode(b"x" * 16).decode(), "base64 of 16 bytes"),
    ("short hex", "ab" * 16, "of 24 bytes"),
    ("too much padding", ksb_sign.public_b64(KEY) + "=", "not valid base64"),
    ("inner space", ksb_sign.public_hex(KEY)[:10] + " " + ksb_sign.public_hex(KEY)[10:], "whitespace inside"),
    ("non-breaking space at the end", ksb_sign.public_b64(KEY) + "\u00a0", "not ASCII"),
    ("empty", "", "empty"),
    ("only newlines", "\n\n", "empty"),
    ("a number", 12345, "expected the key as text, got int"),
    ("null", None, "expected the key as text, got NoneType"),
    ("PEM", "-----BEGIN PUBLIC KEY-----", "whitespace inside"),
]


@pytest.mark.parametrize("text,message", [c[1:] for c in KEY_TEXT], ids=[c[0] for c in KEY_TEXT])
def test_bad_key_texts_are_refused_with_a_reason(utils, text, message):
    mod = utils["payload"]
    with pytest.raises(mod.PayloadError, match=message):
        mod.parse_key_text(text, "kube_allowlist:public_keys[1]")


GOOD_KEY_TEXT = [
    ("hex", ksb_sign.public_hex(KEY)),
    ("HEX with CRLF", ksb_sign.public_hex(KEY).upper() + "\r\n"),
    ("base64 padded", ksb_sign.public_b64(KEY)),
    ("base64 unpadded, tabs around", "\t" + ksb_sign.public_b64(KEY, padding=False) + " "),
    ("url-safe", ksb_sign.public_b64(KEY, urlsafe=True)),
    ("url-safe unpadded", ksb_sign.public_b64(KEY, urlsafe=True, padding=False)),
]


@pytest.mark.parametrize("text", [c[1] for c in GOOD_KEY_TEXT], ids=[c[0] for c in GOOD_KEY_TEXT])
def test_good_key_texts(utils, text):
    assert utils["payload"].parse_key_text(text) == ksb_sign.public_raw(KEY)


def test_key_ring_names_the_bad_entry(utils):
    mod = utils["payload"]
    keys = mod.key_ring([ksb_sign.public_hex(KEY), ksb_sign.public_b64(OTHER)], "kube_allowlist:public_keys")
    assert keys == ring(KEY, OTHER)
    with pytest.raises(mod.PayloadError, match=r"^kube_allowlist:public_keys\[1\]: not valid base64"):
        mod.key_ring([ksb_sign.public_hex(KEY), "CHANGE-ME"], "kube_allowlist:public_keys")
    with pytest.raises(mod.PayloadError, match="expected a list of public keys, got str"):
        mod.key_ring(ksb_sign.public_hex(KEY), "kube_allowlist:public_keys")


# --- decision tables ----------------------------------------------------------------------------


def good(**changes):
    base = ksb_sign.build("prod", 5, ["10.0.0.2", "10.244.0.0/16"], ["fd00::2"], key=KEY)
    base.update(changes)
    return ksb_sign.resign(base, KEY, set_key_id="key_id" not in changes)


def consistent(family, entries, generation=5):
    """A payload carrying ``entries`` with a matching digest and signature: only entry checks can fail."""
    lists = {"ipv4": ["10.0.0.2"], "ipv6": ["fd00::2"], family: entries}
    body = json.dumps(lists, sort_keys=True, separators=(",", ":")).encode()
    payload = dict(ksb_sign.build("prod", generation, key=KEY), **lists)
    payload["digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    return ksb_sign.resign(payload, KEY)


def hosts(count, fmt="10.{a}.{b}.{c}"):
    return sorted(fmt.format(a=i >> 16, b=(i >> 8) & 255, c=i & 255) for i in range(1, count + 1))


def without(payload, key):
    return {k: v for k, v in payload.items() if k != key}


V1_PAYLOAD = next(
    v["payload"] for v in VECTORS["verify"] if v["payload"].get("version") == 1 and "target" in v["payload"]
)

HOSTILE = [
    # version
    ("version 1 (HMAC)", V1_PAYLOAD, "version: 1 (HMAC-SHA256 with a shared key) is no longer accepted"),
    ("version 1 re-signed with Ed25519", good(version=1), "no longer accepted"),
    ("version 3", good(version=3), "version: 3 is not supported"),
    ("version as string", good(version="2"), "version: str is not supported"),
    ("version bool", good(version=True), "version: bool is not supported"),
    # key and signature
    ("unknown key id", ksb_sign.build("prod", 5, ["10.0.0.2"], key=OTHER), "is not one of this minion's public keys"),
    (
        "key id of ours, signed by another",
        dict(ksb_sign.build("prod", 5, ["10.0.0.2"], key=OTHER), key_id=ksb_sign.key_id(KEY)),
        "signature: does not verify",
    ),
    ("key id upper case", good(key_id=ksb_sign.key_id(KEY).upper()), "key_id: expected 16 lower-case hex"),
    ("key id missing", without(good(), "key_id"), "missing keys key_id"),
    ("key id not a string", good(key_id=7), "key_id: expected"),
    ("bad signature", dict(good(), signature="ed25519:" + base64.b64encode(bytes(64)).decode()), "does not verify"),
    ("v1 signature prefix", dict(good(), signature="hmac-sha256:" + "0" * 64), "signature: expected ed25519:"),
    ("signature with a newline", dict(good(), signature=good()["signature"] + "\n"), "signature: expected"),
    (
        "non-canonical signature",
        dict(good(), signature=good()["signature"][:-3] + chr(ord(good()["signature"][-3]) ^ 1) + "=="),
        "signature:",
    ),
    ("signature missing", without(good(), "signature"), "missing keys signature"),
    ("signature not a string", dict(good(), signature=["ed25519:"]), "signature: expected"),
    # every signed field altered after signing
    ("tampered generation", dict(good(), generation=99), "does not verify"),
    ("tampered cluster", dict(good(), cluster="stage"), "does not verify"),
    ("tampered digest", dict(good(), digest="sha256:" + "0" * 64), "does not verify"),
    ("tampered ipv4", dict(good(), ipv4=["10.0.0.2", "10.0.0.66"]), "does not verify"),
    ("tampered ipv6", dict(good(), ipv6=[]), "does not verify"),
    ("tampered added", dict(good(), added=[]), "does not verify"),
    ("tampered removed", dict(good(), removed=["10.0.0.9"]), "does not verify"),
    ("tampered nodes", dict(good(), nodes=9), "does not verify"),
    ("tampered issued_at", dict(good(), issued_at="2026-11-22T10:00:01.000Z"), "does not verify"),
    (
        "tampered key_id",
        dict(ksb_sign.build("prod", 5, ["10.0.0.2"], key=OTHER), key_id=ksb_sign.key_id(KEY)),
        "does not verify",
    ),
    ("truncation flag added", dict(good(), removed_truncated=True), "does not verify"),
    # schema and fields
    ("digest mismatch", good(digest="sha256:" + "0" * 64), "digest:"),
    ("digest malformed", good(digest="sha256:XYZ"), "digest: expected sha256:"),
    ("cluster not a label", good(cluster="Prod_1"), "not a DNS label"),
    ("cluster injection", good(cluster="prod/../x"), "not a DNS label"),
    ("cluster not a string", good(cluster=["prod"]), "cluster: list is not a DNS label"),
    ("generation zero", good(generation=0), "generation: expected an integer from 1"),
    ("generation bool", good(generation=True), "generation: expected an integer from 1 to 2^53 - 1, got bool"),
    ("generation string", good(generation="11"), "got str"),
    ("generation 2^53", good(generation=2**53), "integer out of range"),
    ("nodes negative", good(nodes=-1), "nodes"),
    ("nodes bool", good(nodes=False), "nodes: expected an integer from 0 to 2^53 - 1, got bool"),
    ("bad issued_at", good(issued_at="yesterday"), "issued_at"),
    ("missing key", without(good(), "nodes"), "missing keys nodes"),
    ("added not list", good(added="x"), "added"),
    ("truncated flag not bool", good(added_truncated="yes"), "added_truncated"),
    ("not a mapping", ["version", 2], "expected a mapping"),
    # entries
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
    ("entry not a string", consistent("ipv4", [167772161]), "expected a string"),
    ("list is a string", consistent("ipv4", "10.0.0.1"), "expected a list"),
    ("too many entries", consistent("ipv4", hosts(20001)), "exceed the bound"),
    # address space: 20,000 /16 networks (each within max_prefix) would open 2^30 addresses
    (
        "20,000 x /16",
        consistent("ipv4", sorted(f"{10 + (i >> 8)}.{i & 255}.0.0/16" for i in range(20000))),
        "more than 2^24 (pillar kube_allowlist:max_address_space:ipv4)",
    ),
    (
        "257 x /16",
        consistent("ipv4", sorted(f"10.{i}.0.0/16" for i in range(256)) + ["11.0.0.0/16"]),
        "the entries cover 16842752 addresses",
    ),
    ("20,000 x /48", consistent("ipv6", sorted(f"fd00:{i:x}::/48" for i in range(1, 20001))), "max_address_space:ipv6"),
]


@pytest.mark.parametrize("payload,message", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_payloads_are_refused(utils, payload, message):
    refused(utils, payload, message)


def _deep(levels):
    node = []
    for _ in range(levels):
        node = [node]
    return node


def _cyclic(payload):
    loop = []
    loop.append(loop)
    return dict(payload, minions=loop)


HOSTILE_TYPES = [
    ("bytes entry", dict(good(), ipv4=[b"10.0.0.1"]), "payload.ipv4[0]: a value of type bytes is not allowed"),
    ("bytes unknown key", dict(good(), _stamp=b"x"), "payload._stamp: a value of type bytes"),
    ("float generation", good(generation=5.0), "payload.generation: a float is not allowed"),
    ("NaN", dict(good(), extra=math.nan), "payload.extra: a float (NaN or infinite) is not allowed"),
    ("infinity nested", dict(good(), minions=[{"x": math.inf}]), "payload.minions[0].x: a float (NaN or infinite)"),
    ("deep nesting", dict(good(), minions=_deep(10000)), "nested more than 8 levels deep"),
    ("self reference", _cyclic(good()), "nested more than 8 levels deep"),
    ("huge string", dict(good(), _stamp="x" * 10**7), "payload._stamp: a string of 10000000 characters"),
    ("huge string in a list", dict(good(), minions=["a" * 5000]), "payload.minions[0]: a string of 5000"),
    ("huge cluster", good(cluster="a" * 2000), "payload.cluster: a string of 2000"),
    ("huge integer", dict(good(), extra=10**400), "payload.extra: integer out of range"),
    ("non-string key", dict(good(), **{"x": {1: 2}}), "payload.x: a key of type int"),
    ("tuple", dict(good(), extra=(1, 2)), "a value of type tuple"),
    ("set", dict(good(), extra={1}), "a value of type set"),
    ("too many values", dict(good(), minions=[1] * 60000), "payload: more than"),
]


@pytest.mark.parametrize("payload,message", [h[1:] for h in HOSTILE_TYPES], ids=[h[0] for h in HOSTILE_TYPES])
def test_hostile_types_are_refused_cleanly(utils, payload, message):
    reason = refused(utils, payload, message)
    assert len(reason) < 400


JSON_TEXT = [
    ("NaN constant", json.dumps(good())[:-1] + ', "x": NaN}', "NaN is not allowed"),
    ("Infinity constant", json.dumps(good())[:-1] + ', "x": -Infinity}', "-Infinity is not allowed"),
    ("deep nesting", '{"x": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
    ("truncated", json.dumps(good())[:100], "not JSON"),
    ("too long", " " * 200, "exceed the bound of 100"),
]


@pytest.mark.parametrize("text,message", [c[1:] for c in JSON_TEXT], ids=[c[0] for c in JSON_TEXT])
def test_hostile_json_text_is_refused_cleanly(utils, text, message):
    mod = utils["payload"]
    with pytest.raises(mod.PayloadError, match=message):
        mod.parse_json(text, 100 if message.startswith("exceed") else 10**7)


GOOD = [
    ("hosts and networks", good()),
    ("empty lists", consistent("ipv4", [])),
    ("ipv6 /48 at the bound", consistent("ipv6", ["2001:db8:1::/48"])),
    ("unknown keys ignored", dict(good(), _stamp="x", __pub_fun="kube_allowlist.apply", nested={"a": [1, None]})),
    ("minions hint unsigned", dict(good(), minions=["db1", "db2"])),
    ("v1 target unsigned and ignored", dict(good(), target="*")),
    ("truncation flags signed", good(added_truncated=True, removed_truncated=False)),
    ("20000 entries", consistent("ipv4", hosts(20000))),
    (
        "5,000 nodes + 5,000 /24 pod networks",
        consistent(
            "ipv4",
            sorted(
                hosts(5000, "10.{a}.{b}.{c}")
                + [f"{100 + (i >> 8)}.{i & 255}.{j}.0/24" for i in range(20) for j in range(250)]
            ),
        ),
    ),
    ("256 x /16: exactly 2^24", consistent("ipv4", sorted(f"10.{i}.0.0/16" for i in range(256)))),
    ("5,000 x /64 pod networks", consistent("ipv6", sorted(f"fd00:{i:x}::/64" for i in range(1, 5001)))),
    ("generation 2^53 - 1", consistent("ipv4", [], generation=2**53 - 1)),
]


@pytest.mark.parametrize("payload", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_payloads_verify(utils, payload):
    view = utils["payload"].verify(payload, RING)
    assert view["digest"] == payload["digest"]
    assert not {"minions", "target", "_stamp"} & set(view)


def test_max_prefix_and_address_space_are_configurable(utils):
    payload = consistent("ipv4", ["10.0.0.0/8", "11.0.0.1"])  # 2^24 + 1 addresses
    refused(utils, payload, "wider than /16")
    refused(utils, payload, "max_address_space:ipv4", max_prefix={"ipv4": 8, "ipv6": 48})
    mod = utils["payload"]
    assert mod.verify(payload, RING, max_prefix={"ipv4": 8, "ipv6": 48}, max_address_space={"ipv4": 25, "ipv6": 88})[
        "ipv4"
    ] == ["10.0.0.0/8", "11.0.0.1"]
    assert mod.address_space(["10.0.0.1", "10.0.0.0/24", "10.0.0.0/24"], "ipv4") == 513
    assert mod.address_space(["fd00::1", "fd00::/64"], "ipv6") == 2**64 + 1


# --- the delta form -----------------------------------------------------------------------------


BASE = (["10.0.0.10", "10.0.0.2", "10.244.0.0/16"], ["fd00::2"])
RESULT = (["10.0.0.2", "10.0.0.3", "10.244.0.0/16"], ["fd00::2", "fd00::3"])


def good_delta(**changes):
    base = ksb_sign.build_delta("prod", 6, BASE, RESULT, key=KEY)
    base.update(changes)
    return ksb_sign.resign(base, KEY)


def held(lists=BASE):
    return {"ipv4": list(lists[0]), "ipv6": list(lists[1])}


def test_a_delta_verifies_and_applies_to_its_base(utils):
    mod = utils["payload"]
    payload = good_delta()
    assert (payload["added"], payload["removed"]) == (["10.0.0.3", "fd00::3"], ["10.0.0.10"]), "families together"
    view = mod.verify(dict(payload, minions=["db1"]), RING)
    assert view == payload and "ipv4" not in view
    assert mod.canonical(payload).startswith('{"added":["10.0.0.3","fd00::3"],"base_digest":"sha256:')
    assert mod.apply_delta(held(), view) == held(RESULT), "each family sorted in code-point order"
    assert mod.apply_delta(held(), good_delta(), max_entries=3) == held(RESULT), "3 per family at the bound"


GOOD_DELTAS = [
    ("check form", ksb_sign.build_delta("prod", 6, BASE, BASE, key=KEY)),
    ("only removed", ksb_sign.build_delta("prod", 6, BASE, (BASE[0][1:], BASE[1]), key=KEY)),
    ("ipv6 only", ksb_sign.build_delta("prod", 6, BASE, (BASE[0], ["fd00::2", "fd00:1::/48"]), key=KEY)),
    ("to the empty list", ksb_sign.build_delta("prod", 6, BASE, ([], []), key=KEY)),
    ("from the empty list", ksb_sign.build_delta("prod", 6, ([], []), BASE, key=KEY)),
    ("unknown keys ignored", dict(good_delta(), _stamp="x", minions=["db1"], target="*")),
]


@pytest.mark.parametrize("payload", [g[1] for g in GOOD_DELTAS], ids=[g[0] for g in GOOD_DELTAS])
def test_good_deltas_verify(utils, payload):
    view = utils["payload"].verify(payload, RING)
    assert view["base_digest"] == payload["base_digest"] and not {"minions", "target", "_stamp"} & set(view)


HOSTILE_DELTAS = [
    # the forms mixed, or a form incomplete
    ("ipv4 in a delta", good_delta(ipv4=RESULT[0]), "payload: base_digest (the delta form) together with ipv4"),
    ("ipv6 in a delta", good_delta(ipv6=[]), "together with ipv6 (the full form)"),
    ("both lists in a delta", good_delta(ipv4=RESULT[0], ipv6=RESULT[1]), "together with ipv4, ipv6"),
    ("truncated in a delta", good_delta(removed_truncated=False), "together with removed_truncated"),
    ("base_digest added to a full payload", good(base_digest=good()["digest"]), "together with ipv4, ipv6"),
    ("full without lists", without(without(good(), "ipv4"), "ipv6"), "missing keys ipv4, ipv6"),
    ("delta without added", without(good_delta(), "added"), "missing keys added"),
    ("delta without signature", without(good_delta(), "signature"), "missing keys signature"),
    # signature
    ("base_digest altered", dict(good_delta(), base_digest=good()["digest"]), "signature: does not verify"),
    ("added altered", dict(good_delta(), added=["10.0.0.3"]), "signature: does not verify"),
    ("removed emptied", dict(good_delta(), removed=[]), "signature: does not verify"),
    (
        "signature of another delta",
        dict(good_delta(), signature=good_delta(generation=7)["signature"]),
        "signature: does not verify",
    ),
    ("signature of the full form", dict(good_delta(), signature=good()["signature"]), "signature: does not verify"),
    # digests
    ("base_digest upper case", good_delta(base_digest="sha256:" + "A" * 64), "base_digest: expected sha256:"),
    ("base_digest no prefix", good_delta(base_digest="0" * 64), "base_digest: expected sha256:"),
    ("base_digest not a string", good_delta(base_digest=None), "base_digest: expected a string"),
    ("digest malformed", good_delta(digest="sha256:" + "0" * 63), "digest: expected sha256:"),
    # added and removed
    ("added not a list", good_delta(added="10.0.0.3"), "added: expected a list, got str"),
    ("removed entry not a string", good_delta(removed=[7]), "removed[0]: expected a string"),
    ("added wider than max_prefix", good_delta(added=["10.0.0.0/8"]), "added[0]: '10.0.0.0/8' is wider than /16"),
    ("removed any", good_delta(removed=["::/0"]), "removed[0]: '::/0' is wider than /48"),
    ("added not canonical", good_delta(added=["fd00:0::3"]), "added[0]: 'fd00:0::3' is not in canonical form"),
    ("added injection", good_delta(added=["10.0.0.3;id"]), "added[0]: '10.0.0.3;id' is not an address"),
    ("added unsorted", good_delta(added=["fd00::3", "10.0.0.3"]), "added: entries must be sorted"),
    ("removed duplicate", good_delta(removed=["10.0.0.10", "10.0.0.10"]), "removed: entries must be sorted"),
    ("in both lists", good_delta(removed=["10.0.0.10", "10.0.0.3"]), "added, removed: 1 entries in both"),
    ("too many added", good_delta(added=hosts(40001)), "added: 40001 entries exceed the bound of 40000"),
    # the check form
    ("check form adding", good_delta(base_digest=good_delta()["digest"]), "equals digest, but"),
    ("empty change, two digests", good_delta(added=[], removed=[]), "differs from digest, but added and removed"),
    # the common fields as for the full form
    ("generation zero", good_delta(generation=0), "generation: expected an integer from 1"),
    ("nodes bool", good_delta(nodes=True), "nodes: expected an integer"),
    ("cluster not a label", good_delta(cluster="Prod"), "cluster: 'Prod' is not a DNS label"),
    ("version 1", good_delta(version=1), "version: 1 (HMAC-SHA256 with a shared key) is no longer accepted"),
]


@pytest.mark.parametrize("payload,message", [h[1:] for h in HOSTILE_DELTAS], ids=[h[0] for h in HOSTILE_DELTAS])
def test_hostile_deltas_are_refused(utils, payload, message):
    refused(utils, payload, message)


def test_max_prefix_of_delta_entries_is_configurable(utils):
    payload = good_delta(added=["10.0.0.3", "10.2.0.0/15", "fd00::3"])
    refused(utils, payload, "added[1]: '10.2.0.0/15' is wider than /16")
    assert utils["payload"].verify(payload, RING, max_prefix={"ipv4": 15, "ipv6": 48})["added"][1] == "10.2.0.0/15"
    refused(utils, good_delta(added=hosts(201)), "added: 201 entries exceed the bound of 200", max_entries=100)


def forged(added, removed, result_digest, base=BASE):
    """A delta from ``base`` whose parts need not agree, signed (what a bridge bug could publish)."""
    return good_delta(added=added, removed=removed, digest=result_digest, base_digest=ksb_sign.digest(*base))


NOT_APPLYING = [
    ("removed not held", forged([], ["10.0.0.9"], ksb_sign.digest(*RESULT)), "removed[0]: '10.0.0.9' is not in"),
    (
        "added already held",
        forged(["10.0.0.2"], ["10.0.0.10"], ksb_sign.digest(*RESULT)),
        "added[0]: '10.0.0.2' already is in the list held",
    ),
    ("another result", forged(["10.0.0.3"], [], ksb_sign.digest(*RESULT)), "is not the digest of the list held"),
    (
        "an entry of the other family",
        forged(["fd00::3"], ["10.0.0.10"], ksb_sign.digest(*RESULT)),
        "is not the digest of the list held",
    ),
]


@pytest.mark.parametrize("payload,message", [c[1:] for c in NOT_APPLYING], ids=[c[0] for c in NOT_APPLYING])
def test_a_delta_that_does_not_apply_to_its_base_is_refused(utils, payload, message):
    mod = utils["payload"]
    view = mod.verify(payload, RING)
    with pytest.raises(mod.PayloadError, match="the delta does not apply to the base it names") as err:
        mod.apply_delta(held(), view)
    assert message in str(err.value)


def test_the_result_of_a_delta_is_bounded_as_a_full_list(utils):
    mod = utils["payload"]
    with pytest.raises(mod.PayloadError, match=r"^ipv4: 3 entries exceed the bound of 2 \(pillar kube_allowlist:"):
        mod.apply_delta(held(), good_delta(), max_entries=2)
    pods = sorted(f"10.{i}.0.0/16" for i in range(100, 102))
    payload = ksb_sign.build_delta("prod", 6, BASE, (BASE[0] + pods, BASE[1]), key=KEY)
    with pytest.raises(mod.PayloadError, match=r"^ipv4: the entries cover 196610 addresses"):
        mod.apply_delta(held(), mod.verify(payload, RING), max_address_space={"ipv4": 17, "ipv6": 88})


NOW = 1_795_307_097_725
SKEW = [
    ("at the clock", NOW, 300, True),
    ("in the past", 1, 300, True),
    ("exactly the skew ahead", NOW + 300_000, 300, True),
    ("1 ms beyond the skew", NOW + 300_001, 300, False),
    ("a year ahead", NOW + 365 * 86400 * 1000, 300, False),
    ("zero skew, 1 ms ahead", NOW + 1, 0, False),
    ("larger skew allows it", NOW + 3_600_000, 3600, True),
]


@pytest.mark.parametrize("generation,skew,ok", [c[1:] for c in SKEW], ids=[c[0] for c in SKEW])
def test_generation_skew(utils, generation, skew, ok):
    payload = good(generation=generation)
    if ok:
        assert utils["payload"].verify(payload, RING, now_ms=NOW, max_skew=skew)["generation"] == generation
    else:
        refused(
            utils,
            payload,
            f"ahead of this minion's clock, more than max_generation_skew {skew} s",
            now_ms=NOW,
            max_skew=skew,
        )


def _answer(fn, value, family):
    try:
        return ("ok", fn(value, family, None, "entry"))
    except Exception as err:  # pylint: disable=broad-except
        return (type(err).__name__, str(err))


def _random_addresses(rnd, count):
    import ipaddress  # pylint: disable=import-outside-toplevel

    for _ in range(count):
        if rnd.random() < 0.5:
            pick = [rnd.getrandbits(32), rnd.randint(0, 255) << 24, 0, 0xE0000000 + rnd.getrandbits(28), 0xEFFFFFFF]
            yield str(ipaddress.IPv4Address(rnd.choice(pick)))
        else:
            pick = [
                rnd.getrandbits(128),
                rnd.getrandbits(16) << 112,
                0,
                1,
                (0xFF00 + rnd.randint(0, 255)) << 112,
                0xFFFF << 32 | rnd.getrandbits(32),
                rnd.getrandbits(64),
                0xFF << 112 | rnd.getrandbits(16),
            ]
            yield str(ipaddress.IPv6Address(rnd.choice(pick)))


EDGE_ENTRIES = [
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "239.255.255.255",
    "240.0.0.1",
    "223.255.255.255",
    "ff02::1",
    "ff::1",
    "fe80::1",
    "::ffff:1.2.3.4",
    "::ffff:102:304",
    "01.2.3.4",
    "1.2.3.4 ",
    "FD00::1",
    "fd00:0::1",
    "fd00:0:0:0:0:0:0:1",
    "::1",
    "1.2.3.4/32",
    "10.0.0.0/8",
    "fd00::/128",
    "1.2.3",
    "",
    7,
    None,
]


def test_parse_entry_fast_path_answers_as_ipaddress_does(utils):
    """The string-check path for canonical hosts gives the same value or the same error as ipaddress."""
    import random  # pylint: disable=import-outside-toplevel

    mod = utils["payload"]
    fast, slow = mod.parse_entry, mod._parse_entry_ipaddress  # pylint: disable=protected-access
    values = list(_random_addresses(random.Random(7), 20000)) + EDGE_ENTRIES
    for value in values:
        for family in (None, "ipv4", "ipv6"):
            assert _answer(fast, value, family) == _answer(slow, value, family), (value, family)
