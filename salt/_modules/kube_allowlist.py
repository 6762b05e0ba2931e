"""
Keep a host firewall allow-list equal to the node addresses of Kubernetes clusters.

The kube-salt-bridge daemon fires a signed event per cluster change (docs/event-contract.md); the
reactor calls :py:func:`apply` on the targeted minions. This module verifies the payload (HMAC
signature, schema, every address, digest, generation), applies the safety policy (empty, shrink),
caches the accepted list atomically and converges the firewall backend selected in pillar
(``ipset`` default, ``nftables``, ``iptables``). Each backend owns only its own chain, sets or
table and rewrites them atomically; nothing else in the ruleset is touched.

Configuration lives in pillar ``kube_allowlist`` (see ``salt/pillar.example``). The pure parts are
in ``_utils/kube_allowlist_*.py``: payload (contract), config (pillar), policy, firewall (render
and plan), kube (``pull``).

Traffic arriving on the loopback interface (local clients on 127.0.0.1, ::1 or the host's own
addresses) is never filtered: the first rule of our chain/table returns it untouched.

Return codes (``retcode`` of the job): 0 applied, already current, stale or not configured here;
1 refused (signature, schema, address, generation conflict, policy); 2 failed (pillar, command,
cluster API). The returned ``applied`` is true when the minion is at the payload's list after the
call (applied now, already current, or nothing to enforce here) and false otherwise (refused,
failed, stale): the bridge counts a return as a success only with retcode 0 and ``applied`` not
false.

:depends: ipset + iptables (``ipset`` backend), nft (``nftables``) or iptables (``iptables``)
"""

import contextlib
import datetime
import fcntl
import json
import logging
import os
import tempfile

import salt.utils.path
import salt.utils.platform
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "kube_allowlist"

OK, REFUSED, FAILED = 0, 1, 2
CACHE_SUFFIX = ".json"


class _Refused(Exception):
    """The payload is not acceptable (retcode 1); the message says why."""


def __virtual__():
    if not salt.utils.platform.is_linux():
        return (False, "kube_allowlist: only Linux firewalls are supported")
    if salt.utils.path.which("nft") or salt.utils.path.which("iptables-restore"):
        return __virtualname__
    return (
        False,
        "kube_allowlist: neither nft nor iptables-restore found; install nftables, or iptables "
        "(+ ipset for the default backend)",
    )


def _u(name):
    """Return a function of the pure helpers in ``_utils/kube_allowlist_*.py``."""
    return __utils__["kube_allowlist_" + name]


