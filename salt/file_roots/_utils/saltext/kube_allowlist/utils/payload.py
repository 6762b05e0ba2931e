"""
Pure helpers for the kube-salt-bridge event payload (docs/event-contract.md, version 2).

Canonical form, digest, Ed25519 signature with key selection by ``key_id``, key text
normalisation, and strict validation of every field and every address, in the full form (the whole
list) and the delta form (a change applied to the list its ``base_digest`` names). No I/O and no Salt
dunders: the execution module ``kube_allowlist`` composes these. Every failure raises
``PayloadError`` whose message names the field and says what is wrong; hostile input (bytes,
floats, NaN, deep nesting, huge strings or integers) is refused the same way, never with a
``TypeError`` or ``RecursionError``.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import itertools
import json
import operator
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSION = 2
FAMILIES = ("ipv4", "ipv6")
# The signed keys both forms carry; each form adds its own (docs/event-contract.md, "Payload" and
# "Delta form"). A payload with ``base_digest`` is a delta and has none of ``FULL_ONLY_KEYS``.
COMMON_KEYS = (
    "version",
    "cluster",
    "generation",
    "digest",
    "added",
    "removed",
    "nodes",
    "issued_at",
    "key_id",
)
DELTA_KEY = "base_digest"
TRUNCATION_KEYS = ("added_truncated", "removed_truncated")
FULL_KEYS = COMMON_KEYS + FAMILIES
DELTA_KEYS = COMMON_KEYS + (DELTA_KEY,)
FULL_ONLY_KEYS = FAMILIES + TRUNCATION_KEYS
# Every key the signature covers when it is present (the canonical form holds those present).
SIGNED_KEYS = FULL_KEYS + TRUNCATION_KEYS + (DELTA_KEY,)
FAMILY_BITS = {"ipv4": 32, "ipv6": 128}
INFO_CAP = 1000
MAX_INT = 2**53
CLUSTER_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ISSUED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
ENTRY_CHARS_RE = re.compile(r"^[0-9a-f.:/]{2,43}$")
# Canonical host text, recognised without ipaddress (the readback of the firewall and the fast
# path of parse_entry): an IPv4 address as str(IPv4Address) prints it, IPv6 hextets as it prints them.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_CANONICAL_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_HEXTET = r"(?:0|[1-9a-f][0-9a-f]{0,3})"
IPV6_HEXTETS_RE = re.compile(rf"(?:{_HEXTET}(?::{_HEXTET})*)?(?:::(?:{_HEXTET}(?::{_HEXTET})*)?)?")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")
SIGNATURE_RE = re.compile(r"^ed25519:[A-Za-z0-9+/]{86}==$")
KEY_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
KEY_B64_RE = re.compile(r"([A-Za-z0-9+/_-]+)(={0,2})")
KEY_WHITESPACE = " \t\r\n"
DEFAULT_MAX_PREFIX = {"ipv4": 16, "ipv6": 48}
DEFAULT_MAX_ENTRIES = 20000
DEFAULT_MAX_ADDRESS_SPACE = {"ipv4": 24, "ipv6": 88}
DEFAULT_MAX_SKEW = 300
# Bounds of the plain-data walk over a whole payload (unknown keys included). The longest string
# the contract carries is a signature (96 characters) or a minion id (128); 1,024 leaves room for
# Salt's own keys. Nesting in the contract is 2 levels (payload -> list -> string).
MAX_STRING = 1024
MAX_DEPTH = 8
EXTRA_VALUES = 10000


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


def is_delta(payload):
    """Return True when ``payload`` is in the delta form (it carries ``base_digest``)."""
    return isinstance(payload, dict) and DELTA_KEY in payload


def signed_view(payload):
    """Return the dict of the signed keys present (``signature``, ``minions``, unknown keys dropped)."""
    return {k: payload[k] for k in SIGNED_KEYS if k in payload}


def canonical(payload):
    """Return the canonical form (the signed message, as str) of a payload."""
    return canonical_json(signed_view(payload))


# --- plain data ---------------------------------------------------------------------------------


def _describe(value):
    if isinstance(value, float):
        return "a float (NaN or infinite)" if value != value or value in (float("inf"), float("-inf")) else "a float"
    return f"a value of type {type(value).__name__}"


def _check_scalar(value, where):
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise PayloadError(f"{where}: a string of {len(value)} characters (at most {MAX_STRING})")
    elif isinstance(value, bool) or value is None:
        pass
    elif type(value) is int:
        if not -MAX_INT < value < MAX_INT:
            raise PayloadError(f"{where}: integer out of range (|n| < 2^53)")
    else:
        raise PayloadError(
            f"{where}: {_describe(value)} is not allowed (only strings, integers, booleans, lists and mappings)"
        )


def check_plain(value, max_values, where="payload"):
    """
    Refuse anything but plain JSON data within bounds, iteratively (no recursion on hostile input).

    Allowed: mappings with string keys, lists, strings of at most ``MAX_STRING`` characters,
    integers with ``|n| < 2**53``, booleans and null, nested at most ``MAX_DEPTH`` levels, at most
    ``max_values`` values in all. Bytes, floats (NaN included), tuples, sets and objects are refused.
    """
    stack = [(value, where, 0)]
    count = 0
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PayloadError(f"{path}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            _check_scalar(node, path)
            count += 1
            continue
        count += len(node) + 1
        if count > max_values:
            raise PayloadError(f"{where}: more than {max_values} values")
        for key, item in items:
            if isinstance(node, dict):
                if not isinstance(key, str):
                    raise PayloadError(f"{path}: a key of type {type(key).__name__} (keys must be strings)")
                if len(key) > 128:
                    raise PayloadError(f"{path}: a key of {len(key)} characters (at most 128)")
                here = f"{path}.{key}"
            else:
                here = f"{path}[{key}]"
            if isinstance(item, (dict, list)):
                stack.append((item, here, depth + 1))
            else:
                _check_scalar(item, here)
    return value


def _refuse_constant(name):
    raise PayloadError(f"payload: {name} is not allowed (numbers must be integers)")


def parse_json(text, max_chars):
    """Parse payload JSON text of at most ``max_chars`` characters; NaN/Infinity and deep nesting refused."""
    if len(text) > max_chars:
        raise PayloadError(f"payload: {len(text)} characters of JSON exceed the bound of {max_chars}")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as err:
        raise PayloadError("payload: nested too deeply") from err
    except ValueError as err:
        if isinstance(err, PayloadError):
            raise
        raise PayloadError(f"payload: not JSON: {str(err)[:200]}") from err


def max_values(max_entries):
    """The bound of ``check_plain`` for payloads with at most ``max_entries`` entries per family."""
    return 2 * max_entries + 4 * INFO_CAP + EXTRA_VALUES


# --- keys ---------------------------------------------------------------------------------------


def parse_key_text(text, where="key"):
    """
    Return the 32 raw bytes of an Ed25519 key written as text (docs/event-contract.md, "Keys").

    ASCII only; leading and trailing space, tab, CR and LF removed; then exactly 64 hex digits, or
    base64 (standard or URL-safe alphabet, either or both) of exactly 32 bytes, without padding or
    with the padding that completes a multiple of 4 characters; unused low bits of the last
    character are ignored, as base64 decoders do. The key
    text itself never appears in a message (a private key pasted by mistake stays out of logs).
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError as err:
            raise PayloadError(f"{where}: not ASCII text (a binary file?)") from err
    if not isinstance(text, str):
        raise PayloadError(f"{where}: expected the key as text, got {type(text).__name__}")
    if not text.isascii():
        raise PayloadError(f"{where}: not ASCII text; a key is 64 hex digits or base64")
    body = text.strip(KEY_WHITESPACE)
    if not body:
        raise PayloadError(f"{where}: empty; a key is 64 hex digits or base64 of 32 bytes")
    if any(c in KEY_WHITESPACE for c in body):
        raise PayloadError(f"{where}: whitespace inside the key")
    if KEY_HEX_RE.fullmatch(body):
        return bytes.fromhex(body)
    match = KEY_B64_RE.fullmatch(body)
    if not match:
        raise PayloadError(
            f"{where}: neither 64 hex digits nor base64 (characters A-Z a-z 0-9 + / _ - and at most two '=' at the end)"
        )
    data = match.group(1).replace("-", "+").replace("_", "/")
    padding = len(match.group(2))
    if len(data) % 4 == 1 or (padding and (len(data) + padding) % 4):
        raise PayloadError(
            f"{where}: not valid base64 ({len(data)} characters with {padding} '='); a key is "
            "32 bytes: 43 base64 characters (44 with '=') or 64 hex digits"
        )
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except binascii.Error as err:  # cannot happen after the checks above; kept as a guard
        raise PayloadError(f"{where}: not valid base64") from err
    if len(raw) != 32:
        raise PayloadError(f"{where}: base64 of {len(raw)} bytes; a key is exactly 32 bytes")
    return raw


