"""
Pure helpers for the kube-salt-bridge event payload (docs/event-contract.md, version 1).

Canonical form, digest and signature, and strict validation of every field and every address.
No I/O and no Salt dunders: the execution module ``kube_allowlist`` composes these.
Every failure raises ``PayloadError`` whose message names the field and says what is wrong.
"""

import hashlib
import hmac
import ipaddress
import itertools
import json
import operator
import re

VERSION = 1
SIGNED_KEYS = (
    "version",
    "cluster",
    "generation",
    "digest",
    "ipv4",
    "ipv6",
    "added",
    "removed",
    "nodes",
    "target",
    "issued_at",
)
OPTIONAL_SIGNED_KEYS = ("added_truncated", "removed_truncated")
FAMILIES = ("ipv4", "ipv6")
INFO_CAP = 1000
CLUSTER_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ISSUED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
ENTRY_CHARS_RE = re.compile(r"^[0-9a-f.:/]{2,43}$")
TARGET_RE = re.compile(r"^[\x20-\x7e]{1,1024}$")
DEFAULT_MAX_PREFIX = {"ipv4": 16, "ipv6": 48}
DEFAULT_MAX_ENTRIES = 20000


class PayloadError(ValueError):
    """A payload, or a pillar value validated like one, is not acceptable."""


def is_cluster_name(value):
    """Return True when ``value`` is a cluster name (a DNS label, as in the event tag)."""
    return isinstance(value, str) and bool(CLUSTER_RE.fullmatch(value))


def canonical_json(obj):
    """Serialise ``obj`` exactly as the contract's canonical form (sorted keys, no spaces, ASCII)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(ipv4, ipv6):
    """Return ``sha256:<hex>`` of the canonical JSON of ``{"ipv4": [...], "ipv6": [...]}``."""
    body = canonical_json({"ipv4": list(ipv4), "ipv6": list(ipv6)}).encode("ascii")
    return "sha256:" + hashlib.sha256(body).hexdigest()


def signed_view(payload):
    """Return the dict of the keys that are signed (unknown keys such as ``_stamp`` dropped)."""
    keys = SIGNED_KEYS + tuple(k for k in OPTIONAL_SIGNED_KEYS if k in payload)
    return {k: payload[k] for k in keys if k in payload}


def canonical(payload):
    """Return the canonical form (the signed bytes, as str) of a payload."""
    return canonical_json(signed_view(payload))


def sign(payload, key):
    """Return ``hmac-sha256:<hex>`` over the canonical form, keyed with ``key`` (str)."""
    mac = hmac.new(key.encode("utf-8"), canonical(payload).encode("ascii"), hashlib.sha256)
    return "hmac-sha256:" + mac.hexdigest()


def family_of(entry):
    """Return ``ipv4`` or ``ipv6`` for an address or network string (no validation)."""
    return "ipv6" if ":" in entry else "ipv4"


def _generic_parse_error(value):
    """Return the error ``ipaddress.ip_network``/``ip_address`` raise for ``value``, or None."""
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=True)
        else:
            ipaddress.ip_address(value)
    except ValueError as err:
        return err
    return None


def parse_entry(value, family=None, max_prefix=None, where="entry"):
    """
    Validate one allow-list entry and return it unchanged.

    It must be a canonical host address (``10.0.0.7``, ``fd00::7``) or network without host bits
    (``10.244.0.0/16``), of ``family`` when given, not wider than ``max_prefix[family]``.
    """
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a string, got {type(value).__name__}")
    if not ENTRY_CHARS_RE.fullmatch(value):
        raise PayloadError(
            f"{where}: {value[:60]!r} is not an address: only lower-case hex digits, '.', ':' and '/' "
            "are allowed (no spaces, zone ids or other characters)"
        )
    # An IPv4 text never holds ':' and an IPv6 text always does, so only that family's class is
    # tried (ip_address/ip_network would first fail as IPv4 on every IPv6 entry). On failure the
    # generic parsers are asked for the message, so errors read as they always did.
    is_v6 = ":" in value
    try:
        if "/" in value:
            net = ipaddress.IPv6Network(value) if is_v6 else ipaddress.IPv4Network(value)
            addr = net.network_address
        else:
            net = None
            addr = ipaddress.IPv6Address(value) if is_v6 else ipaddress.IPv4Address(value)
    except ValueError as err:
        raise PayloadError(
            f"{where}: {value[:60]!r} is not a valid address or network: {_generic_parse_error(value) or err}"
        ) from err
    fam = "ipv6" if is_v6 else "ipv4"
    if family is not None and fam != family:
        raise PayloadError(f"{where}: {value[:60]!r} is {fam}, expected {family}")
    if is_v6 and addr.ipv4_mapped is not None:
        raise PayloadError(f"{where}: {value[:60]!r} is an IPv4-mapped IPv6 address; list the IPv4 form")
    if net is not None:
        if net.prefixlen == net.max_prefixlen:
            canonical_text = str(addr)
        else:
            canonical_text = str(net)
        bound = (max_prefix or DEFAULT_MAX_PREFIX)[fam]
        if net.prefixlen < bound:
            raise PayloadError(
                f"{where}: {value[:60]!r} is wider than /{bound}, the bound for {fam} "
                f"(pillar kube_allowlist:max_prefix:{fam})"
            )
    else:
        canonical_text = str(addr)
    if addr.is_unspecified or addr.is_multicast:
        raise PayloadError(f"{where}: {value[:60]!r} is not a unicast address")
    if canonical_text != value:
        raise PayloadError(f"{where}: {value[:60]!r} is not in canonical form, expected {canonical_text!r}")
    return value


def parse_entry_list(value, family, max_prefix=None, max_entries=DEFAULT_MAX_ENTRIES, where=None):
    """Validate a full allow-list: entries of ``family``, sorted, unique, at most ``max_entries``."""
    where = where or family
    if not isinstance(value, list):
        raise PayloadError(f"{where}: expected a list, got {type(value).__name__}")
    if len(value) > max_entries:
        raise PayloadError(
            f"{where}: {len(value)} entries exceed the bound of {max_entries} "
            "(pillar kube_allowlist:max_entries)"
        )
    for index, entry in enumerate(value):
        parse_entry(entry, family, max_prefix, where=f"{where}[{index}]")
    # Sorted and unique is strictly increasing: one pass, no copy, no sort.
    if not all(map(operator.lt, value, itertools.islice(value, 1, None))):
        raise PayloadError(f"{where}: entries must be sorted (code-point order) and unique")
    return value


def _check_int(payload, key, minimum):
    value = payload[key]
    if type(value) is not int or value < minimum:
        raise PayloadError(f"{key}: expected an integer >= {minimum}, got {value!r}")


def _check_info_list(payload, key, checked=frozenset()):
    # ``checked`` holds entries of the full lists, which passed parse_entry with stricter bounds
    # (their family, max_prefix): those pass this check too and are not parsed a second time.
    value = payload[key]
    if not isinstance(value, list) or len(value) > INFO_CAP:
        raise PayloadError(f"{key}: expected a list of at most {INFO_CAP} entries")
    for index, entry in enumerate(value):
        if type(entry) is not str or entry not in checked:
            parse_entry(entry, None, {"ipv4": 0, "ipv6": 0}, where=f"{key}[{index}]")
    flag = key + "_truncated"
    if flag in payload and not isinstance(payload[flag], bool):
        raise PayloadError(f"{flag}: expected a boolean")


def check_shape(payload):
    """Check that every signed key is present with the right scalar type (before the signature)."""
    if not isinstance(payload, dict):
        raise PayloadError(f"payload: expected a mapping, got {type(payload).__name__}")
    missing = [k for k in SIGNED_KEYS if k not in payload]
    if missing:
        raise PayloadError(f"payload: missing keys {', '.join(missing)}")
    if payload["version"] != VERSION or type(payload["version"]) is not int:
        raise PayloadError(
            f"version: {payload['version']!r} is not supported, this module speaks version {VERSION}"
        )
    cluster = payload["cluster"]
    if not is_cluster_name(cluster):
        raise PayloadError(f"cluster: {str(cluster)[:80]!r} is not a DNS label")
    for key in ("digest", "target", "issued_at", "signature"):
        if not isinstance(payload.get(key), str):
            raise PayloadError(f"{key}: expected a string")
    return payload


def verify_signature(payload, key):
    """Raise ``PayloadError`` unless the payload's signature matches HMAC-SHA256 under ``key``."""
    expected = sign(payload, key)
    if not hmac.compare_digest(expected.encode("ascii"), payload["signature"].encode("ascii", "replace")):
        raise PayloadError(
            "signature: does not match (wrong kube_allowlist:signing_key, or the payload was altered)"
        )


