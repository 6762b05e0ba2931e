"""
Pure planning for the kube_allowlist firewall backends: desired state, renderers, readback parsers.

``plan(backend, desired, current)`` compares what the kernel has (parsed from read-only commands)
with what it should have and returns the steps (argv + stdin) that converge it, or ``[]`` when
nothing has to change. Each backend owns only its own objects:

* ipset:    sets ``ksb-<cluster>-4`` / ``-6`` (hash:net) + chain ``KSB-ALLOW`` (filter, iptables and
            ip6tables), jumped to once from ``INPUT``; sets replaced by restore into ``<name>t`` + swap.
* iptables: the same chain with one rule per source address (the layout of the pull formula this project replaced, see docs/ARCHITECTURE.md).
* nftables: table ``inet kube_allowlist``, converged in one ``nft -f`` transaction.

Objects of the backends not selected are removed, so switching backends leaves no trace.

Traffic arriving on the loopback interface (local clients on 127.0.0.1, ::1 or any of the host's
own addresses) always leaves our chain untouched: its first rule returns ``lo`` packets
(``-i lo -j RETURN``, nftables ``iifname "lo" return``), so a rule never cuts off the host itself.
"""

import hashlib
import ipaddress
import re

CHAIN = "KSB-ALLOW"
SET_PREFIX = "ksb-"
NFT_TABLE = "kube_allowlist"
FAMILY_SUFFIX = {"ipv4": "4", "ipv6": "6"}
IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
SAVE_CMD = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
RESTORE_CMD = {"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}
HOST_PREFIX = {"ipv4": "/32", "ipv6": "/128"}
REJECT_UDP = {"ipv4": "icmp-port-unreachable", "ipv6": "icmp6-port-unreachable"}
NFT_FP_RE = re.compile(r'comment "ksb:([0-9a-f]{64})"')
NFT_SET_RE = re.compile(r"^\s*set (\S+) \{", re.M)
MULTIPORT_MAX = 15
LOOPBACK_LINE = f"-A {CHAIN} -i lo -j RETURN"
NFT_LOOPBACK_RULE = 'iifname "lo" return'
IPSET_MIN_MAXELEM = 65536
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_CANONICAL_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
IPV4_PREFIX_RE = re.compile(r"[0-9]|[12][0-9]|3[01]")
_HEXTET = r"(?:0|[1-9a-f][0-9a-f]{0,3})"
IPV6_HEXTETS_RE = re.compile(rf"(?:{_HEXTET}(?::{_HEXTET})*)?(?:::(?:{_HEXTET}(?::{_HEXTET})*)?)?")


def desired_state(config, caches):
    """
    Compute what the firewall must contain from the validated config and the cached lists.

    A rule is enforced only when every cluster it references has a cached list: a cluster never
    heard of is unknown, not empty, so its rule is reported as pending and renders nothing.
    Returns ``{"rules": [enforced rules], "pending": {rule: [clusters]}, "sets": {(cluster,
    family): [entries]}, "maxelem": int}``.
    """
    rules, pending, sets = [], {}, {}
    for rule in config["rules"]:
        missing = [c for c in rule["clusters"] if c not in caches]
        if missing:
            pending[rule["name"]] = missing
            continue
        rules.append(rule)
        for cluster in rule["clusters"]:
            for family in rule["families"]:
                sets[(cluster, family)] = list(caches[cluster][family])
    maxelem = max(IPSET_MIN_MAXELEM, config["max_entries"])
    return {"rules": rules, "pending": pending, "sets": sets, "maxelem": maxelem}


def ipset_name(cluster, family):
    """Return the ipset name for a cluster and family; long cluster names are hashed (31 chars max)."""
    base = cluster
    if len(base) > 24:
        base = cluster[:15] + "-" + hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"{SET_PREFIX}{base}-{FAMILY_SUFFIX[family]}"


def nft_set_name(cluster, family):
    """Return the nftables set name for a cluster and family (DNS labels have no ``_``)."""
    return f"c_{cluster.replace('-', '_')}_{FAMILY_SUFFIX[family]}"


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
                    name = ipset_name(cluster, family)
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


def _ipv6_is_canonical(text):
    """
    Return True when ``text`` is an IPv6 address exactly as ``str(ipaddress.IPv6Address)`` prints it.

    Lower-case hextets without leading zeros; ``::`` replaces the first longest run of two or more
    zero hextets and nothing else is compressed (RFC 5952, as Python and glibc's inet_ntop do).
    Forms this does not accept (dotted IPv4 tails, ``::ffff:`` mapped addresses, whose printing
    depends on the Python version, or anything non-canonical) are left to ``ipaddress``.
    """
    if not IPV6_HEXTETS_RE.fullmatch(text) or text.startswith("::ffff:"):
        return False
    head, double, tail = text.partition("::")
    if not double:
        return text.count(":") == 7 and ":0:0:" not in f":{text}:"
    groups = (head.count(":") + 1 if head else 0) + (tail.count(":") + 1 if tail else 0)
    elided = 8 - groups
    if elided < 2 or head == "0" or head.endswith(":0") or tail == "0" or tail.startswith("0:"):
        return False
    # No zero run as long as the elided one before it, none longer after it.
    return ":0" * elided + ":" not in f":{head}:" and ":0" * (elided + 1) + ":" not in f":{tail}:"


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
        if (not slash or prefix == "128") and _ipv6_is_canonical(addr):
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


def parse_nft_list(text):
    """Return ``{"fingerprint": str, "sets": [names]}`` from ``nft list table inet kube_allowlist``."""
    match = NFT_FP_RE.search(text)
    return {"fingerprint": match.group(1) if match else "", "sets": NFT_SET_RE.findall(text)}


def _nft_elements(entries):
    nets = [ipaddress.ip_network(e) for e in entries]
    collapsed = [n for v in (4, 6) for n in ipaddress.collapse_addresses(x for x in nets if x.version == v)]
    return ", ".join(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in collapsed)


def _nft_rules(desired):
    rules = [NFT_LOOPBACK_RULE]
    for rule in desired["rules"]:
        ports = ", ".join(p.replace(":", "-") for p in rule["ports"])
        for family in rule["families"]:
            addr = "ip saddr" if family == "ipv4" else "ip6 saddr"
            head = f"meta nfproto {family} {rule['proto']} dport {{ {ports} }}"
            tail = f'comment "{rule["name"]}"'
            for cluster in rule["clusters"]:
                rules.append(f"{head} {addr} @{nft_set_name(cluster, family)} accept {tail}")
            if rule["extra_sources"][family]:
                rules.append(f"{head} {addr} {{ {_nft_elements(rule['extra_sources'][family])} }} accept {tail}")
            if rule["others"] == "drop":
                rules.append(f"{head} drop {tail}")
            elif rule["others"] == "reject":
                how = "reject with tcp reset" if rule["proto"] == "tcp" else "reject"
                rules.append(f"{head} {how} {tail}")
    return rules


def nft_script(desired, existing_sets=()):
    """
    Return ``(fingerprint, text)``: one ``nft -f`` transaction converging our table in place.

    The table, sets and base chain are declared (a no-op when they exist), then the chain and sets
    are flushed and refilled and obsolete sets deleted, all in one transaction, so packets see
    either the old or the new state. (Deleting and re-creating the table is not seamless: packets
    were observed to be dropped during such a commit.) The first rule returns loopback traffic;
    the last rule, a counter of packets none of
    ours decided, carries the fingerprint of the rendered state in its comment for idempotency.
    """
    table = f"inet {NFT_TABLE}"
    names = {nft_set_name(c, f): (f, entries) for (c, f), entries in sorted(desired["sets"].items())}
    declare = [f"table {table} {{"]
    for name, (family, _) in names.items():
        kind = "ipv4_addr" if family == "ipv4" else "ipv6_addr"
        declare.append(f"\tset {name} {{\n\t\ttype {kind}\n\t\tflags interval\n\t}}")
    declare.append("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}")
    declare.append("}")
    body = [f"flush chain {table} input"]
    for name, (_, entries) in names.items():
        body.append(f"flush set {table} {name}")
        if entries:
            body.append(f"add element {table} {name} {{ {_nft_elements(entries)} }}")
    body += [f"add rule {table} input {rule}" for rule in _nft_rules(desired)]
    fingerprint = hashlib.sha256("\n".join(declare + body).encode()).hexdigest()
    obsolete = [f"delete set {table} {name}" for name in existing_sets if name not in names]
    body += obsolete + [f'add rule {table} input counter comment "ksb:{fingerprint}"']
    return fingerprint, "\n".join(declare + body) + "\n"


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


def read_commands():
    """Return the read-only commands whose output ``plan`` needs, keyed by the name it expects."""
    return {
        "ipset": ["ipset", "save"],
        "ipv4": [SAVE_CMD["ipv4"], "-t", "filter"],
        "ipv6": [SAVE_CMD["ipv6"], "-t", "filter"],
        "nft": ["nft", "list", "table", "inet", NFT_TABLE],
    }


def required_tools(backend, desired):
    """Return the executables the backend needs for this desired state."""
    if not desired["rules"]:
        return []
    if backend == "nftables":
        return ["nft"]
    families = {f for r in desired["rules"] for f in r["families"]}
    tools = [RESTORE_CMD[f] for f in ("ipv4", "ipv6") if f in families]
    tools += [SAVE_CMD[f] for f in ("ipv4", "ipv6") if f in families]
    return (["ipset"] if backend == "ipset" else []) + tools


def _ipset_steps(desired, sets_now, use_sets):
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
        if name not in sets_now
        or sets_now[name]["entries"] != set(entries)
    }
    before = []
    if changes:
        script = ipset_script(changes, set(sets_now), desired["maxelem"])
        before.append(_step(["ipset", "restore"], script, f"ipset: replace {', '.join(sorted(changes))}"))
    obsolete = sorted(n for n in sets_now if n not in wanted)
    after = []
    if obsolete:
        script = "".join(f"destroy {name}\n" for name in obsolete)
        after.append(_step(["ipset", "restore"], script, f"ipset: destroy {', '.join(obsolete)}"))
    return before, after


