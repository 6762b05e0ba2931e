"""
Real kernel: the host firewall managers a minion may already run, each in the minion's network
namespace next to kube_allowlist, proved with real TCP connects from listed and unlisted sources.

* ufw (its own ufw-init, with a private copy of /etc/ufw and /etc/default/ufw bind-mounted in the
  namespace's own mount namespace): enable with default-deny incoming, reload, MANAGE_BUILTINS=yes.
* netfilter-persistent / ipset-persistent: exactly what their plugins run (15-ip4tables,
  25-ip6tables: ``ip[6]tables-save > rules.v[46]``, ``ip[6]tables-restore < rules.v[46]``; 10-ipset:
  ``ipset save > ipsets``, ``ipset restore -exist < ipsets``). The packages are not installed: ufw
  declares Breaks on both.
* an nftables ``inet filter`` table of the admin's own with ``policy drop`` on input.
* firewalld (nftables backend, its Debian default) on a private system bus, ``firewall-cmd --reload``.

docs/host-firewalls.md says what each finding means for an operator.
"""

import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from ksb_minion import Minion
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6
from netlab import OTHER_PORT, PORT
from test_backends_netns import payload, pillar

LISTED = set(V4[:2] + V6[:2])
EVERYONE = set(V4 + V6)
# A host rule of the admin's, unrelated to ours: it must survive what we do.
HOST_RULE = ["-p", "tcp", "--dport", str(OTHER_PORT), "-s", V4[4], "-j", "DROP"]


def applied(minion, generation=1, v4=None, v6=None):
    v4, v6 = (V4[:2], V6[:2]) if v4 is None else (v4, v6)
    code, ret = minion.call("kube_allowlist.apply", payload=payload(generation, v4, v6))
    assert (code, ret["applied"]) == (0, True), ret
    return ret


def drift(minion):
    """What ``kube_allowlist.restore test=True`` (the dry run a highstate under test=True does)
    would change now: the list of steps, empty when the kernel holds exactly our state."""
    code, ret = minion.call("kube_allowlist.restore", test=True)
    assert code == 0, ret
    return ret["steps"]


def repaired(minion):
    code, ret = minion.call("kube_allowlist.restore")
    assert code == 0 and ret["changed"], ret
    assert drift(minion) == [], "restore re-asserts our chain/table idempotently"


def input_rules(lab, tool="iptables"):
    return [
        line
        for line in lab.run(lab.minion, [f"{tool}-save", "-t", "filter"]).stdout.splitlines()
        if line.startswith("-A INPUT ")
    ]


# --- ufw ----------------------------------------------------------------------------------------


class Ufw:
    """ufw in the minion's namespace with its own configuration: /etc/ufw and /etc/default/ufw
    are bind-mounted from copies under ``root`` in the mount namespace of each ``ip netns exec``
    (a slave of the host's), so nothing of the host's ufw changes."""

    def __init__(self, lab, root):
        self.lab = lab
        self.etc = pathlib.Path(root) / "etc-ufw"
        self.default = pathlib.Path(root) / "default-ufw"
        shutil.copytree("/etc/ufw", self.etc)
        (self.etc / "sysctl.conf").write_text("")  # no kernel tunables from the test
        self.default.write_text(pathlib.Path("/etc/default/ufw").read_text())

    def set(self, key, value):
        text = re.sub(rf"^{key}=.*$", f"{key}={value}", self.default.read_text(), flags=re.M)
        self.default.write_text(text)

    def __call__(self, *args):
        script = 'mount --bind "$1" /etc/ufw && mount --bind "$2" /etc/default/ufw && shift 2 && exec ufw "$@"'
        return self.lab.run(
            self.lab.minion, ["sh", "-c", script, "ufw", str(self.etc), str(self.default), *args], timeout=120
        )


