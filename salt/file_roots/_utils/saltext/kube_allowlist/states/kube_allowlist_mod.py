"""
States for the kube_allowlist formula: converge the firewall from pillar + cache, or remove it.

Thin wrappers over the execution module so that a highstate reports changes only when the
firewall really changed (``module.run`` would report every call as a change). Under ``test=True``
they report the real plan: the module's dry run reads the kernel's state with read-only commands
and lists the steps a real run would execute (result None with those steps as changes), or result
True when nothing would change; nothing is written, not even the cache directory.
"""

import salt.loader.dunder
from salt.exceptions import CommandExecutionError

__virtualname__ = "kube_allowlist"

# Injected by the loader; declared as its named context for the saltutil.sync_all fallback
# (file_roots _states/kube_allowlist.py imports this module and hands over ``__opts__``).
__salt__ = salt.loader.dunder.loader_context.named_context("__salt__")


def __virtual__():
    if "kube_allowlist.restore" in __salt__:
        return __virtualname__
    return (
        False,
        "kube_allowlist execution module not available (install saltext.kube_allowlist, or saltutil.sync_all)",
    )


def _state(name, fun):
    """
    Run ``kube_allowlist.<fun>`` (or, under ``test=True``, its dry run) and report it as a state:
    changes only when the firewall or the caches really changed; under ``test=True`` the steps a
    real run would execute (result None), or True when nothing would change; False with the
    module's error (its retcode 2) when it failed.
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    test = bool(__opts__.get("test"))
    try:
        out = __salt__[f"kube_allowlist.{fun}"](test=test)
    except CommandExecutionError as err:
        ret["result"] = False
        ret["comment"] = str(err)
        return ret
    if out.get("error"):
        ret["result"] = False
        ret["comment"] = out["error"]
        return ret
    steps = out.get("steps") or []
    removed = out.get("caches_removed") or []
    if not out["changed"]:
        ret["comment"] = "already in the desired state"
        return ret
    changes = {k: v for k, v in out.items() if k not in ("changed", "test")}
    if test:
        ret["result"] = None
        ret["changes"] = changes
        what = steps + [f"remove the cached list of {c}" for c in removed]
        ret["comment"] = "would " + ("; ".join(what) if what else f"change what kube_allowlist.{fun} owns")
        return ret
    ret["changes"] = changes
    ret["comment"] = "; ".join(steps + [f"removed the cached list of {c}" for c in removed])
    return ret


def restored(name):
    """Re-apply the cached lists and pillar rules (after a reboot, a pillar change, or bridge down)."""
    return _state(name, "restore")


def flushed(name):
    """Remove every chain, set, table and cache file the module owns."""
    return _state(name, "flush")