def _config():
    default_dir = os.path.join(__opts__.get("cachedir", "/var/cache/salt/minion"), "kube_allowlist")
    try:
        return _u("config.load")(
            __pillar__.get("kube_allowlist"), _u("payload.parse_entry"), default_dir
        )
    except ValueError as err:
        raise CommandExecutionError(f"invalid pillar: {err}") from err


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- cache ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(config):
    """Serialise every change (concurrent jobs on one minion) with an flock in the cache dir."""
    os.makedirs(config["cache_dir"], mode=0o700, exist_ok=True)
    with open(os.path.join(config["cache_dir"], ".lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cache_path(config, cluster):
    return os.path.join(config["cache_dir"], cluster + CACHE_SUFFIX)


def _read_caches(config):
    """Return ``{cluster: entry}`` from the cache dir, re-validating every cached address."""
    caches = {}
    if not os.path.isdir(config["cache_dir"]):
        return caches
    for name in sorted(os.listdir(config["cache_dir"])):
        cluster = name[: -len(CACHE_SUFFIX)]
        if not name.endswith(CACHE_SUFFIX) or not _u("payload.is_cluster_name")(cluster):
            continue
        path = os.path.join(config["cache_dir"], name)
        try:
            with open(path, encoding="utf-8") as handle:
                entry = json.load(handle)
            for family in ("ipv4", "ipv6"):
                _u("payload.parse_entry_list")(
                    entry[family], family, config["max_prefix"], 10**6, where=f"{path}:{family}"
                )
            int(entry["generation"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CommandExecutionError(
                f"cache file {path} is unreadable or corrupt ({err}); delete it and re-send the "
                "cluster's list (or run kube_allowlist.pull)"
            ) from err
        caches[cluster] = entry
    return caches


def _write_cache(config, entry):
    """Write one cluster's entry atomically: temp file, fsync, rename, fsync the directory."""
    directory = config["cache_dir"]
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entry, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, _cache_path(config, entry["cluster"]))
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise CommandExecutionError(f"cannot write cache in {directory}: {err}") from err
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- firewall -------------------------------------------------------------------------------


def _run(argv, stdin=None):
    return __salt__["cmd.run_all"](
        argv,
        python_shell=False,
        stdin=stdin,
        ignore_retcode=True,
        output_loglevel="quiet",
        env={"LC_ALL": "C"},
    )


def _readback():
    parsers = {
        "ipset": _u("firewall.parse_ipset_save"),
        "ipv4": _u("firewall.parse_iptables_save"),
        "ipv6": _u("firewall.parse_iptables_save"),
        "nft": _u("firewall.parse_nft_list"),
    }
    current = {}
    for key, argv in _u("firewall.read_commands")().items():
        current[key] = None
        if not salt.utils.path.which(argv[0]):
            continue
        res = _run(argv)
        if res["retcode"] == 0:
            current[key] = parsers[key](res["stdout"])
        elif key != "nft":  # nft exits non-zero when our table does not exist
            raise CommandExecutionError(
                f"{' '.join(argv)} failed (exit {res['retcode']}): {res['stderr'].strip()[:500]}"
            )
    return current


def _converge(config, caches):
    """Bring the backend to the state the config and caches describe; return (desired, steps)."""
    desired = _u("firewall.desired_state")(config, caches)
    missing = [t for t in _u("firewall.required_tools")(config["backend"], desired) if not salt.utils.path.which(t)]
    if missing:
        raise CommandExecutionError(
            f"backend {config['backend']} needs {', '.join(missing)}: install it or choose another "
            "backend in pillar kube_allowlist:backend"
        )
    steps = _u("firewall.plan")(config["backend"], desired, _readback())
    for step in steps:
        res = _run(step["argv"], step["stdin"])
        if res["retcode"] != 0:
            raise CommandExecutionError(
                f"{step['desc']} failed (exit {res['retcode']}): {res['stderr'].strip()[:500]}; "
                "the previous rules of that step stay in effect"
            )
        log.info("kube_allowlist: %s", step["desc"])
    return desired, steps


def _pending_note(desired):
    if not desired["pending"]:
        return ""
    waits = "; ".join(f"{rule} waits for {', '.join(cs)}" for rule, cs in sorted(desired["pending"].items()))
    return f" (not enforced yet: {waits})"


# --- apply / pull ---------------------------------------------------------------------------


def _result(payload):
    ret = {
        "cluster": None,
        "generation": None,
        "digest": None,
        "changed": False,
        "applied": False,
        "reason": "",
        "backend": None,
        "added": [],
        "removed": [],
    }
    if isinstance(payload, dict):
        for key, kind in (("cluster", str), ("generation", int), ("digest", str)):
            if isinstance(payload.get(key), kind):
                ret[key] = payload[key]
    return ret


def _finish(ret, retcode, reason):
    ret["reason"] = reason
    __context__["retcode"] = retcode
    level = logging.INFO if retcode == OK else logging.WARNING
    log.log(level, "kube_allowlist: cluster %s: %s", ret["cluster"], reason)
    return ret


def _not_configured(ret, cluster):
    """Nothing to enforce for ``cluster`` on this minion: a success (applied, unchanged, retcode 0)."""
    ret["applied"] = True
    return _finish(ret, OK, f"not configured here: no kube_allowlist:rules entry references cluster {cluster}")


def _verified(config, payload):
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as err:
            raise _Refused(f"payload: not JSON: {err}") from err
    try:
        _u("payload.check_shape")(payload)
        key = _u("config.signing_key")(config, payload["cluster"])
        return _u("payload.verify")(payload, key, config["max_prefix"], config["max_entries"])
    except ValueError as err:
        raise _Refused(f"refused: {err}") from err


def _accept(config, incoming, ret, force):
    """Decide on ``incoming`` under the lock, cache it, converge the backend; fill ``ret``."""
    cluster = incoming["cluster"]
    setting = _u("config.cluster_setting")
    with _locked(config):
        caches = _read_caches(config)
        decision = _u("policy.decide")(
            caches.get(cluster),
            incoming,
            _u("config.families_for")(config, cluster),
            setting(config, cluster, "allow_empty"),
            setting(config, cluster, "max_shrink"),
            force,
        )
        if decision["verdict"] not in ("apply", "current"):
            return _finish(ret, decision["retcode"], decision["reason"])
        if decision["verdict"] == "apply":
            entry = dict(incoming, applied_at=_now(), backend=config["backend"])
            _write_cache(config, entry)
            caches[cluster] = entry
            ret.update(added=decision["added"], removed=decision["removed"])
        desired, steps = _converge(config, caches)
    ret.update(changed=bool(steps), applied=True)
    return _finish(ret, OK, decision["reason"] + _pending_note(desired))


def apply(payload=None, force=False, **kwargs):  # pylint: disable=unused-argument
    """
    Verify a kube-salt-bridge payload and converge the firewall to its lists.

    payload
        The event data as the reactor passes it (a dict, or its JSON text). Keys outside the
        contract (``_stamp``, ``__pub_*`` ...) are ignored.

    force
        Accept a shrink larger than ``max_shrink``.

    Returns ``cluster, generation, digest, changed, applied, reason, backend, added, removed`` and
    sets the job's retcode: 0 applied / already current / stale / not configured here, 1 refused,
    2 failed. ``applied`` is true for applied, already current and not configured here (the
    minion is at this list), false for stale, refused and failed. A cluster that no
    ``kube_allowlist:rules`` entry references is verified, then left alone with reason "not
    configured here" (applied true, changed false, retcode 0): nothing to enforce on this minion.

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.apply payload='{"version": 1, "cluster": "prod", ...}'
    """
    ret = _result(payload)
    try:
        config = _config()
        ret["backend"] = config["backend"]
        view = _verified(config, payload)
    except _Refused as err:
        return _finish(ret, REFUSED, str(err))
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))
    cluster = view["cluster"]
    if not _u("config.rules_for")(config, cluster):
        return _not_configured(ret, cluster)
    incoming = {
        "cluster": cluster,
        "generation": view["generation"],
        "digest": view["digest"],
        "ipv4": view["ipv4"],
        "ipv6": view["ipv6"],
        "nodes": view["nodes"],
        "issued_at": view["issued_at"],
        "source": "bridge",
    }
    try:
        return _accept(config, incoming, ret, force is True)
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))