def test_ufw_with_the_ipset_backend(lab, extmods, tmp_path):
    """Our jump is INPUT's first rule and ufw appends its own: with default-deny incoming the
    protected port admits exactly the list, also after ``ufw reload``. With MANAGE_BUILTINS=yes ufw
    flushes every chain on reload: the port is then whatever ufw says (here open to all) until
    ``kube_allowlist.restore`` (a highstate) puts our chain back, which its dry run detects."""
    ufw = Ufw(lab, tmp_path)
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar("ipset"))
    applied(minion)
    ufw("--force", "enable")
    ufw("allow", f"{PORT}/tcp")  # the admin opened the port in ufw too
    assert "ENABLED=no" in pathlib.Path("/etc/ufw/ufw.conf").read_text(), "the host's ufw untouched"
    assert input_rules(lab)[0] == "-A INPUT -j KSB-ALLOW", input_rules(lab)
    assert lab.reachable(V4 + V6) == LISTED, "exactly the list, under ufw's default deny"
    assert lab.reachable(V4[:4] + V6, OTHER_PORT) == set(), "ufw's default deny holds for the rest"

    ufw("reload")
    assert input_rules(lab)[0] == "-A INPUT -j KSB-ALLOW"
    assert lab.reachable(V4 + V6) == LISTED, "ufw reload keeps our chain first"
    assert drift(minion) == []

    ufw.set("MANAGE_BUILTINS", "yes")
    ufw("reload")
    assert "KSB-ALLOW" not in lab.run(lab.minion, ["iptables-save"]).stdout
    assert lab.reachable(V4 + V6) == EVERYONE, "our chain flushed: only ufw's allow is left"
    steps = drift(minion)
    assert any("rewrite chain KSB-ALLOW" in s for s in steps), steps
    repaired(minion)
    assert lab.reachable(V4 + V6) == LISTED


def test_ufw_with_the_nftables_backend(lab, extmods, tmp_path):
    """Our table and ufw's iptables-nft chain are two base chains on the input hook: a packet must
    pass both. ufw's default deny drops what our table accepts until ufw allows the port; then our
    table narrows it to the list, and ``ufw reload`` never touches our table."""
    ufw = Ufw(lab, tmp_path)
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar("nftables"))
    applied(minion)
    ufw("--force", "enable")
    assert lab.reachable(V4 + V6) == set(), "our accept does not override ufw's drop"
    ufw("allow", f"{PORT}/tcp")
    assert lab.reachable(V4 + V6) == LISTED
    ufw("reload")
    assert lab.reachable(V4 + V6) == LISTED and drift(minion) == []


# --- netfilter-persistent -----------------------------------------------------------------------


def nfp_save(lab, directory, ipsets=False):
    """`netfilter-persistent save`: its plugins, command for command."""
    directory.mkdir(exist_ok=True)
    for tool, name in (("iptables", "rules.v4"), ("ip6tables", "rules.v6")):
        (directory / name).write_text(lab.run(lab.minion, [f"{tool}-save"]).stdout)
    if ipsets:
        (directory / "ipsets").write_text(lab.run(lab.minion, ["ipset", "save"]).stdout)


def nfp_start(lab, directory, ipsets=False):
    """`netfilter-persistent start|reload` (and the boot unit): 10-ipset, 15-ip4tables, 25-ip6tables
    in turn (run-parts goes on after a plugin fails). Returns the failed plugins' stderr or ''."""
    loads = [("ipset", ["restore", "-exist"], "ipsets")] if ipsets else []
    loads += [("iptables-restore", [], "rules.v4"), ("ip6tables-restore", [], "rules.v6")]
    errors = ""
    for tool, args, name in loads:
        with open(directory / name, encoding="ascii") as rules:
            res = subprocess.run(
                ["ip", "netns", "exec", lab.minion, tool, *args],
                stdin=rules,
                capture_output=True,
                text=True,
                check=False,
            )
        if res.returncode != 0:
            errors += f"{tool}: {res.stderr}"
    return errors


def reboot(lab):
    lab.run(lab.minion, ["nft", "flush", "ruleset"])  # iptables here is iptables-nft: empties it too
    lab.run(lab.minion, ["ipset", "destroy"])


