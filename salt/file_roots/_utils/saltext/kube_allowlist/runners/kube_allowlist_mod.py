"""
Which minions are behind? Compare the generation each minion applied per cluster.

``salt-run kube_allowlist.status`` asks the targeted minions for ``kube_allowlist.show`` and reports,
per cluster, the newest generation any minion applied and every minion's generation and digest,
flagging those behind and those whose cache file of the cluster is corrupt. (The newest generation
the bridge published is in the bridge's own
``kube-salt-bridge status``; a cluster that every minion missed cannot be seen from here.)
"""

import salt.client

__virtualname__ = "kube_allowlist"


def __virtual__():
    return __virtualname__


def _generation(value):
    return value if type(value) is int else None


def summarize(returns):
    """
    Pure: turn ``{minion: show() return}`` into the per-cluster report.

    Minions whose return is not a show() dict (module missing, error text, a failed show with
    ``error``) are listed under ``errors``. A cluster whose cache file a minion reports corrupt
    lists that minion under the cluster's ``corrupt`` (and counts it as behind).
    """
    clusters, errors = {}, {}
    for minion, ret in sorted(returns.items()):
        if not isinstance(ret, dict) or not isinstance(ret.get("clusters"), dict):
            errors[minion] = str(ret.get("error") if isinstance(ret, dict) and ret.get("error") else ret)[:200]
            continue
        for name, state in ret["clusters"].items():
            state = state if isinstance(state, dict) else {}
            entry = clusters.setdefault(name, {"newest": 0, "minions": {}})
            generation = _generation(state.get("generation"))
            entry["minions"][minion] = {
                "generation": generation,
                "digest": state.get("digest"),
                "applied_at": state.get("applied_at"),
            }
            entry["newest"] = max(entry["newest"], generation or 0)
        corrupt = ret.get("corrupt")
        for name, reason in corrupt.items() if isinstance(corrupt, dict) else ():
            entry = clusters.setdefault(name, {"newest": 0, "minions": {}})
            entry["minions"][minion] = {
                "generation": None,
                "digest": None,
                "applied_at": None,
                "corrupt": str(reason)[:300],
            }
    for entry in clusters.values():
        for state in entry["minions"].values():
            state["behind"] = state["generation"] is None or state["generation"] < entry["newest"]
        entry["behind"] = sorted(m for m, s in entry["minions"].items() if s["behind"])
        entry["corrupt"] = sorted(m for m, s in entry["minions"].items() if "corrupt" in s)
    return {"clusters": clusters, "errors": errors}


def status(tgt="I@kube_allowlist:clusters:*", tgt_type="compound", timeout=None):
    """
    Report per cluster the newest applied generation and each minion's generation and digest.

    CLI Example:

    .. code-block:: bash

        salt-run kube_allowlist.status
        salt-run kube_allowlist.status tgt='db*' tgt_type=glob
    """
    client = salt.client.get_local_client(mopts=__opts__)
    returns = client.cmd(tgt, "kube_allowlist.show", tgt_type=tgt_type, timeout=timeout or __opts__.get("timeout", 5))
    return summarize(returns)
