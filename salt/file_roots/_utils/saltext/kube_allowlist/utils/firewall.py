"""
Pure planning for the kube_allowlist firewall: the desired state, the readback commands and their
parsers, and the plan that converges the kernel, composed from one module per backend.

``plan(backend, desired, current)`` compares what the kernel has (parsed from read-only commands)
with what it should have and returns the steps (argv + stdin) that converge it, or ``[]`` when
nothing has to change. Each backend owns only its own objects:

* ipset:    sets ``ksb-<cluster>-4`` / ``-6`` (hash:net, :py:mod:`.ipset`) + chain ``KSB-ALLOW``
            (filter, iptables and ip6tables, :py:mod:`.iptables`), jumped to once from ``INPUT``.
* iptables: the same chain with one rule per source address (:py:mod:`.iptables`).
* nftables: table ``inet kube_allowlist``, converged in one ``nft -f`` transaction
            (:py:mod:`.nftables`).

Objects of the backends not selected are removed, so switching backends leaves no trace. Traffic
arriving on the loopback interface always leaves our chain or table untouched (its first rule).
"""

from saltext.kube_allowlist.utils import ipset, iptables, nftables

PARSERS = {
    "ipset": ipset.parse_ipset_save,
    "ipv4": iptables.parse_iptables_save,
    "ipv6": iptables.parse_iptables_save,
    "nft": nftables.parse_nft_list,
}


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
    maxelem = max(ipset.MIN_MAXELEM, config["max_entries"])
    return {"rules": rules, "pending": pending, "sets": sets, "maxelem": maxelem}


def read_commands():
    """Return the read-only commands whose output ``plan`` needs, keyed as :py:data:`PARSERS`."""
    return {
        "ipset": list(ipset.READ_COMMAND),
        "ipv4": iptables.read_command("ipv4"),
        "ipv6": iptables.read_command("ipv6"),
        "nft": list(nftables.READ_COMMAND),
    }


def parse_readback(key, text):
    """Parse the output of ``read_commands()[key]``."""
    return PARSERS[key](text)


def required_tools(backend, desired):
    """Return the executables the backend needs for this desired state."""
    if not desired["rules"]:
        return []
    if backend == "nftables":
        return ["nft"]
    families = {f for r in desired["rules"] for f in r["families"]}
    tools = [iptables.RESTORE_CMD[f] for f in ("ipv4", "ipv6") if f in families]
    tools += [iptables.SAVE_CMD[f] for f in ("ipv4", "ipv6") if f in families]
    return (["ipset"] if backend == "ipset" else []) + tools


def plan(backend, desired, current):
    """
    Return the ordered steps converging the kernel to ``desired`` for ``backend``.

    ``current`` holds parsed readbacks: ``ipset`` (``ipset.parse_ipset_save``) or None when ipset
    is absent, ``ipv4``/``ipv6`` (``iptables.parse_iptables_save``) or None, ``nft``
    (``nftables.parse_nft_list``) or None when there is no table or no nft. Order: sets are filled
    before the chains that match them, and obsolete sets are destroyed after no chain references
    them any more.
    """
    sets_now = current.get("ipset")
    before, after = [], []
    if sets_now is not None:
        before, after = ipset.steps(desired, sets_now, backend == "ipset" and desired["rules"])
    chains = iptables.steps(desired, current, backend)
    nft = nftables.steps(desired, current.get("nft"), backend)
    return before + chains + after + nft
