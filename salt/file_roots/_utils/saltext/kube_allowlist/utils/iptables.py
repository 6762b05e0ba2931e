"""
The chain ``KSB-ALLOW`` in the ``filter`` table (iptables and ip6tables), jumped to once from
``INPUT``, rewritten with one ``iptables-restore --noflush`` per family. Two backends use it:

* ``ipset``:    one rule per port group and cluster matching the cluster's set (:py:mod:`.ipset`);
* ``iptables``: one rule per source address (the layout of the pull formula this project replaced,
  see docs/ARCHITECTURE.md).

Its first rule returns traffic arriving on the loopback interface (``-i lo -j RETURN``), so a rule
never cuts off the host itself.
"""

from saltext.kube_allowlist.utils import ipset
from saltext.kube_allowlist.utils.common import step

CHAIN = "KSB-ALLOW"
SAVE_CMD = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
RESTORE_CMD = {"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}
HOST_PREFIX = {"ipv4": "/32", "ipv6": "/128"}
REJECT_UDP = {"ipv4": "icmp-port-unreachable", "ipv6": "icmp6-port-unreachable"}
MULTIPORT_MAX = 15
LOOPBACK_LINE = f"-A {CHAIN} -i lo -j RETURN"


def read_command(family):
    """The read-only command whose output :py:func:`parse_iptables_save` reads."""
    return [SAVE_CMD[family], "-t", "filter"]


def port_chunks(ports):
    """Split ports into groups that fit one ``-m multiport`` match (15 slots, ranges take 2)."""
    chunks, current, used = [], [], 0
    for port in ports:
        cost = 2 if ":" in port else 1
        if used + cost > MULTIPORT_MAX:
            chunks.append(current)
            current, used = [], 0
        current.append(port)
        used += cost
    if current:
        chunks.append(current)
    return chunks


def _as_source(entry, family):
    return entry if "/" in entry else entry + HOST_PREFIX[family]


def _others_target(rule, family):
    if rule["others"] == "drop":
        return "DROP"
    if rule["proto"] == "tcp":
        return "REJECT --reject-with tcp-reset"
    return "REJECT --reject-with " + REJECT_UDP[family]


def iptables_lines(desired, family, per_ip):
    """
    Render our chain's rules for one family in ``iptables-save`` form (so readback compares).

    ``per_ip`` selects the iptables backend (one rule per source) instead of ipset matches.
    The first line returns loopback traffic; nothing is rendered when no rule applies to ``family``.
    """
    lines = []
    for rule in desired["rules"]:
        if family not in rule["families"]:
            continue
        tail = f'-m comment --comment "ksb:{rule["name"]}"'
        for chunk in port_chunks(rule["ports"]):
            match = f"-p {rule['proto']} -m multiport --dports {','.join(chunk)}"
            sources = list(rule["extra_sources"][family])
            if per_ip:
                merged = {e for c in rule["clusters"] for e in desired["sets"][(c, family)]}
                sources = sorted(merged | set(sources))
            else:
                for cluster in rule["clusters"]:
                    name = ipset.ipset_name(cluster, family)
                    lines.append(f"-A {CHAIN} {match} -m set --match-set {name} src {tail} -j ACCEPT")
            for source in sources:
                lines.append(f"-A {CHAIN} -s {_as_source(source, family)} {match} {tail} -j ACCEPT")
            if rule["others"] != "none":
                lines.append(f"-A {CHAIN} {match} {tail} -j {_others_target(rule, family)}")
    return [LOOPBACK_LINE] + lines if lines else []


def parse_iptables_save(text):
    """Return ``{"chain": bool, "lines": [our rules], "jumps": n}`` from ``iptables-save -t filter``."""
    chain, lines, jumps = False, [], 0
    for line in text.splitlines():
        if line.startswith(f":{CHAIN} "):
            chain = True
        elif line.startswith(f"-A {CHAIN} "):
            lines.append(line)
        elif line == f"-A INPUT -j {CHAIN}":
            jumps += 1
    return {"chain": chain, "lines": lines, "jumps": jumps}


def chain_script(current, lines):
    """Render an ``iptables-restore --noflush`` script that rewrites our chain, or removes it."""
    out = ["*filter"]
    if lines:
        out.append(f":{CHAIN} - [0:0]")
        if current["jumps"] == 0:
            out.append(f"-I INPUT 1 -j {CHAIN}")
        out.extend([f"-D INPUT -j {CHAIN}"] * max(0, current["jumps"] - 1))
        out.extend(lines)
    else:
        out.extend([f"-D INPUT -j {CHAIN}"] * current["jumps"])
        out.extend([f"-F {CHAIN}", f"-X {CHAIN}"])
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def steps(desired, current, backend):
    steps = []
    for family in ("ipv4", "ipv6"):
        now = current.get(family)
        if now is None:
            continue
        lines = []
        if backend in ("ipset", "iptables"):
            lines = iptables_lines(desired, family, per_ip=backend == "iptables")
        if lines:
            if now["chain"] and now["lines"] == lines and now["jumps"] == 1:
                continue
            desc = f"{RESTORE_CMD[family]}: rewrite chain {CHAIN} ({len(lines)} rules)"
        elif now["chain"] or now["jumps"]:
            desc = f"{RESTORE_CMD[family]}: remove chain {CHAIN}"
        else:
            continue
        steps.append(step([RESTORE_CMD[family], "--noflush"], chain_script(now, lines), desc))
    return steps
