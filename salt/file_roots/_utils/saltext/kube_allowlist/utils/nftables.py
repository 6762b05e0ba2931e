"""
The ``nftables`` backend: table ``inet kube_allowlist``, converged in place by one ``nft -f``
transaction (sets and the ``input`` chain flushed and refilled), idempotent through a fingerprint of
the rendered state kept in the comment of the table's last rule. Its first rule returns traffic
arriving on the loopback interface (``iifname "lo" return``).
"""

import hashlib
import ipaddress
import re
import socket

from saltext.kube_allowlist.utils import payload
from saltext.kube_allowlist.utils.common import FAMILY_SUFFIX, step

NFT_TABLE = "kube_allowlist"
NFT_FP_RE = re.compile(r'comment "ksb:([0-9a-f]{64})"')
NFT_SET_RE = re.compile(r"^\s*set (\S+) \{", re.M)
NFT_LOOPBACK_RULE = 'iifname "lo" return'
READ_COMMAND = ["nft", "list", "table", "inet", NFT_TABLE]


def nft_set_name(cluster, family):
    """Return the nftables set name for a cluster and family (DNS labels have no ``_``)."""
    return f"c_{cluster.replace('-', '_')}_{FAMILY_SUFFIX[family]}"


def parse_nft_list(text):
    """Return ``{"fingerprint": str, "sets": [names]}`` from ``nft list table inet kube_allowlist``."""
    match = NFT_FP_RE.search(text)
    return {"fingerprint": match.group(1) if match else "", "sets": NFT_SET_RE.findall(text)}


def _nft_elements(entries):
    """
    The set elements for ``entries``: the smallest list of networks covering exactly the same
    addresses (adjacent and overlapping entries collapsed), IPv4 first, each family in address
    order, hosts without their ``/32``/``/128``, as ``ipaddress.collapse_addresses`` gives them.
    """
    fast = _collapsed_fast(entries)
    if fast is not None:
        return ", ".join(fast)
    nets = [ipaddress.ip_network(e) for e in entries]
    collapsed = [n for v in (4, 6) for n in ipaddress.collapse_addresses(x for x in nets if x.version == v)]
    return ", ".join(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in collapsed)


def _parsed_entry(entry):
    """
    Return ``(bits, first address as int, prefix length)`` of an entry in the contract's canonical
    form (a host without suffix, a network without host bits), or None for any other text.
    """
    addr, slash, prefix = entry.partition("/")
    if ":" in addr:
        if not payload.ipv6_is_canonical(addr):
            return None
        bits = 128
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
    elif payload.IPV4_CANONICAL_RE.fullmatch(addr):
        bits = 32
        a, b, c, d = addr.split(".")
        value = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    else:
        return None
    if not slash:
        return bits, value, bits
    if not prefix.isdigit() or prefix != str(int(prefix)) or int(prefix) >= bits:
        return None
    length = int(prefix)
    if value & ((1 << (bits - length)) - 1):
        return None
    return bits, value, length


def _collapsed_fast(entries):
    """
    What ``_nft_elements`` returns, computed on integers: the union of the entries as sorted,
    merged ranges, each cut into its largest aligned networks (the one smallest cover, which is
    what ``collapse_addresses`` yields). An entry printed unchanged keeps its text; a merged
    network is printed by ``ipaddress``. Returns None when an entry is not in canonical form, so
    that the caller's ``ipaddress`` path handles (or refuses) it as before.
    """
    by_bits = {32: [], 128: []}
    texts = {}
    for entry in entries:
        parsed = _parsed_entry(entry)
        if parsed is None:
            return None
        bits, value, length = parsed
        by_bits[bits].append((value, value + (1 << (bits - length)) - 1))
        texts[parsed] = entry
    out = []
    for bits, ranges in by_bits.items():
        ranges.sort()
        merged = []
        for low, high in ranges:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1][1] = high
            else:
                merged.append([low, high])
        for low, high in merged:
            while low <= high:
                size = low & -low if low else 1 << bits
                while size > high - low + 1:
                    size >>= 1
                length = bits - size.bit_length() + 1
                text = texts.get((bits, low, length))
                if text is None:
                    net = (ipaddress.IPv4Network if bits == 32 else ipaddress.IPv6Network)((low, length))
                    text = str(net.network_address) if length == bits else str(net)
                out.append(text)
                low += size
    return out


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


def steps(desired, now, backend):
    if backend == "nftables" and desired["rules"]:
        fingerprint, text = nft_script(desired, now["sets"] if now else ())
        if now and now["fingerprint"] == fingerprint:
            return []
        return [step(["nft", "-f", "-"], text, f"nft: converge table inet {NFT_TABLE}")]
    if now is not None:
        return [step(["nft", "delete", "table", "inet", NFT_TABLE], None, f"nft: delete table inet {NFT_TABLE}")]
    return []
