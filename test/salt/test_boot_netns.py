"""
Fail closed at boot, for real: the formula renders kube-allowlist-restore.service; a "reboot" of
the minion's network namespace empties its firewall (iptables, ip6tables, ipset, nft) and the
minion has neither master nor pillar; running exactly the unit's ExecStart line in the namespace
brings the last enforced lists back, proved with real TCP connects from chosen source addresses.
"""

import json
import pathlib
import shlex
import shutil
import time

import pytest
import yaml

import ksb_sign
from ksb_minion import Minion
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6
from netlab import OTHER_PORT

UNIT = "kube-allowlist-restore.service"
UNREACHABLE_MASTER = "10.77.0.254"  # on the minion's link, nobody answers there


def boot_pillar(tmp_path, **extra):
    return {
        "public_keys": [ksb_sign.public_hex()],
        "clusters": {"prod": {}, "other": {}},
        "rules": [
            {"name": "pg", "clusters": ["prod"], "ports": [5432]},
            {"name": "ssh", "clusters": ["other"], "ports": [OTHER_PORT]},
        ],
        "boot": {"unit_dir": str(tmp_path / "systemd"), "salt_call": shutil.which("salt-call")},
        **extra,
    }


def production_like(minion):
    """The minion's config names a master (unreachable) like a real one, not file_client local."""
    path = minion.cfg / "minion"
    config = yaml.safe_load(path.read_text())
    config.pop("file_client")
    config.update(master=UNREACHABLE_MASTER, master_tries=1, auth_timeout=2)
    path.write_text(yaml.safe_dump(config))


def exec_start(tmp_path):
    lines = [line for line in (tmp_path / "systemd" / UNIT).read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0][len("ExecStart=") :])


def reboot(lab, minion):
    """The kernel forgets every rule and set; the master and the pillar are gone."""
    lab.run(lab.minion, ["nft", "flush", "ruleset"])  # iptables here is iptables-nft: this empties it too
    lab.run(lab.minion, ["ipset", "destroy"])
    assert not [t for t in ("KSB-ALLOW", "ksb-", "kube_allowlist") if t in lab.ruleset()]
    (minion.pillar_dir / "top.sls").write_text("base: {}\n")
    assert lab.reachable(V4 + V6) == set(V4 + V6), "after the reboot everything connects (fail open)"


def rules(lab):
    """The namespace's ruleset as a sorted list of lines (ipset lists sets in creation order)."""
    return sorted(lab.ruleset().splitlines())


def boot(lab, tmp_path):
    """Run the unit's ExecStart in the minion's namespace, as systemd would: (exit code, return)."""
    res = lab.run(lab.minion, exec_start(tmp_path), check=False, timeout=120)
    try:
        return res.returncode, json.loads(res.stdout)["local"]
    except (ValueError, KeyError) as err:
        raise AssertionError(f"boot restore: rc={res.returncode}\n{res.stdout}\n{res.stderr}") from err


@pytest.mark.parametrize("backend", ("ipset", "nftables", "iptables"))
def test_boot_restores_the_last_lists_without_master_or_pillar(lab, extmods, tmp_path, backend):
    minion = Minion(tmp_path, extmods, lab.minion)
    production_like(minion)
    minion.set_pillar(boot_pillar(tmp_path, backend=backend))
    generation = int(time.time() * 1000)
    for cluster, v4, v6 in (("prod", V4[:2], V6[:2]), ("other", V4[3:4], [])):
        code, ret = minion.call("kube_allowlist.apply", payload=ksb_sign.build(cluster, generation, v4, v6))
        assert (code, ret["applied"]) == (0, True), ret
    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and all(s["result"] for s in states.values()), states
    before = rules(lab)
    assert lab.reachable(V4 + V6) == set(V4[:2] + V6[:2])

    # The other cluster's cache is corrupt when the machine goes down.
    (minion.cache_dir / "other.json").write_text('{"cluster": "other", "generation": ')
    reboot(lab, minion)

    code, ret = boot(lab, tmp_path)
    assert code == 0 and ret["changed"] and ret["source"] == "persisted", ret
    assert ret["generations"]["prod"] == generation, ret
    assert lab.reachable(V4 + V6) == set(V4[:2] + V6[:2]), "listed sources connect, the others are dropped"
    assert lab.reachable(V4[2:5], OTHER_PORT) == {V4[3]}, "the other cluster keeps its last enforced list"
    assert rules(lab) == before, "exactly the firewall enforced before the reboot"

    code, ret = boot(lab, tmp_path)
    assert (code, ret["changed"]) == (0, False), ret


def test_boot_without_any_cache_succeeds_and_changes_nothing(lab, extmods, tmp_path):
    minion = Minion(tmp_path, extmods, lab.minion)
    production_like(minion)
    minion.set_pillar(boot_pillar(tmp_path))
    code, states = minion.call("state.apply", "kube_allowlist.boot")  # the unit only: nothing cached
    assert code == 0 and all(s["result"] for s in states.values()), states
    assert not pathlib.Path(minion.cache_dir).exists()
    reboot(lab, minion)
    before = lab.ruleset()

    code, ret = boot(lab, tmp_path)
    assert (code, ret["changed"]) == (0, False), ret
    assert lab.ruleset() == before
    assert lab.reachable(V4 + V6) == set(V4 + V6)