def key_id(raw):
    """Return the key id of a 32-byte public key: hex of the first 8 bytes of its SHA-256."""
    return hashlib.sha256(bytes(raw)).digest()[:8].hex()


def key_ring(texts, where):
    """Parse a list of public key texts into ``{key_id: raw}``; ``where`` names the pillar list."""
    if not isinstance(texts, list):
        raise PayloadError(f"{where}: expected a list of public keys, got {type(texts).__name__}")
    ring = {}
    for index, text in enumerate(texts):
        raw = parse_key_text(text, f"{where}[{index}]")
        ring[key_id(raw)] = raw
    return ring


# --- entries ------------------------------------------------------------------------------------


def family_of(entry):
    """Return ``ipv4`` or ``ipv6`` for an address or network string (no validation)."""
    return "ipv6" if ":" in entry else "ipv4"


def ipv6_is_canonical(text):
    """
    Return True when ``text`` is an IPv6 address exactly as ``str(ipaddress.IPv6Address)`` prints it.

    Lower-case hextets without leading zeros; ``::`` replaces the first longest run of two or more
    zero hextets and nothing else is compressed (RFC 5952, as Python and glibc's inet_ntop do).
    Forms this does not accept (dotted IPv4 tails, ``::ffff:`` mapped addresses, whose printing
    depends on the Python version, or anything non-canonical) are left to ``ipaddress``.
    """
    if not IPV6_HEXTETS_RE.fullmatch(text) or text.startswith("::ffff:"):
        return False
    head, double, tail = text.partition("::")
    if not double:
        return text.count(":") == 7 and ":0:0:" not in f":{text}:"
    groups = (head.count(":") + 1 if head else 0) + (tail.count(":") + 1 if tail else 0)
    elided = 8 - groups
    if elided < 2 or head == "0" or head.endswith(":0") or tail == "0" or tail.startswith("0:"):
        return False
    # No zero run as long as the elided one before it, none longer after it.
    return ":0" * elided + ":" not in f":{head}:" and ":0" * (elided + 1) + ":" not in f":{tail}:"


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