def pull(cluster, force=False):
    """
    Read the cluster's node addresses straight from its API (the mode of the pull formula this project replaced, see docs/ARCHITECTURE.md) and apply them.

    Uses the kubeconfig at pillar ``kube_allowlist:clusters:<cluster>:kubeconfig`` (optional
    ``context``), address types and families from the same pillar key. The list keeps the last
    bridge generation; when the API cannot be read the firewall is re-converged from the cache
    and the job fails (retcode 2) saying so. Returns the same dict as :py:func:`apply`.

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.pull prod
    """
    config = _config()
    ret = _result({"cluster": cluster})
    ret["backend"] = config["backend"]
    settings = config["clusters"].get(cluster, {})
    if "kubeconfig" not in settings:
        raise CommandExecutionError(f"pillar kube_allowlist:clusters:{cluster}:kubeconfig is not set")
    if not _u("config.rules_for")(config, cluster):
        return _not_configured(ret, cluster)
    try:
        conf = _u("kube.load_kubeconfig")(settings["kubeconfig"], settings.get("context"))
        items = _u("kube.list_nodes")(conf, settings["timeout"])
        lists, nodes = _u("kube.node_addresses")(items, settings["address_types"], settings["families"])
        for family in ("ipv4", "ipv6"):
            _u("payload.parse_entry_list")(lists[family], family, config["max_prefix"], config["max_entries"])
    except (RuntimeError, ValueError, OSError) as err:
        with _locked(config):
            caches = _read_caches(config)
            _converge(config, caches)
        kept = caches.get(cluster, {}).get("generation", "none")
        return _finish(ret, FAILED, f"cluster API not usable ({err}); firewall kept from cache (generation {kept})")
    cached = _read_caches(config).get(cluster) or {}
    incoming = {
        "cluster": cluster,
        "generation": cached.get("generation", 0),
        "digest": _u("payload.digest")(lists["ipv4"], lists["ipv6"]),
        "ipv4": lists["ipv4"],
        "ipv6": lists["ipv6"],
        "nodes": nodes,
        "issued_at": _now(),
        "source": "pull",
    }
    ret.update(generation=incoming["generation"], digest=incoming["digest"])
    try:
        return _accept(config, incoming, ret, force is True)
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))


