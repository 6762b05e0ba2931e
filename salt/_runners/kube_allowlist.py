"""
Which minions are behind? Compare the generation each minion applied per cluster.

``salt-run kube_allowlist.status`` asks the targeted minions for ``kube_allowlist.show`` and reports,
per cluster, the newest generation any minion applied and every minion's generation and digest,
flagging those behind. (The newest generation the bridge published is in the bridge's own
``kube-salt-bridge status``; a cluster that every minion missed cannot be seen from here.)
"""

import salt.client

__virtualname__ = "kube_allowlist"


def __virtual__():
    return __virtualname__


def summarize(returns):
    """
    Pure: turn ``{minion: show() return}`` into the per-cluster report.

    Minions whose return is not a dict (module missing, error text) are listed under ``errors``.
    """
    clusters, errors = {}, {}
    for minion, ret in sorted(returns.items()):
        if not isinstance(ret, dict) or "clusters" not in ret:
            errors[minion] = str(ret)[:200]
            continue
        for name, state in ret["clusters"].items():
            entry = clusters.setdefault(name, {"newest": 0, "minions": {}})
            entry["minions"][minion] = {
                "generation": state["generation"],
                "digest": state["digest"],
                "applied_at": state.get("applied_at"),
            }
            entry["newest"] = max(entry["newest"], state["generation"])
    for entry in clusters.values():
        for state in entry["minions"].values():
            state["behind"] = state["generation"] < entry["newest"]
        entry["behind"] = sorted(m for m, s in entry["minions"].items() if s["behind"])
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
