"""
The ``ipset`` backend's sets: one ``hash:net`` set per cluster and family, ``ksb-<cluster>-4`` /
``-6``, replaced atomically (``ipset restore`` into ``<name>t``, then ``swap``). The chain that
matches them is rendered by :py:mod:`.iptables` (``per_ip=False``).

Also the readback of ``ipset save``: entries come back in the contract's canonical form, so they
compare as strings with the validated entries of a payload.
"""

import hashlib
import ipaddress
import re

from saltext.kube_allowlist.utils.common import FAMILY_SUFFIX, step
from saltext.kube_allowlist.utils.payload import IPV4_CANONICAL_RE, ipv6_is_canonical

SET_PREFIX = "ksb-"
IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
MIN_MAXELEM = 65536
READ_COMMAND = ["ipset", "save"]
IPV4_PREFIX_RE = re.compile(r"[0-9]|[12][0-9]|3[01]")


def ipset_name(cluster, family):
    """Return the ipset name for a cluster and family; long cluster names are hashed (31 chars max)."""
    base = cluster
    if len(base) > 24:
        base = cluster[:15] + "-" + hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"{SET_PREFIX}{base}-{FAMILY_SUFFIX[family]}"


def canonical_entry(text):
    """
    Return the contract's canonical form of one address or network read back from the kernel.

    ``ipset save`` prints hosts without ``/32``/``/128`` and IPv6 compressed and lower-case, which
    is already canonical: such text is recognised with string checks and returned as it is. A
    ``/32`` or ``/128`` suffix is dropped; anything else (other spellings, IPv6 networks, host
    bits) goes through ``ipaddress`` (host bits are masked, as the kernel stores them). Raises
    ``ValueError`` for text that is not an address or network.
    """
    addr, slash, prefix = text.partition("/")
    if ":" in addr:
        if (not slash or prefix == "128") and ipv6_is_canonical(addr):
            return addr
    elif IPV4_CANONICAL_RE.fullmatch(addr):
        if not slash or prefix == "32":
            return addr
        if IPV4_PREFIX_RE.fullmatch(prefix):
            a, b, c, d = addr.split(".")
            value = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
            if not value & ((1 << (32 - int(prefix))) - 1):
                return text
    net = ipaddress.ip_network(text, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def parse_ipset_save(text):
    """
    Return ``{name: {"family": inet|inet6, "entries": set(str)}}`` for our sets only.

    Entries are in the contract's canonical form (:py:func:`canonical_entry`), so they compare
    as strings with the validated entries of a payload.
    """
    sets = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or not parts[1].startswith(SET_PREFIX):
            continue
        if parts[0] == "create":
            family = parts[parts.index("family") + 1] if "family" in parts else None
            sets[parts[1]] = {"family": family, "entries": set()}
        elif parts[0] == "add" and parts[1] in sets:
            sets[parts[1]]["entries"].add(canonical_entry(parts[2]))
    return sets


def ipset_script(changes, existing, maxelem):
    """
    Render one ``ipset restore`` script replacing each changed set atomically.

    ``changes`` maps set name to ``(family, entries)``; ``existing`` is the set of names present.
    Each set is filled as ``<name>t`` and swapped in, so the live set never shows a partial list.
    """
    lines = []
    for name, (family, entries) in sorted(changes.items()):
        temp = name + "t"
        params = f"hash:net family {IPSET_FAMILY[family]} maxelem {maxelem}"
        lines.append(f"flush {temp}" if temp in existing else f"create {temp} {params}")
        lines.extend(f"add {temp} {entry}" for entry in entries)
        if name not in existing:
            lines.append(f"create {name} {params}")
        lines.append(f"swap {temp} {name}")
        lines.append(f"destroy {temp}")
    return "\n".join(lines) + "\n"


def steps(desired, sets_now, use_sets):
    # Desired entries are validated canonical strings (payload.verify, parse_entry_list on every
    # cache read and pull) and readback entries are canonicalised by parse_ipset_save: compare as
    # strings.
    wanted = {}
    if use_sets:
        for (cluster, family), entries in desired["sets"].items():
            wanted[ipset_name(cluster, family)] = (family, entries)
    changes = {
        name: (family, entries)
        for name, (family, entries) in wanted.items()
        if name not in sets_now or sets_now[name]["entries"] != set(entries)
    }
    before = []
    if changes:
        script = ipset_script(changes, set(sets_now), desired["maxelem"])
        before.append(step(["ipset", "restore"], script, f"ipset: replace {', '.join(sorted(changes))}"))
    obsolete = sorted(n for n in sets_now if n not in wanted)
    after = []
    if obsolete:
        script = "".join(f"destroy {name}\n" for name in obsolete)
        after.append(step(["ipset", "restore"], script, f"ipset: destroy {', '.join(obsolete)}"))
    return before, after
