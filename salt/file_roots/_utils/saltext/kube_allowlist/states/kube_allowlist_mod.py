"""
States for the kube_allowlist formula: converge the firewall from pillar + cache, or remove it.

Thin wrappers over the execution module so that a highstate reports changes only when the
firewall really changed (``module.run`` would report every call as a change).
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "kube_allowlist"


def __virtual__():
    if "kube_allowlist.restore" in __salt__:
        return __virtualname__
    return (False, "kube_allowlist execution module not available (run saltutil.sync_all)")


def _state(name, fun):
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    if __opts__.get("test"):
        ret["result"] = None
        ret["comment"] = f"kube_allowlist.{fun} would run"
        return ret
    try:
        out = __salt__[f"kube_allowlist.{fun}"]()
    except CommandExecutionError as err:
        ret["result"] = False
        ret["comment"] = str(err)
        return ret
    if out.get("error"):
        ret["result"] = False
        ret["comment"] = out["error"]
        return ret
    if out["changed"]:
        ret["changes"] = {k: v for k, v in out.items() if k != "changed"}
    ret["comment"] = "; ".join(out.get("steps") or []) or "already in the desired state"
    return ret


def restored(name):
    """Re-apply the cached lists and pillar rules (after a reboot, a pillar change, or bridge down)."""
    return _state(name, "restore")


def flushed(name):
    """Remove every chain, set, table and cache file the module owns."""
    return _state(name, "flush")
