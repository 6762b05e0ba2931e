"""
Real-kernel tests: each backend, IPv4 and IPv6, in network namespaces created here, with the
module run by the real Salt loader (salt-call --local inside the "minion" namespace) and proved
with real TCP connects from chosen source addresses in the "nodes" namespace.

These never skip: without root or network namespaces they fail and say what is missing
(fixtures ``extmods`` and ``lab`` in conftest.py).
"""

import json
import random

import pytest

import ksb_sign
from ksb_minion import Minion
from netlab import MINION_V4, MINION_V6, OTHER_PORT
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6

KEY = "netns-test-key"
BACKENDS = ("ipset", "nftables", "iptables")
TRACES = ("KSB-ALLOW", "ksb-", "kube_allowlist")


def pillar(backend, **extra):
    return {
        "public_keys": [ksb_sign.public_b64(KEY)],
        "backend": backend,
        "clusters": {"prod": {}},
        "rules": [{"name": "pg", "clusters": ["prod"], "proto": "tcp", "ports": [5432]}],
        **extra,
    }


def payload(generation, v4, v6, **extra):
    return ksb_sign.build("prod", generation, v4, v6, key=KEY, **extra)


def no_trace(ruleset):
    return [t for t in TRACES if t in ruleset]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_converges_exactly(lab, extmods, tmp_path, backend):
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar(backend))
    lab.run(lab.minion, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(OTHER_PORT), "-s", V4[4], "-j", "DROP"])
    lab.run(lab.minion, ["nft", "add", "table", "inet", "unrelated"])
    assert lab.reachable(V4 + V6) == set(V4 + V6), "baseline: everything connects"

    code, ret = minion.call("kube_allowlist.apply", payload=payload(1, V4[:2], V6[:2]))
    assert (code, ret["applied"], ret["changed"]) == (0, True, True), ret
    assert lab.reachable(V4 + V6) == set(V4[:2] + V6[:2])
    assert lab.reachable(V4[:4], OTHER_PORT) == set(V4[:4]), "unprotected port untouched"
    assert not lab.reachable([V4[4]], OTHER_PORT), "pre-existing rule still in effect"

    before = lab.ruleset()
    code, ret = minion.call("kube_allowlist.apply", payload=payload(1, V4[:2], V6[:2]))
    assert (code, ret["changed"], ret["reason"]) == (0, False, "already current at generation 1")
    assert lab.ruleset() == before, "a repeated apply changes nothing"

    code, ret = minion.call("kube_allowlist.apply", payload=payload(2, V4[1:3], V6[1:3]))
    assert (code, ret["changed"]) == (0, True)
    assert (ret["added"], ret["removed"]) == ([V4[2], V6[2]], [V4[0], V6[0]])
    assert lab.reachable(V4 + V6) == set(V4[1:3] + V6[1:3]), "departed dropped, new accepted"

    after_update = lab.ruleset()
    forged = dict(payload(3, V4, V6), signature="ed25519:" + "A" * 86 + "==")
    code, ret = minion.call("kube_allowlist.apply", payload=forged)
    assert (code, ret["applied"]) == (1, False) and "signature" in ret["reason"]
    tampered = dict(payload(3, V4[1:3], V6[1:3]), ipv4=V4, digest=payload(3, V4, V6[1:3])["digest"])
    assert minion.call("kube_allowlist.apply", payload=tampered)[0] == 1
    code, ret = minion.call("kube_allowlist.apply", payload=payload(1, V4[:2], V6[:2]))
    assert (code, ret["applied"]) == (0, False) and ret["reason"].startswith("stale"), "replay ignored"
    assert lab.ruleset() == after_update, "forged, tampered and replayed payloads change nothing"

    wipe(lab)  # a reboot: the kernel forgets, the cache remains
    assert lab.reachable(V4[:1]) == set(V4[:1])
    code, ret = minion.call("kube_allowlist.restore")
    assert code == 0 and ret["changed"] and ret["generations"] == {"prod": 2}
    assert lab.reachable(V4 + V6) == set(V4[1:3] + V6[1:3]), "restored from cache"

    code, ret = minion.call("kube_allowlist.flush")
    assert code == 0 and ret["caches_removed"] == ["prod"]
    remaining = lab.ruleset()
    assert no_trace(remaining) == [], remaining
    assert f"-A INPUT -s {V4[4]}/32 -p tcp -m tcp --dport {OTHER_PORT} -j DROP" in remaining
    assert "table inet unrelated" in remaining
    assert lab.reachable(V4[:4] + V6) == set(V4[:4] + V6), "flushed: port open again"