def check_fields(payload, max_prefix=None, max_entries=DEFAULT_MAX_ENTRIES):
    """Validate every signed field's content (after the signature) and the digest."""
    _check_int(payload, "generation", 1)
    _check_int(payload, "nodes", 0)
    if not ISSUED_AT_RE.fullmatch(payload["issued_at"]):
        raise PayloadError("issued_at: expected RFC 3339 UTC time such as 2026-11-22T10:00:00.000Z")
    if not TARGET_RE.fullmatch(payload["target"]):
        raise PayloadError("target: expected 1-1024 printable ASCII characters")
    for family in FAMILIES:
        parse_entry_list(payload[family], family, max_prefix, max_entries)
    checked = set(payload["ipv4"]).union(payload["ipv6"])
    for key in ("added", "removed"):
        _check_info_list(payload, key, checked)
    computed = digest(payload["ipv4"], payload["ipv6"])
    if not hmac.compare_digest(computed, payload["digest"]):
        raise PayloadError(f"digest: {payload['digest'][:80]!r} does not match the lists ({computed})")


def verify(payload, key, max_prefix=None, max_entries=DEFAULT_MAX_ENTRIES):
    """
    Fully verify a bridge payload: shape, signature, every field, digest.

    Returns the signed view (unknown keys dropped) plus ``signature``.
    """
    check_shape(payload)
    verify_signature(payload, key)
    check_fields(payload, max_prefix, max_entries)
    view = signed_view(payload)
    view["signature"] = payload["signature"]
    return view
