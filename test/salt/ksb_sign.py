"""
Build and sign kube-salt-bridge payloads (contract version 2, Ed25519) for tests, written from
docs/event-contract.md alone (independently of saltext.kube_allowlist.utils.payload, so both are
checked against the contract).

A key is given as its 32-byte seed, or as a label from which a seed is derived (SHA-256 of the
label), so that tests can name several distinct keys. The default is the seed ``bytes(range(32))``.
"""

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SEED = bytes(range(32))
SIGNED = (
    "version",
    "cluster",
    "generation",
    "digest",
    "ipv4",
    "ipv6",
    "added",
    "removed",
    "nodes",
    "issued_at",
    "key_id",
    "added_truncated",
    "removed_truncated",
    "base_digest",
)


def _canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def seed_of(key=SEED):
    """The 32-byte seed of ``key`` (a seed, or a label)."""
    if isinstance(key, bytes) and len(key) == 32:
        return key
    return hashlib.sha256(key.encode() if isinstance(key, str) else bytes(key)).digest()


def private_key(key=SEED):
    return Ed25519PrivateKey.from_private_bytes(seed_of(key))


def public_raw(key=SEED):
    """The 32 raw bytes of the public key of ``key``."""
    return private_key(key).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_hex(key=SEED):
    """The public key as 64 hex digits (the text a pillar holds)."""
    return public_raw(key).hex()


def public_b64(key=SEED, urlsafe=False, padding=True):
    """The public key as base64 text."""
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(public_raw(key)).decode()
    return text if padding else text.rstrip("=")


def key_id(key=SEED):
    """16 hex digits: the first 8 bytes of SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def resign(payload, key=SEED, set_key_id=True):
    """Return a copy of ``payload`` with its key id (unless ``set_key_id`` is false) and signature
    recomputed (digest left as it is)."""
    out = dict(payload)
    if set_key_id:
        out["key_id"] = key_id(key)
    body = _canon({k: out[k] for k in SIGNED if k in out}).encode("ascii")
    out["signature"] = "ed25519:" + base64.b64encode(private_key(key).sign(body)).decode()
    return out


def build(cluster, generation, ipv4=(), ipv6=(), key=SEED, previous=(), **extra):
    """Return a signed payload; ``previous`` is the last published entries (for added/removed)."""
    ipv4, ipv6 = sorted(set(ipv4)), sorted(set(ipv6))
    now = set(ipv4) | set(ipv6)
    payload = {
        "version": 2,
        "cluster": cluster,
        "generation": generation,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "added": sorted(now - set(previous))[:1000],
        "removed": sorted(set(previous) - now)[:1000],
        "nodes": max(len(ipv4), len(ipv6)),
        "issued_at": "2026-11-22T10:00:00.000Z",
        "digest": "sha256:" + hashlib.sha256(_canon({"ipv4": ipv4, "ipv6": ipv6}).encode()).hexdigest(),
    }
    payload.update(extra)
    return resign(payload, key)


def digest(ipv4=(), ipv6=()):
    """``sha256:`` + hex SHA-256 of the canonical JSON of the sorted lists."""
    body = _canon({"ipv4": sorted(set(ipv4)), "ipv6": sorted(set(ipv6))}).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def build_delta(cluster, generation, base, result, key=SEED, **extra):
    """Return a signed delta payload from the lists ``base`` to ``result`` (each ``(ipv4, ipv6)``)."""
    old, new = set(base[0]) | set(base[1]), set(result[0]) | set(result[1])
    payload = {
        "version": 2,
        "cluster": cluster,
        "generation": generation,
        "digest": digest(*result),
        "base_digest": digest(*base),
        "added": sorted(new - old),
        "removed": sorted(old - new),
        "nodes": max(len(set(result[0])), len(set(result[1]))),
        "issued_at": "2026-11-22T10:00:00.000Z",
    }
    payload.update(extra)
    return resign(payload, key)