# --- show / restore / flush -----------------------------------------------------------------


def show():
    """
    Show the cached list per cluster and the state of each rule.

    Per cluster: generation, digest, source (bridge|pull), entry counts, nodes, issued_at,
    applied_at, backend. Per rule: clusters, proto, ports, families, others, and whether it is
    enforced or waiting for a cluster's first list.

    CLI Example:

    .. code-block:: bash

        salt '*' kube_allowlist.show
    """
    config = _config()
    caches = _read_caches(config)
    desired = _u("firewall.desired_state")(config, caches)
    clusters = {
        name: {
            "generation": e["generation"],
            "digest": e["digest"],
            "source": e.get("source"),
            "ipv4": len(e["ipv4"]),
            "ipv6": len(e["ipv6"]),
            "nodes": e.get("nodes"),
            "issued_at": e.get("issued_at"),
            "applied_at": e.get("applied_at"),
            "backend": e.get("backend"),
        }
        for name, e in caches.items()
    }
    rules = {
        r["name"]: {
            "clusters": r["clusters"],
            "proto": r["proto"],
            "ports": r["ports"],
            "families": r["families"],
            "others": r["others"],
            "status": "pending" if r["name"] in desired["pending"] else "enforced",
            "waiting_for": desired["pending"].get(r["name"], []),
        }
        for r in config["rules"]
    }
    return {"backend": config["backend"], "cache_dir": config["cache_dir"], "clusters": clusters, "rules": rules}


def restore():
    """
    Re-apply the cached lists and the pillar rules to the backend (after a reboot, a pillar change
    or with the bridge down). Changes nothing when the firewall is already right.

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.restore
    """
    config = _config()
    with _locked(config):
        caches = _read_caches(config)
        desired, steps = _converge(config, caches)
    return {
        "changed": bool(steps),
        "backend": config["backend"],
        "steps": [s["desc"] for s in steps],
        "generations": {c: e["generation"] for c, e in caches.items()},
        "pending": desired["pending"],
    }


def flush(cluster=None):
    """
    Remove what this module owns: for one cluster its cached list and sets (rules that reference it
    stop being enforced), or without ``cluster`` everything (chains, jumps, sets, table, cache).

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.flush
        salt-call kube_allowlist.flush cluster=prod
    """
    config = _config()
    if cluster is not None and not _u("payload.is_cluster_name")(cluster):
        raise CommandExecutionError(f"cluster {cluster!r} is not a DNS label")
    removed = []
    with _locked(config):
        caches = _read_caches(config)
        for name in [cluster] if cluster else list(caches):
            if name in caches:
                os.unlink(_cache_path(config, name))
                removed.append(name)
                del caches[name]
        _, steps = _converge(config, caches)
    return {"changed": bool(steps or removed), "caches_removed": removed, "steps": [s["desc"] for s in steps]}