def _is_canonical_unicast_host(value, family):
    """
    True for a host address in canonical form, of ``family`` when given, neither unspecified nor
    multicast: what ``parse_entry`` accepts for a host, recognised with string checks alone.
    False means "ask ``ipaddress``", not "invalid".
    """
    if type(value) is not str or "/" in value or len(value) > 43:
        return False
    if ":" in value:
        # ff00::/8 is multicast: a first hextet of four digits starting "ff" (``ff::1`` is 0x00ff).
        return (
            family != "ipv4"
            and value != "::"
            and not (value.startswith("ff") and len(value.partition(":")[0]) == 4)
            and ipv6_is_canonical(value)
        )
    return (
        family != "ipv6"
        and value != "0.0.0.0"
        and IPV4_CANONICAL_RE.fullmatch(value) is not None
        and not 224 <= int(value.partition(".")[0]) <= 239
    )


def parse_entry(value, family=None, max_prefix=None, where="entry"):
    """
    Validate one allow-list entry and return it unchanged.

    It must be a canonical host address (``10.0.0.7``, ``fd00::7``) or network without host bits
    (``10.244.0.0/16``), of ``family`` when given, not wider than ``max_prefix[family]``.
    """
    # Most entries are canonical hosts: accepted with string checks (an apply validates every
    # entry of a 10,000-entry list twice; through ipaddress that is ~140 ms each time).
    if _is_canonical_unicast_host(value, family):
        return value
    return _parse_entry_ipaddress(value, family, max_prefix, where)


