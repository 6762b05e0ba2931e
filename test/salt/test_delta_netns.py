"""
Real-kernel test of the delta form (docs/event-contract.md, "Delta form"): with each backend, a delta
on the list held changes which node addresses connect, exactly as its result says; a delta from
another list (need full), one that does not apply to its base, and one whose signature is over other
content change nothing; the check form answers already current. Proved with real TCP connects from
the "nodes" namespace to the minion run by the real Salt loader (salt-call --local).
"""

import pytest

import ksb_sign
from ksb_minion import Minion
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6

KEY = "netns-delta-key"
BACKENDS = ("ipset", "nftables", "iptables")


def full(generation, v4, v6):
    return ksb_sign.build("prod", generation, v4, v6, key=KEY)


def delta(generation, base, result, **extra):
    return ksb_sign.build_delta("prod", generation, base, result, key=KEY, **extra)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_delta_changes_the_rules_only_on_its_base(lab, extmods, tmp_path, backend):
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(
        {
            "public_keys": [ksb_sign.public_hex(KEY)],
            "backend": backend,
            "clusters": {"prod": {}},
            "rules": [{"name": "pg", "clusters": ["prod"], "proto": "tcp", "ports": [5432]}],
        }
    )
    code, ret = minion.call("kube_allowlist.apply", payload=delta(1, (V4[:1], []), (V4[:2], [])))
    assert (code, ret["applied"], ret["need_full"]) == (0, False, True), ret
    assert lab.reachable(V4 + V6) == set(V4 + V6), "nothing held: need full, nothing enforced"

    first = (V4[:2], V6[:2])
    assert minion.call("kube_allowlist.apply", payload=full(1, *first))[1]["applied"]
    assert lab.reachable(V4 + V6) == set(V4[:2] + V6[:2])

    second = (V4[1:3], V6[:3])
    code, ret = minion.call("kube_allowlist.apply", payload=delta(2, first, second))
    assert (code, ret["applied"], ret["changed"], ret["need_full"]) == (0, True, True, False), ret
    assert (ret["added"], ret["removed"]) == ([V4[2], V6[2]], [V4[0]])
    assert lab.reachable(V4 + V6) == set(V4[1:3] + V6[:3]), "the departed node dropped, the new ones accepted"

    before = lab.ruleset()
    code, ret = minion.call("kube_allowlist.apply", payload=delta(2, second, second))
    assert (code, ret["applied"], ret["changed"]) == (0, True, False) and ret["reason"].startswith("already current")
    code, ret = minion.call("kube_allowlist.apply", payload=delta(3, first, (V4, V6)))
    assert (code, ret["applied"], ret["need_full"]) == (0, False, True), "a delta from another list"
    inconsistent = ksb_sign.resign(dict(delta(3, second, (V4, V6)), removed=["10.77.0.99"]), KEY)
    code, ret = minion.call("kube_allowlist.apply", payload=inconsistent)
    assert (code, ret["applied"]) == (1, False) and "is not in the list held" in ret["reason"], ret
    stolen = dict(delta(3, second, (V4, V6)), signature=delta(3, second, second)["signature"])
    code, ret = minion.call("kube_allowlist.apply", payload=stolen)
    assert (code, ret["applied"]) == (1, False) and ret["reason"].startswith("refused: signature: does not verify")
    assert lab.ruleset() == before and lab.reachable(V4 + V6) == set(V4[1:3] + V6[:3]), "the last good rules stay"

    minion.call("kube_allowlist.flush")
