"""
Real kernel: the boot-time restore. After a reboot with no master and no pillar, ``salt-call
--local kube_allowlist.restore`` rebuilds exactly the rules the firewall enforced, from the files
next to the caches alone, proved with real TCP connections; a damaged state file fails with exit
code 2 and touches nothing. Each backend, IPv4 and IPv6, in namespaces created here.
"""

import json

import pytest

import ksb_sign
from ksb_minion import Minion
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6
from netlab import OTHER_PORT
from test_backends_netns import BACKENDS, KEY, no_trace, wipe

OURS = ("list", "table", "inet", "kube_allowlist")


def pillar(backend):
    return {
        "public_keys": [ksb_sign.public_hex(KEY)],
        "backend": backend,
        "clusters": {"prod": {}},
        "rules": [{"name": "pg", "clusters": ["prod"], "ports": [5432], "others": "reject", "extra_sources": [V4[4]]}],
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_boot_restore_without_master_or_pillar(lab, extmods, tmp_path, backend):
    minion = Minion(tmp_path, extmods, lab.minion)
    # cache_dir left at its default (<minion cachedir>/kube_allowlist), as on a real minion.
    minion.set_pillar(dict(pillar(backend), cache_dir=str(minion.default_cache_dir)))
    lab.run(lab.minion, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(OTHER_PORT), "-s", V4[3], "-j", "DROP"])
    code, ret = minion.call("kube_allowlist.apply", payload=ksb_sign.build("prod", 4, V4[:2], V6[:2], key=KEY))
    assert (code, ret["applied"]) == (0, True), ret
    allowed = set(V4[:2] + V6[:2] + [V4[4]])
    assert lab.reachable(V4 + V6) == allowed
    # iptables-save, ipset save and our nft table: what a real reboot would have to re-create.
    enforced = lab.ruleset(OURS)

    wipe(lab)  # a reboot: the kernel forgets our objects; the unrelated rule comes back by itself
    assert lab.reachable(V4 + V6) == set(V4 + V6), "open after the reboot, before the restore"
    minion.clear_pillar()  # no master to ask, no pillar
    code, ret = minion.call("kube_allowlist.restore")
    assert code == 0 and (ret["source"], ret["changed"], ret["backend"]) == ("persisted", True, backend), ret
    assert ret["generations"] == {"prod": 4}
    assert lab.reachable(V4 + V6) == allowed, "closed again from disk alone"
    assert lab.ruleset(OURS) == enforced, "exactly the rules enforced before the reboot"
    assert not lab.reachable([V4[3]], OTHER_PORT), "the unrelated rule still in effect"

    code, ret = minion.call("kube_allowlist.restore", persisted=True)
    assert (code, ret["changed"]) == (0, False) and lab.ruleset(OURS) == enforced, "idempotent"

    state = minion.default_cache_dir / "_enforced.json"
    doc = json.loads(state.read_text())
    doc["rules"][0]["ports"] = ["5432;reboot"]
    state.write_text(json.dumps(doc))
    wipe(lab)
    code, ret = minion.call("kube_allowlist.restore", persisted=True)
    assert code == 2 and ret["error"].startswith("cannot restore from disk: ") and "ports" in ret["error"], ret
    assert no_trace(lab.ruleset()) == [], "a damaged state file changes nothing"

    minion.set_pillar(dict(pillar(backend), cache_dir=str(minion.default_cache_dir)))
    code, ret = minion.call("kube_allowlist.restore")
    assert (code, ret["source"], ret["changed"]) == (0, "pillar", True), ret
    assert lab.reachable(V4 + V6) == allowed, "with the pillar back, restore repairs the state file"
    minion.clear_pillar()
    wipe(lab)
    assert minion.call("kube_allowlist.restore")[0] == 0 and lab.ruleset(OURS) == enforced

    minion.set_pillar(dict(pillar(backend), cache_dir=str(minion.default_cache_dir)))
    code, ret = minion.call("kube_allowlist.flush")
    assert code == 0 and no_trace(lab.ruleset()) == []
    minion.clear_pillar()
    code, ret = minion.call("kube_allowlist.restore")
    assert (code, ret["changed"]) == (0, False) and no_trace(lab.ruleset()) == [], "flushed: nothing to restore"