def test_netfilter_persistent_reload_restores_a_stale_chain(lab, extmods, tmp_path):
    """iptables backend: `netfilter-persistent reload` replaces the filter table with the saved
    one: a save made before our chain existed removes it (open to all), a save made with an older
    list brings that list back (a departed node admitted, a new one dropped). Both are drift the
    dry run names and ``restore`` repairs."""
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar("iptables"))
    lab.run(lab.minion, ["iptables", "-A", "INPUT", *HOST_RULE])
    nfp_save(lab, tmp_path / "before")
    applied(minion, 1)
    nfp_save(lab, tmp_path / "old")
    applied(minion, 2, V4[1:3], V6[1:3])
    current = set(V4[1:3] + V6[1:3])
    assert lab.reachable(V4 + V6) == current

    assert nfp_start(lab, tmp_path / "old") == ""
    assert lab.reachable(V4 + V6) == LISTED, "stale: the saved list is back"
    assert drift(minion), "the dry run sees the stale chain"
    repaired(minion)
    assert lab.reachable(V4 + V6) == current

    assert nfp_start(lab, tmp_path / "before") == ""
    # The IPv4 save had no chain of ours; the IPv6 one was empty (no ip6 filter table yet), and
    # restoring an empty file changes nothing.
    assert lab.reachable(V4 + V6) == set(V4) | set(V6[1:3]), "IPv4 lost: open to all"
    repaired(minion)
    assert lab.reachable(V4 + V6) == current
    assert not lab.reachable([V4[4]], OTHER_PORT), "the admin's rule stays"


def test_netfilter_persistent_boot_with_the_ipset_backend(lab, extmods, tmp_path):
    """A saved rules.v4 with our chain references our sets by name. At boot without
    ipset-persistent the sets do not exist yet and iptables-restore refuses the whole file: the
    admin's own rules are not loaded either; our boot restore still closes the protected port.
    With ipset-persistent the saved (stale) sets load first, the saved chain with them, and the
    boot restore (ordered after netfilter-persistent) brings the current lists."""
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar("ipset"))
    lab.run(lab.minion, ["iptables", "-A", "INPUT", *HOST_RULE])
    applied(minion, 1)
    saved = tmp_path / "etc-iptables"
    nfp_save(lab, saved, ipsets=True)
    applied(minion, 2, V4[1:3], V6[1:3])
    current = set(V4[1:3] + V6[1:3])

    reboot(lab)
    error = nfp_start(lab, saved)
    assert "ksb-prod-4" in error and "ksb-prod-6" in error, error
    assert lab.reachable([V4[4]], OTHER_PORT) == {V4[4]}, "the admin's rules did not load either"
    code, ret = minion.call("kube_allowlist.restore", persisted=True)
    assert code == 0 and ret["changed"], ret
    assert lab.reachable(V4 + V6) == current

    reboot(lab)
    assert nfp_start(lab, saved, ipsets=True) == ""
    assert lab.reachable(V4 + V6) == LISTED, "the saved sets are the old list"
    assert not lab.reachable([V4[4]], OTHER_PORT), "the admin's rules loaded"
    code, ret = minion.call("kube_allowlist.restore", persisted=True)
    assert code == 0 and ret["changed"], ret
    assert lab.reachable(V4 + V6) == current, "the boot restore brings the current lists"
    assert drift(minion) == []


# --- nftables: the admin's own inet filter table ------------------------------------------------

ADMIN_TABLE = """\
table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif "lo" accept
%s\t}
}
"""