def _parse_entry_ipaddress(value, family, max_prefix, where):
    """``parse_entry`` through ``ipaddress``: every entry it does not recognise as a canonical host."""
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


def check_count(value, where, max_entries):
    """Refuse a list of more than ``max_entries`` entries (``where`` names it in the message)."""
    if len(value) > max_entries:
        raise PayloadError(
            f"{where}: {len(value)} entries exceed the bound of {max_entries} (pillar kube_allowlist:max_entries)"
        )


def _check_increasing(value, where):
    # Sorted and unique is strictly increasing: one pass, no copy, no sort.
    if not all(map(operator.lt, value, itertools.islice(value, 1, None))):
        raise PayloadError(f"{where}: entries must be sorted (code-point order) and unique")


def parse_entry_list(value, family, max_prefix=None, max_entries=DEFAULT_MAX_ENTRIES, where=None):
    """
    Validate an allow-list: entries of ``family`` (any family when None), sorted, unique, at most
    ``max_entries``.
    """
    where = where or family
    if not isinstance(value, list):
        raise PayloadError(f"{where}: expected a list, got {type(value).__name__}")
    check_count(value, where, max_entries)
    for index, entry in enumerate(value):
        parse_entry(entry, family, max_prefix, where=f"{where}[{index}]")
    _check_increasing(value, where)
    return value


def address_space(entries, family):
    """Return how many addresses validated ``entries`` of ``family`` cover, each entry counted whole."""
    bits = FAMILY_BITS[family]
    total = 0
    for entry in entries:
        _, slash, prefix = entry.partition("/")
        total += 1 << (bits - int(prefix)) if slash else 1
    return total


def check_address_space(entries, family, max_bits, where=None):
    """Refuse a validated list covering more than ``2**max_bits`` addresses (overlaps counted twice)."""
    where = where or family
    total = address_space(entries, family)
    if total > 1 << max_bits:
        raise PayloadError(
            f"{where}: the entries cover {total} addresses (2^{total.bit_length() - 1} or more), "
            f"more than 2^{max_bits} (pillar kube_allowlist:max_address_space:{family})"
        )
    return total


# --- fields -------------------------------------------------------------------------------------


def _check_int(payload, key, minimum):
    value = payload[key]
    if type(value) is not int or not minimum <= value < MAX_INT:
        shown = value if type(value) is int else type(value).__name__
        raise PayloadError(f"{key}: expected an integer from {minimum} to 2^53 - 1, got {shown}")


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


def check_shape(payload, max_entries=DEFAULT_MAX_ENTRIES):
    """
    Check plain data, the version, the form (full, or delta when ``base_digest`` is present; both at
    once is refused), that every signed key of that form is present, and the types of the strings
    the signature check reads (before the signature). Version 1 is refused by name.
    """
    if not isinstance(payload, dict):
        raise PayloadError(f"payload: expected a mapping, got {type(payload).__name__}")
    check_plain(payload, max_values(max_entries))
    if "version" in payload:
        version = payload["version"]
        if version == 1 and type(version) is int:
            raise PayloadError(
                "version: 1 (HMAC-SHA256 with a shared key) is no longer accepted; this minion "
                "verifies contract version 2 (Ed25519): upgrade the bridge"
            )
        if version != VERSION or type(version) is not int:
            shown = version if type(version) is int else type(version).__name__
            raise PayloadError(f"version: {shown} is not supported, this minion speaks version {VERSION}")
    delta = is_delta(payload)
    if delta:
        mixed = [k for k in FULL_ONLY_KEYS if k in payload]
        if mixed:
            raise PayloadError(
                f"payload: {DELTA_KEY} (the delta form) together with {', '.join(mixed)} (the full form); "
                "a payload is one or the other"
            )
    missing = [k for k in (DELTA_KEYS if delta else FULL_KEYS) + ("signature",) if k not in payload]
    if missing:
        raise PayloadError(f"payload: missing keys {', '.join(missing)}")
    cluster = payload["cluster"]
    if not is_cluster_name(cluster):
        shown = repr(cluster[:80]) if isinstance(cluster, str) else type(cluster).__name__
        raise PayloadError(f"cluster: {shown} is not a DNS label")
    for key in ("digest", "issued_at") + ((DELTA_KEY,) if delta else ()):
        if not isinstance(payload[key], str):
            raise PayloadError(f"{key}: expected a string")
    if not isinstance(payload["key_id"], str) or not KEY_ID_RE.fullmatch(payload["key_id"]):
        raise PayloadError("key_id: expected 16 lower-case hex digits")
    if not isinstance(payload["signature"], str) or not SIGNATURE_RE.fullmatch(payload["signature"]):
        raise PayloadError("signature: expected ed25519: and the standard base64 (with padding) of 64 bytes")
    return payload


