"""The formula in a namespace: a fresh minion's highstate-like run syncs the modules, restores the
cached list (reboot with the bridge down), repeats without changes; clean.sls leaves no trace."""

import ksb_sign
from ksb_minion import Minion
from netlab import NODES_V4 as V4, NODES_V6 as V6

KEY = "formula-key"


def summary(states):
    return {v["__id__"]: (v["result"], bool(v["changes"])) for v in states.values()}


def test_init_restores_and_clean_removes(lab, tmp_path):
    minion = Minion(tmp_path, tmp_path / "extmods", lab.minion)  # nothing synced yet
    minion.set_pillar({"signing_key": KEY, "clusters": {"prod": {}},
                       "rules": [{"name": "pg", "clusters": ["prod"], "ports": [5432]}]})
    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and summary(states)["kube_allowlist-init-kube_allowlist-restored"] == (True, False)
    code, ret = minion.call("kube_allowlist.apply", payload=ksb_sign.build("prod", 3, V4[:1], V6[:1], key=KEY))
    assert code == 0 and ret["applied"]
    lab.run(lab.minion, ["iptables", "-F", "KSB-ALLOW"])  # the kernel lost part of it
    assert lab.reachable(V4[:2]) == set(V4[:2])

    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and summary(states)["kube_allowlist-init-kube_allowlist-restored"] == (True, True)
    assert lab.reachable(V4[:2] + V6[:2]) == {V4[0], V6[0]}
    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and not any(changed for _, changed in summary(states).values()), states

    code, states = minion.call("state.apply", "kube_allowlist.clean")
    assert code == 0 and summary(states) == {"kube_allowlist-clean-kube_allowlist-flushed": (True, True)}
    assert not [t for t in ("KSB-ALLOW", "ksb-", "kube_allowlist") if t in lab.ruleset()]
    assert lab.reachable(V4[:2]) == set(V4[:2])