@pytest.mark.parametrize("backend", ("nftables", "ipset"))
def test_own_nftables_table_with_policy_drop(lab, extmods, tmp_path, backend):
    """Two base chains on the input hook at the same priority (ours, or iptables-nft's filter
    INPUT with our chain, and theirs): an accept in ours ends only our chain, their policy drop
    still drops. The admin must accept the protected port in their own table; ours then narrows it
    to the list. Their `flush ruleset` reload deletes our table or chain too."""
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar(backend))
    applied(minion)
    lab.run(lab.minion, ["nft", "-f", "-"], input=ADMIN_TABLE % "")
    assert lab.reachable(V4 + V6) == set(), "their policy drop wins over our accept"
    lab.run(lab.minion, ["nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", str(PORT), "accept"])
    assert lab.reachable(V4 + V6) == LISTED, "their accept for the port + our list"
    assert lab.reachable(V4[:1], OTHER_PORT) == set()

    conf = "flush ruleset\n" + ADMIN_TABLE % f"\t\ttcp dport {PORT} accept\n"
    lab.run(lab.minion, ["nft", "-f", "-"], input=conf)  # `systemctl reload nftables` of such a file
    assert lab.reachable(V4 + V6) == EVERYONE, "flush ruleset deleted our table or chain"
    assert drift(minion), "the dry run sees it"
    repaired(minion)
    assert lab.reachable(V4 + V6) == LISTED


# --- firewalld ----------------------------------------------------------------------------------


class Firewalld:
    """firewalld in the minion's namespace on a private system bus (its own dbus-daemon with the
    system bus policy, which lets root own org.fedoraproject.FirewallD1) and a private copy of
    /etc/firewalld (``--system-config``), so ``--permanent`` writes stay in the test's directory."""

    def __init__(self, lab, root):
        self.lab = lab
        root = pathlib.Path(root)
        self.bus = root / "bus"
        self.config = root / "etc-firewalld"
        shutil.copytree("/etc/firewalld", self.config)
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={self.bus}")
        self.log = open(root / "firewalld.log", "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        lab.procs.append(
            self._spawn(
                [
                    "dbus-daemon",
                    "--config-file=/usr/share/dbus-1/system.conf",
                    f"--address=unix:path={self.bus}",
                    "--nofork",
                    "--nopidfile",
                    "--nosyslog",
                ]
            )
        )
        self._wait(lambda: self.bus.exists(), "the private bus socket")
        lab.procs.append(
            self._spawn(
                ["firewalld", "--nofork", "--nopid", "--system-config", str(self.config), "--log-target", "console"]
            )
        )
        self._wait(lambda: self("--state", check=False).stdout.strip() == "running", "firewalld running")

    def _spawn(self, argv):
        return subprocess.Popen(
            ["ip", "netns", "exec", self.lab.minion, *argv], env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def _wait(self, ready, what, seconds=90):
        deadline = time.monotonic() + seconds
        while not ready():
            assert time.monotonic() < deadline, f"{what}: not after {seconds}s"
            time.sleep(0.2)

    def __call__(self, *args, check=True):
        return subprocess.run(
            ["ip", "netns", "exec", self.lab.minion, "firewall-cmd", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def close(self):
        self.log.close()


def test_firewalld_reload(lab, extmods, tmp_path, request):
    """firewalld's chain (inet firewalld, priority filter + 10) ends in a reject: the port must be
    open in its zone, ours narrows it to the list. Its reload (and its start) deletes only its own
    nftables table, so the nftables backend survives; but it also runs `iptables -F; -X` on every
    table (its direct-rules backend), which deletes KSB-ALLOW and the jump: with the ipset backend
    the port is open to all until ``restore`` puts them back."""
    firewalld = Firewalld(lab, tmp_path)
    request.addfinalizer(firewalld.close)
    minion = Minion(tmp_path, extmods, lab.minion)
    minion.set_pillar(pillar("nftables"))
    applied(minion)
    assert lab.reachable(V4 + V6) == set(), "firewalld rejects the port its zone does not open"
    firewalld("--permanent", f"--add-port={PORT}/tcp")
    firewalld("--reload")
    assert lab.reachable(V4 + V6) == LISTED, "our table survives firewalld's reload"
    assert drift(minion) == []

    minion.set_pillar(pillar("ipset"))
    repaired(minion)
    assert lab.reachable(V4 + V6) == LISTED
    firewalld("--reload")
    assert "KSB-ALLOW" not in lab.run(lab.minion, ["iptables-save"]).stdout
    assert lab.reachable(V4 + V6) == EVERYONE, "our iptables chain deleted by the reload"
    repaired(minion)
    assert lab.reachable(V4 + V6) == LISTED
