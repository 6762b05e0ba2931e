"""
Build and sign kube-salt-bridge payloads for tests, written from docs/event-contract.md alone
(independently of salt/_utils/kube_allowlist_payload.py, so both are checked against the contract).
"""

import hashlib
import hmac
import json

SIGNED = ("version", "cluster", "generation", "digest", "ipv4", "ipv6", "added", "removed",
          "nodes", "target", "issued_at", "added_truncated", "removed_truncated")


def _canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def resign(payload, key):
    """Return a copy of ``payload`` with its signature recomputed (digest left as it is)."""
    out = dict(payload)
    body = _canon({k: out[k] for k in SIGNED if k in out}).encode()
    out["signature"] = "hmac-sha256:" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return out


def build(cluster, generation, ipv4=(), ipv6=(), key="test-key", previous=(), **extra):
    """Return a signed payload; ``previous`` is the last published entries (for added/removed)."""
    ipv4, ipv6 = sorted(set(ipv4)), sorted(set(ipv6))
    now = set(ipv4) | set(ipv6)
    payload = {
        "version": 1,
        "cluster": cluster,
        "generation": generation,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "added": sorted(now - set(previous))[:1000],
        "removed": sorted(set(previous) - now)[:1000],
        "nodes": max(len(ipv4), len(ipv6)),
        "target": f"I@kube_allowlist:clusters:{cluster}",
        "issued_at": "2026-11-22T10:00:00.000Z",
        "digest": "sha256:" + hashlib.sha256(_canon({"ipv4": ipv4, "ipv6": ipv6}).encode()).hexdigest(),
    }
    payload.update(extra)
    return resign(payload, key)