def verify_signature(payload, keys):
    """
    Raise ``PayloadError`` unless ``payload`` is signed by the key of ``keys`` (``{key_id: raw}``)
    whose id is the payload's ``key_id``.
    """
    kid = payload["key_id"]
    raw = keys.get(kid)
    if raw is None:
        known = ", ".join(sorted(keys)) or "none"
        raise PayloadError(
            f"key_id: {kid} is not one of this minion's public keys ({known}; pillar kube_allowlist:public_keys)"
        )
    text = payload["signature"][len("ed25519:") :]
    signature = base64.b64decode(text, validate=True)
    if base64.b64encode(signature).decode("ascii") != text:
        raise PayloadError("signature: not the canonical base64 of 64 bytes")
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, canonical(payload).encode("ascii"))
    except InvalidSignature as err:
        raise PayloadError(f"signature: does not verify with key {kid} (the payload was altered or forged)") from err


def check_generation(generation, now_ms, max_skew=DEFAULT_MAX_SKEW):
    """Refuse a generation (ms since the epoch) more than ``max_skew`` seconds ahead of ``now_ms``."""
    ahead = generation - now_ms
    if ahead > max_skew * 1000:
        raise PayloadError(
            f"generation: {generation} is {ahead / 1000:.0f} s ahead of this minion's clock, more "
            f"than max_generation_skew {max_skew} s (is the bridge's clock right?)"
        )


def check_fields(
    payload,
    max_prefix=None,
    max_entries=DEFAULT_MAX_ENTRIES,
    max_address_space=None,
    now_ms=None,
    max_skew=DEFAULT_MAX_SKEW,
):
    """
    Validate every signed field's content (after the signature), the digest and the bounds.

    A delta (:py:func:`is_delta`) is checked as far as it can be without the list it applies to
    (:py:func:`check_delta_fields`); :py:func:`apply_delta` does the rest against the list held.
    """
    _check_int(payload, "generation", 1)
    _check_int(payload, "nodes", 0)
    if not ISSUED_AT_RE.fullmatch(payload["issued_at"]):
        raise PayloadError("issued_at: expected RFC 3339 UTC time such as 2026-11-22T10:00:00.000Z")
    if is_delta(payload):
        check_delta_fields(payload, max_prefix, max_entries)
    else:
        _check_full_fields(payload, max_prefix, max_entries, max_address_space)
    if now_ms is not None:
        check_generation(payload["generation"], now_ms, max_skew)


def _check_digest_text(payload, key):
    if not DIGEST_RE.fullmatch(payload[key]):
        raise PayloadError(f"{key}: expected sha256: and 64 lower-case hex digits")


def _check_full_fields(payload, max_prefix, max_entries, max_address_space):
    space = max_address_space or DEFAULT_MAX_ADDRESS_SPACE
    for family in FAMILIES:
        parse_entry_list(payload[family], family, max_prefix, max_entries)
        check_address_space(payload[family], family, space[family])
    checked = set(payload["ipv4"]).union(payload["ipv6"])
    for key in ("added", "removed"):
        _check_info_list(payload, key, checked)
    _check_digest_text(payload, "digest")
    computed = digest(payload["ipv4"], payload["ipv6"])
    if not hmac.compare_digest(computed, payload["digest"]):
        raise PayloadError(f"digest: {payload['digest']} does not match the lists ({computed})")


