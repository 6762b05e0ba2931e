"""The formula in a namespace: a highstate-like run installs the extension with pip into the minion's
own Python (here: already there, from the wheel scripts/setup.sh built), restores the cached list
(the bridge down), installs and enables the boot unit (checked by systemd-analyze), repeats without
changes; clean.sls leaves no trace, unit included."""

import pathlib
import shutil
import subprocess
import sys
import time

import ksb_sign
from ksb_minion import Minion
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6

UNIT = "kube-allowlist-restore.service"
ROOT = pathlib.Path(__file__).resolve().parents[2]


def wheel_dir():
    """The directory holding the extension's wheel that scripts/setup.sh built and installed."""
    (wheel,) = ROOT.glob(".tools/dist/*/saltext_kube_allowlist-*.whl")
    return str(wheel.parent)


def summary(states):
    return {v["__id__"]: (v["result"], bool(v["changes"])) for v in states.values()}


def test_init_restores_installs_the_boot_unit_and_clean_removes(lab, tmp_path):
    minion = Minion(tmp_path, tmp_path / "extmods", lab.minion)
    units = tmp_path / "systemd"
    salt_call = shutil.which("salt-call")
    minion.set_pillar(
        {
            "public_keys": [ksb_sign.public_hex()],
            "clusters": {"prod": {}},
            "rules": [{"name": "pg", "clusters": ["prod"], "ports": [5432]}],
            "install": {"find_links": wheel_dir(), "bin_env": sys.executable},
            "boot": {"unit_dir": str(units), "salt_call": salt_call},
        }
    )
    code, states = minion.call("state.apply", "kube_allowlist")
    got = summary(states)
    assert code == 0 and got["kube_allowlist-init-kube_allowlist-restored"] == (True, False), states
    pip = [v for v in states.values() if v["__id__"] == "kube_allowlist-init-pip-installed"][0]
    assert (pip["result"], pip["changes"]) == (True, {}), pip
    assert "saltext.kube-allowlist==0.1.0" in pip["comment"] and "already installed" in pip["comment"], pip
    assert not (tmp_path / "extmods" / "modules").exists(), "nothing synced: the installed extension serves"
    assert got["kube_allowlist-boot-file-unit"] == (True, True)
    assert got["kube_allowlist-boot-file-enabled"] == (True, True)
    assert got["kube_allowlist-boot-cmd-daemon-reload"][0] is True  # skipped: systemd is not running here

    unit = units / UNIT
    assert (units / "multi-user.target.wants" / UNIT).resolve() == unit
    text = unit.read_text()
    exec_start = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == [
        f"ExecStart={salt_call} --local --config-dir={minion.cfg} --retcode-passthrough --out=json "
        f"--log-level=warning kube_allowlist.restore persisted=True cache_dir={minion.cache_dir}"
    ]
    for line in (
        "Type=oneshot",
        "DefaultDependencies=no",
        "Wants=network-pre.target local-fs.target",
        "Before=network-pre.target salt-minion.service shutdown.target",
        "WantedBy=multi-user.target",
        f"RequiresMountsFor={minion.cache_dir}",
    ):
        assert line in text.splitlines(), line
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd; scripts/setup.sh installs it)"
    res = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, cwd=units)
    assert (res.returncode, res.stdout + res.stderr) == (0, ""), "systemd-analyze verify: the unit is clean"

    payload = ksb_sign.build("prod", int(time.time() * 1000), V4[:1], V6[:1])
    code, ret = minion.call("kube_allowlist.apply", payload=payload)
    assert code == 0 and ret["applied"]
    lab.run(lab.minion, ["iptables", "-F", "KSB-ALLOW"])  # the kernel lost part of it
    assert lab.reachable(V4[:2]) == set(V4[:2])

    # test=True: the real plan, from the kernel's state, and nothing changes.
    before = lab.ruleset()
    code, states = minion.call("state.apply", "kube_allowlist", "test=True")
    restored = [v for v in states.values() if v["__id__"] == "kube_allowlist-init-kube_allowlist-restored"][0]
    assert restored["result"] is None, restored
    assert restored["changes"]["steps"] == ["iptables-restore: rewrite chain KSB-ALLOW (3 rules)"], restored
    assert restored["comment"] == "would iptables-restore: rewrite chain KSB-ALLOW (3 rules)"
    assert lab.ruleset() == before and lab.reachable(V4[:2]) == set(V4[:2])

    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and summary(states)["kube_allowlist-init-kube_allowlist-restored"] == (True, True)
    assert lab.reachable(V4[:2] + V6[:2]) == {V4[0], V6[0]}
    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and not any(changed for _, changed in summary(states).values()), states
    code, states = minion.call("state.apply", "kube_allowlist", "test=True")
    assert code == 0 and summary(states)["kube_allowlist-init-kube_allowlist-restored"] == (True, False), states

    code, states = minion.call("state.apply", "kube_allowlist.clean")
    assert code == 0 and summary(states) == {
        "kube_allowlist-clean-kube_allowlist-flushed": (True, True),
        "kube_allowlist-clean-file-enabled-absent": (True, True),
        "kube_allowlist-clean-file-unit-absent": (True, True),
        "kube_allowlist-clean-cmd-daemon-reload": (True, False),
    }, states
    assert not [t for t in ("KSB-ALLOW", "ksb-", "kube_allowlist") if t in lab.ruleset()]
    assert not unit.exists() and not (units / "multi-user.target.wants" / UNIT).is_symlink()
    assert lab.reachable(V4[:2]) == set(V4[:2])


def test_boot_disabled_leaves_the_unit_out(lab, extmods, tmp_path):
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(
        {
            "public_keys": [ksb_sign.public_hex()],
            "clusters": {"prod": {}},
            "rules": [],
            "install": {"find_links": wheel_dir(), "bin_env": sys.executable},
            "boot": {"enabled": False, "unit_dir": str(tmp_path / "systemd")},
        }
    )
    code, states = minion.call("state.apply", "kube_allowlist")
    assert code == 0 and not [i for i in summary(states) if "boot" in i], states
    assert not (tmp_path / "systemd").exists()
