"""
A tiny in-memory firewall that understands exactly the commands kube_allowlist runs (ipset save/
restore, iptables-save/-restore --noflush, nft list/-f/delete table), so unit tests can check
convergence and idempotency without touching the host. Mutating commands are recorded. It stands
in for ``saltext.kube_allowlist.utils.command.run`` (same arguments, same return).
"""

import re

READS = {"ipset", "iptables-save", "ip6tables-save"}


class FakeKernel:
    def __init__(self):
        self.sets = {}  # name -> (family, [entries])
        self.chains = {"ipv4": None, "ipv6": None}  # None = absent, else list of rule lines
        self.jumps = {"ipv4": 0, "ipv6": 0}
        self.foreign = {"ipv4": ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"], "ipv6": []}
        self.nft = None  # None = no table, else the last script
        self.mutations = []

    # -- the fake command.run --------------------------------------------------------------
    def __call__(self, argv, stdin=None, executable=None, **kwargs):
        tool = argv[0]
        # The module executes the path it looked up (the test's command.which).
        assert executable == f"/usr/sbin/{tool}", (argv, executable)
        if argv[:2] == ["ipset", "save"]:
            return self._ok(self._ipset_save())
        if tool in ("iptables-save", "ip6tables-save"):
            return self._ok(self._iptables_save("ipv4" if tool == "iptables-save" else "ipv6"))
        if argv[:3] == ["nft", "list", "table"]:
            return self._ok(self.nft) if self.nft else {"retcode": 1, "stdout": "", "stderr": "No such file"}
        self.mutations.append((argv, stdin))
        if argv[:2] == ["ipset", "restore"]:
            self._ipset_restore(stdin)
        elif tool in ("iptables-restore", "ip6tables-restore"):
            self._iptables_restore("ipv4" if tool == "iptables-restore" else "ipv6", stdin)
        elif argv[:2] == ["nft", "-f"]:
            self.nft = stdin
        elif argv[:2] == ["nft", "delete"]:
            self.nft = None
        else:
            raise AssertionError(f"unexpected command {argv}")
        return self._ok("")

    @staticmethod
    def _ok(stdout):
        return {"retcode": 0, "stdout": stdout, "stderr": ""}

    # -- ipset ----------------------------------------------------------------------------
    def _ipset_save(self):
        out = []
        for name, (family, entries) in sorted(self.sets.items()):
            out.append(f"create {name} hash:net family {family} hashsize 1024 maxelem 65536 bucketsize 12")
            out.extend(f"add {name} {e}" for e in entries)
        return "\n".join(out) + "\n"

    def _ipset_restore(self, script):
        for line in script.splitlines():
            op, name, *rest = line.split()
            if op == "create":
                assert name not in self.sets, f"ipset create of existing {name}"
                self.sets[name] = (rest[rest.index("family") + 1], [])
            elif op == "flush":
                self.sets[name] = (self.sets[name][0], [])
            elif op == "add":
                self.sets[name][1].append(rest[0])
            elif op == "swap":
                self.sets[name], self.sets[rest[0]] = self.sets[rest[0]], self.sets[name]
            elif op == "destroy":
                del self.sets[name]

    # -- iptables -------------------------------------------------------------------------
    def _iptables_save(self, family):
        out = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
        if self.chains[family] is not None:
            out.append(":KSB-ALLOW - [0:0]")
        out += ["-A INPUT -j KSB-ALLOW"] * self.jumps[family] + self.foreign[family]
        out += self.chains[family] or []
        return "\n".join(out + ["COMMIT"]) + "\n"

    def _iptables_restore(self, family, script):
        for line in script.splitlines():
            if line == ":KSB-ALLOW - [0:0]":
                self.chains[family] = []
            elif line == "-I INPUT 1 -j KSB-ALLOW":
                self.jumps[family] += 1
            elif line == "-D INPUT -j KSB-ALLOW":
                assert self.jumps[family] > 0
                self.jumps[family] -= 1
            elif line.startswith("-A KSB-ALLOW "):
                self.chains[family].append(line)
            elif line == "-F KSB-ALLOW":
                self.chains[family] = []
            elif line == "-X KSB-ALLOW":
                assert self.jumps[family] == 0 and not self.chains[family]
                self.chains[family] = None
            else:
                assert line in ("*filter", "COMMIT"), line

    def nft_fingerprint(self):
        match = re.search(r'comment "ksb:([0-9a-f]+)"', self.nft or "")
        return match and match.group(1)