def delta_bound(max_entries):
    """The most entries ``added`` or ``removed`` of a delta may hold: a whole list (both families)."""
    return 2 * max_entries


def check_delta_fields(payload, max_prefix=None, max_entries=DEFAULT_MAX_ENTRIES):
    """
    Check what a delta says on its own: both digests well-formed; ``added`` and ``removed`` each a
    list of at most :py:func:`delta_bound` canonical entries (either family, within ``max_prefix``),
    sorted and unique, no entry in both; the check form (``base_digest`` equal to ``digest``) with
    both lists empty, and a delta with both lists empty only in the check form.
    """
    for key in ("digest", DELTA_KEY):
        _check_digest_text(payload, key)
    for key in ("added", "removed"):
        parse_entry_list(payload[key], None, max_prefix, delta_bound(max_entries), where=key)
    both = set(payload["added"]).intersection(payload["removed"])
    if both:
        raise PayloadError(f"added, removed: {len(both)} entries in both, such as {min(both)!r}")
    same = payload[DELTA_KEY] == payload["digest"]
    if same and (payload["added"] or payload["removed"]):
        raise PayloadError(f"{DELTA_KEY}: equals digest, but added or removed is not empty")
    if not same and not (payload["added"] or payload["removed"]):
        raise PayloadError(f"{DELTA_KEY}: differs from digest, but added and removed are empty")


def apply_delta(held, payload, max_entries=DEFAULT_MAX_ENTRIES, max_address_space=None):
    """
    Return ``{"ipv4": [...], "ipv6": [...]}``: the validated lists ``held`` minus the delta's
    ``removed`` plus its ``added``, each sorted (code-point order), after
    :py:func:`check_delta_fields`.

    The caller has checked that ``held`` is the list ``base_digest`` names. Refused when an entry
    of ``removed`` is not held, one of ``added`` already is, the result's digest is not ``digest``,
    or the result exceeds ``max_entries`` per family or ``max_address_space`` (as a full list would).
    """
    lists = {family: set(held[family]) for family in FAMILIES}
    for key, present in (("removed", True), ("added", False)):
        for index, entry in enumerate(payload[key]):
            entries = lists[family_of(entry)]
            if (entry in entries) is not present:
                state = "is not" if present else "already is"
                raise PayloadError(
                    f"{key}[{index}]: {entry!r} {state} in the list held ({payload[DELTA_KEY]}): "
                    "the delta does not apply to the base it names"
                )
            if present:
                entries.discard(entry)
            else:
                entries.add(entry)
    result = {family: sorted(lists[family]) for family in FAMILIES}
    computed = digest(result["ipv4"], result["ipv6"])
    if not hmac.compare_digest(computed, payload["digest"]):
        raise PayloadError(
            f"digest: {payload['digest']} is not the digest of the list held minus removed plus added "
            f"({computed}): the delta does not apply to the base it names"
        )
    space = max_address_space or DEFAULT_MAX_ADDRESS_SPACE
    for family in FAMILIES:
        check_count(result[family], family, max_entries)
        check_address_space(result[family], family, space[family])
    return result


def verify(
    payload,
    keys,
    max_prefix=None,
    max_entries=DEFAULT_MAX_ENTRIES,
    max_address_space=None,
    now_ms=None,
    max_skew=DEFAULT_MAX_SKEW,
):
    """
    Fully verify a bridge payload: plain data, version, form and shape, key id and signature, every
    field, digest, address space and (with ``now_ms``) the generation's skew. A delta is verified as
    far as it can be alone (:py:func:`check_delta_fields`); :py:func:`apply_delta` completes it.

    ``keys`` maps key id to raw 32-byte public key (:py:func:`key_ring`). Returns the signed view
    (unsigned and unknown keys dropped) plus ``signature``.
    """
    check_shape(payload, max_entries)
    verify_signature(payload, keys)
    check_fields(payload, max_prefix, max_entries, max_address_space, now_ms, max_skew)
    view = signed_view(payload)
    view["signature"] = payload["signature"]
    return view