def _chain_steps(desired, current, backend):
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
        steps.append(_step([RESTORE_CMD[family], "--noflush"], chain_script(now, lines), desc))
    return steps


def _nft_steps(desired, now, backend):
    if backend == "nftables" and desired["rules"]:
        fingerprint, text = nft_script(desired, now["sets"] if now else ())
        if now and now["fingerprint"] == fingerprint:
            return []
        return [_step(["nft", "-f", "-"], text, f"nft: converge table inet {NFT_TABLE}")]
    if now is not None:
        return [_step(["nft", "delete", "table", "inet", NFT_TABLE], None, f"nft: delete table inet {NFT_TABLE}")]
    return []


def _step(argv, stdin, desc):
    return {"argv": argv, "stdin": stdin, "desc": desc}


def plan(backend, desired, current):
    """
    Return the ordered steps converging the kernel to ``desired`` for ``backend``.

    ``current`` holds parsed readbacks: ``ipset`` (parse_ipset_save) or None when ipset is absent,
    ``ipv4``/``ipv6`` (parse_iptables_save) or None, ``nft`` (parse_nft_list) or None when there
    is no table or no nft. Order: sets are filled before the chains
    that match them, and obsolete sets are destroyed after no chain references them any more.
    """
    sets_now = current.get("ipset")
    before, after = [], []
    if sets_now is not None:
        before, after = _ipset_steps(desired, sets_now, backend == "ipset" and desired["rules"])
    chains = _chain_steps(desired, current, backend)
    nft = _nft_steps(desired, current.get("nft"), backend)
    return before + chains + after + nft