@pytest.mark.parametrize("backend", BACKENDS)
def test_loopback_is_never_filtered(lab, extmods, tmp_path, backend):
    """A local client of the protected port (127.0.0.1, ::1, the minion's own addresses) still
    connects while an unlisted node is dropped: traffic on lo passes our chain untouched."""
    local = ["127.0.0.1", "::1", MINION_V4, MINION_V6]
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar(backend))
    assert lab.local_reachable(local) == set(local), "baseline: local clients connect"
    code, ret = minion.call("kube_allowlist.apply", payload=payload(1, V4[:1], V6[:1]))
    assert (code, ret["applied"]) == (0, True), ret
    assert lab.reachable(V4[:2] + V6[:2]) == {V4[0], V6[0]}, "unlisted node hosts dropped"
    assert lab.local_reachable(local) == set(local), "loopback untouched"
    minion.call("kube_allowlist.flush")
    assert no_trace(lab.ruleset()) == []


def wipe(lab):
    """Remove our objects with plain tools, as a reboot would (the unrelated rule stays)."""
    for tool in ("iptables", "ip6tables"):
        lab.run(lab.minion, [tool, "-D", "INPUT", "-j", "KSB-ALLOW"], check=False)
        lab.run(lab.minion, [tool, "-F", "KSB-ALLOW"], check=False)
        lab.run(lab.minion, [tool, "-X", "KSB-ALLOW"], check=False)
    for name in lab.run(lab.minion, ["ipset", "list", "-n"]).stdout.split():
        if name.startswith("ksb-"):
            lab.run(lab.minion, ["ipset", "destroy", name])
    lab.run(lab.minion, ["nft", "delete", "table", "inet", "kube_allowlist"], check=False)
    assert no_trace(lab.ruleset()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_rule_options_and_families(lab, extmods, tmp_path, backend):
    """others=reject/none, extra_sources, an IPv4-only rule, port ranges, several clusters."""
    minion = Minion(tmp_path, extmods, lab.minion)
    rules = [
        {
            "name": "pg",
            "clusters": ["prod", "stage"],
            "ports": ["5000:5500"],
            "others": "reject",
            "extra_sources": [V4[3], "fd77::14"],
            "families": ["ipv4", "ipv6"],
        },
        {"name": "other", "clusters": ["prod"], "ports": [OTHER_PORT], "families": ["ipv4"]},
    ]
    minion.set_pillar(pillar(backend, rules=rules, clusters={"prod": {}, "stage": {}}))
    code, ret = minion.call("kube_allowlist.apply", payload=payload(1, V4[:1], V6[:1]))
    assert code == 0 and "pg waits for stage" in ret["reason"], ret
    assert lab.reachable(V4 + V6) == set(V4 + V6), "pg not enforced until stage is known"
    assert lab.reachable(V4 + V6, OTHER_PORT) == set(V4[:1] + V6), "ipv4-only rule"
    stage = ksb_sign.build("stage", 1, V4[1:2], V6[1:2], key=KEY)
    assert minion.call("kube_allowlist.apply", payload=stage)[0] == 0
    assert lab.reachable(V4 + V6) == set(V4[:2] + V6[:2] + [V4[3], "fd77::14"])
    assert minion.call("kube_allowlist.flush", cluster="stage")[1]["caches_removed"] == ["stage"]
    assert lab.reachable(V4 + V6) == set(V4 + V6), "pg waits for stage again"
    minion.call("kube_allowlist.flush")
    assert no_trace(lab.ruleset()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_updates_are_atomic_for_listed_nodes(lab, extmods, tmp_path, backend):
    """A listed node connecting in a loop sees zero failures across 200 updates."""
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar(backend, max_shrink=1.0))
    rng = random.Random(7)
    payloads = []
    for generation in range(1, 201):
        filler4 = [f"10.200.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(rng.randrange(1, 300))]
        filler6 = [f"fd99::{rng.randrange(1, 65535):x}" for _ in range(rng.randrange(1, 300))]
        payloads.append(payload(generation, [V4[0]] + filler4, [V6[0]] + filler6))
    minion.apply_batch(payloads[:1], tmp_path / "first.jsonl")
    stop = tmp_path / "stop"
    outputs = [tmp_path / "c4.json", tmp_path / "c6.json"]
    connectors = [lab.connector(src, str(stop), str(out)) for src, out in zip((V4[0], V6[0]), outputs, strict=True)]
    results = minion.apply_batch(payloads[1:], tmp_path / "rest.jsonl")
    stop.touch()
    for proc in connectors:
        proc.wait(timeout=30)
    assert all(r["applied"] and r["changed"] for r in results), [r["reason"] for r in results if not r["applied"]]
    for out in outputs:
        counts = json.loads(out.read_text())
        assert counts["ok"] > 50 and counts["failed"] == 0, (out.name, counts)
    assert lab.reachable(V4[1:2] + V6[1:2]) == set()
