"""
Pure decision for an incoming allow-list versus the cached one: generation order, then safety policy.

Verdicts (retcode in brackets; 0 = the minion is at this generation or newer):

* ``apply``   [0] new list accepted.
* ``current`` [0] same generation and digest as cached (a duplicate delivery).
* ``stale``   [0] older than the cached generation: ignored (reordered delivery or replay).
* ``conflict``[1] same generation, different digest: refused (a bridge bug or a forgery attempt).
* ``empty``   [1] no entry at all for the families in use: refused unless ``allow_empty``.
* ``shrink``  [1] more than ``max_shrink`` of the cached entries would go: refused unless ``force``.

A list obtained by ``pull`` (source ``pull``) keeps the cached bridge generation; a bridge payload of
that same generation is then accepted, since only bridge-issued lists are ordered by generation.
"""

OK, REFUSED, FAILED = 0, 1, 2
FAMILIES = ("ipv4", "ipv6")


def _entries(lists, families):
    return {e for f in families for e in (lists or {}).get(f, [])}


def diff(cached, incoming):
    """Return ``(added, removed)``: sorted entries of both families versus the cached lists."""
    new, old = _entries(incoming, FAMILIES), _entries(cached, FAMILIES)
    return sorted(new - old), sorted(old - new)


def _order(cached, incoming):
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


def _safety(cached, incoming, families, allow_empty, max_shrink, force):
    new = _entries(incoming, families)
    if not new and not allow_empty:
        return (
            "empty",
            REFUSED,
            "refused: empty allow-list for " + "/".join(families or FAMILIES)
            + " (set pillar kube_allowlist:allow_empty or kube_allowlist:clusters:<name>:allow_empty)",
        )
    old = _entries(cached, families)
    gone = len(old - new)
    if old and gone / len(old) > max_shrink and not force:
        return (
            "shrink",
            REFUSED,
            f"refused: {gone} of {len(old)} entries would be removed, more than max_shrink "
            f"{max_shrink:g}; re-run with force=True if intended",
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
    verdict = _order(cached, incoming) or _safety(
        cached, incoming, families, allow_empty, max_shrink, force
    )
    if verdict is None:
        verdict = ("apply", OK, f"applied generation {incoming['generation']}")
    name, retcode, reason = verdict
    return {"verdict": name, "retcode": retcode, "reason": reason, "added": added, "removed": removed}
