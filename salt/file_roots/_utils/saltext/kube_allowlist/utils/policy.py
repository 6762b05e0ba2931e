"""
Pure decision for an incoming allow-list versus the cached one: generation order, then safety policy.

Verdicts (retcode in brackets; 0 = the minion is at this generation or newer):

* ``apply``   [0] new list accepted.
* ``current`` [0] same generation and digest as cached (a duplicate delivery).
* ``stale``   [0] older than the cached generation: ignored (reordered delivery or replay).
* ``conflict``[1] same generation, different digest: refused (a bridge bug or a forgery attempt).
* ``empty``   [1] no entry at all for the families in use: refused unless ``allow_empty``.
* ``shrink``  [1] the list would lose, net, more than ``max_shrink`` of the cached entries: refused
  unless ``force``.

Empty and shrink follow the shrink policy of docs/event-contract.md ("Shrink policy"), the same rule
the bridge applies before it publishes (src/plan/policy.ts; both reproduce
test/vectors/shrink-v1.json): the list given is judged against the list held (the cached, applied
one; a refused list changes nothing), counting the entries of the families in use. The shrink is the
net loss ``max(0, held - given)``: entries replaced by as many others are no shrink, growth never is,
and a list equal to the held one is always accepted. Exactly ``max_shrink`` is accepted.

A list obtained by ``pull`` (source ``pull``) keeps the cached bridge generation; a bridge payload of
that same generation is then accepted, since only bridge-issued lists are ordered by generation.
"""

from saltext.kube_allowlist.utils.payload import FAMILIES

# The job retcodes of the execution module (module docstring, "Return codes").
OK, REFUSED, FAILED = 0, 1, 2


def _entries(lists, families):
    return {e for f in families for e in (lists or {}).get(f, [])}


def diff(cached, incoming):
    """Return ``(added, removed)``: sorted entries of both families versus the cached lists."""
    new, old = _entries(incoming, FAMILIES), _entries(cached, FAMILIES)
    return sorted(new - old), sorted(old - new)


def order(cached, incoming):
    """
    The generation order alone: ``(verdict, retcode, reason)`` for ``stale``, ``current`` or
    ``conflict``, else None. A delta is ordered by this before it is applied to the cached list.
    """
    if incoming["source"] != "bridge" or not cached:
        return None
    have, got = cached["generation"], incoming["generation"]
    if got < have:
        return "stale", OK, f"stale: generation {got} is older than the applied generation {have}"
    if got == have and cached.get("source") == "bridge":
        if cached["digest"] == incoming["digest"]:
            return "current", OK, f"already current at generation {got}"
        return (
            "conflict",
            REFUSED,
            f"refused: generation {got} was already applied with digest {cached['digest']}, "
            f"this payload has {incoming['digest']}",
        )
    return None


def judge_list(held, given, families, allow_empty, max_shrink):
    """
    Judge the list ``given`` against the list ``held`` (None: nothing held yet) by the shrink policy.

    Both are dicts with ``ipv4`` and ``ipv6``; only ``families`` count. Returns ``{"verdict":
    "accept"|"refuse", "reasons": [...] ("empty", then "shrink"), "held", "given", "removed",
    "added", "lost"}`` where ``lost`` is the net loss ``max(0, held - given)`` in entries.
    """
    old = _entries(held, families) if held is not None else set()
    new = _entries(given, families)
    removed = len(old - new)
    out = {
        "held": len(old),
        "given": len(new),
        "removed": removed,
        "added": len(new - old),
        "lost": max(0, len(old) - len(new)),
        "reasons": [],
    }
    if held is None or old != new:
        if not new and not allow_empty:
            out["reasons"].append("empty")
        if old and out["lost"] / len(old) > max_shrink:
            out["reasons"].append("shrink")
    out["verdict"] = "refuse" if out["reasons"] else "accept"
    return out


def _safety(cached, incoming, families, allow_empty, max_shrink, force):
    judged = judge_list(cached, incoming, families, allow_empty, max_shrink)
    if "empty" in judged["reasons"]:
        return (
            "empty",
            REFUSED,
            "refused: empty allow-list for "
            + "/".join(families or FAMILIES)
            + " (set pillar kube_allowlist:allow_empty or kube_allowlist:clusters:<name>:allow_empty)",
        )
    if "shrink" in judged["reasons"] and not force:
        net = f" and {judged['added']} added, {judged['lost']} fewer" if judged["added"] else ""
        return (
            "shrink",
            REFUSED,
            f"refused: {judged['removed']} of {judged['held']} entries would be removed{net} "
            f"({judged['lost'] / judged['held']:.1%}), more than max_shrink {max_shrink:g}; "
            "re-run with force=True if intended",
        )
    return None


def decide(cached, incoming, families, allow_empty, max_shrink, force=False):
    """
    Decide what to do with ``incoming`` given ``cached`` (None when the cluster was never applied).

    Both are dicts with ``generation``, ``digest``, ``ipv4``, ``ipv6``, ``source`` (bridge|pull).
    ``families`` are the families that rules for this cluster use (empty and shrink count only
    those). Returns ``{"verdict", "retcode", "reason", "added", "removed"}``.
    """
    added, removed = diff(cached, incoming)
    verdict = order(cached, incoming) or _safety(cached, incoming, families, allow_empty, max_shrink, force)
    if verdict is None:
        verdict = ("apply", OK, f"applied generation {incoming['generation']}")
    name, retcode, reason = verdict
    return {"verdict": name, "retcode": retcode, "reason": reason, "added": added, "removed": removed}
