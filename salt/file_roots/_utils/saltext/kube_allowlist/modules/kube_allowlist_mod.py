"""
Keep a host firewall allow-list equal to the node addresses of Kubernetes clusters.

The kube-salt-bridge daemon fires a signed event per cluster change (docs/event-contract.md,
version 2); the reactor calls :py:func:`apply` on the minions whose pillar names the cluster. This
module verifies the payload (Ed25519 signature by a public key of pillar ``public_keys`` chosen by
``key_id``, schema, every address, address space, digest, generation and its skew; a delta payload
is first applied to the cached list it was computed from), applies the safety policy (empty,
shrink), caches the accepted list atomically and converges the firewall backend selected in pillar
(``ipset`` default, ``nftables``, ``iptables``). Each backend owns only its own chain, sets or table
and rewrites them atomically; nothing else in the ruleset is touched.

Configuration lives in pillar ``kube_allowlist`` (see ``salt/pillar.example``). The pure parts are
in ``saltext.kube_allowlist.utils``: payload (contract), config (pillar), policy, firewall (plan)
with one module per backend (ipset, iptables, nftables), kube (``pull``).

Next to the per-cluster caches (``<cache_dir>/<cluster>.json``) every successful apply, pull,
restore, forget and flush persists ``<cache_dir>/_enforced.json``: the backend, the rules and the
lists the firewall enforces. ``restore`` rebuilds the firewall from that file alone when there is
no pillar (``salt-call --local`` at boot, no master) or when called with ``persisted=True``; a
cluster whose cache file is corrupt keeps the list last enforced from the same file.

Traffic arriving on the loopback interface (local clients on 127.0.0.1, ::1 or the host's own
addresses) is never filtered: the first rule of our chain/table returns it untouched.

Return codes (``retcode`` of the job) of every function: 0 success (for ``apply``/``pull``: applied,
already current, stale, need full or not configured here); 1 refused (``apply``: version, signature,
unknown key id, schema, address, address space, generation skew or conflict, a delta that does not
apply to its base, policy); 2 failed (invalid
pillar or public keys, an invalid argument such as a cluster that is no DNS label or a relative
``cache_dir``, corrupt cache of the cluster concerned, a firewall command that is missing, fails,
cannot start or runs longer than ``utils.command.TIMEOUT_SECONDS`` (60 s; it is then killed), the
cluster API for ``pull``). A dry run (``restore``/``flush`` with ``test=True``) gets the code the real run would
get before its first change. Failures are returned, not raised, so that the job's retcode can say
2: the dict then holds the message under ``reason`` (``apply``, ``pull``, ``forget``) or ``error``.
``apply``'s ``applied`` is true when the minion is at the payload's list after the call (applied
now, already current, or nothing to enforce here) and false otherwise (refused, failed, stale, need
full): the bridge counts a return as a success only with retcode 0 and ``applied`` not false, and
sends the full list to a minion whose ``apply`` answers ``need_full`` true (a delta payload that does
not start from the list it holds).

:depends: ipset + iptables (``ipset`` backend), nft (``nftables``) or iptables (``iptables``)
"""

import contextlib
import datetime
import fcntl
import json
import logging
import os
import re
import subprocess
import tempfile
import time

import salt.loader.dunder
import salt.utils.platform
from salt.exceptions import CommandExecutionError

from saltext.kube_allowlist.utils import command, firewall, kube, policy
from saltext.kube_allowlist.utils import config as pillarcfg
from saltext.kube_allowlist.utils import payload as contract
from saltext.kube_allowlist.utils.payload import DIGEST_RE, MAX_INT
from saltext.kube_allowlist.utils.policy import FAILED, OK, REFUSED

log = logging.getLogger(__name__)

__virtualname__ = "kube_allowlist"

# The loader injects these when it loads this file; declared here as the loader's own named
# contexts so that they resolve the same way when the saltutil.sync_all fallback (file_roots
# _modules/kube_allowlist.py) imports this module and calls it from its loader. (``__opts__`` is
# the loader's per-module dict, which that shim hands over.)
__pillar__ = salt.loader.dunder.__pillar__
__context__ = salt.loader.dunder.__context__
__salt__ = salt.loader.dunder.loader_context.named_context("__salt__")

CACHE_SUFFIX = ".json"
# The enforced state: "_" is not in a cluster name, so this file is never read as a cache.
STATE_FILE = "_enforced.json"
STATE_FORMAT = 1
SOURCES = ("bridge", "pull")
TAG_RE = re.compile(r"^kube-salt-bridge/cluster/([^/]*)/nodes$")
REASON_MAX = 600


class _Refused(Exception):
    """The payload is not acceptable (retcode 1); the message says why."""


def __virtual__():
    if not salt.utils.platform.is_linux():
        return (False, "kube_allowlist: only Linux firewalls are supported")
    if command.which("nft") or command.which("iptables-restore"):
        return __virtualname__
    return (
        False,
        "kube_allowlist: neither nft nor iptables-restore found; install nftables, or iptables "
        "(+ ipset for the default backend)",
    )


def _default_cache_dir():
    return os.path.join(__opts__.get("cachedir", "/var/cache/salt/minion"), "kube_allowlist")


def _config():
    try:
        return pillarcfg.load(__pillar__.get("kube_allowlist"), contract.parse_entry, _default_cache_dir())
    except ValueError as err:
        raise CommandExecutionError(f"invalid pillar: {err}") from err


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now_ms():
    return time.time_ns() // 1_000_000


def _clip(text):
    text = str(text)
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


def _failed(ret, message):
    """Return ``ret`` with ``error`` set, retcode 2, the message logged once (truncated)."""
    ret["error"] = _clip(message)
    __context__["retcode"] = FAILED
    log.warning("kube_allowlist: %s", ret["error"])
    return ret


def _succeeded(ret):
    __context__["retcode"] = OK
    return ret


# --- cache and enforced state ---------------------------------------------------------------


@contextlib.contextmanager
def _locked(directory, create=True):
    """Serialise every change (concurrent jobs on one minion) with an flock in the cache dir.
    ``create=False`` (a dry run) creates nothing: without the directory there is nothing to lock."""
    if not create and not os.path.isdir(directory):
        yield
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with open(os.path.join(directory, ".lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cache_path(directory, cluster):
    return os.path.join(directory, cluster + CACHE_SUFFIX)


def _read_json(path, max_bytes):
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError as err:
        raise ValueError("nested too deeply") from err


def _max_file_bytes(max_entries):
    return 2 * max_entries * 64 + (1 << 20)


def _check_entry(entry, cluster, max_prefix, where):
    """Validate one cached list (a cache file, or one list of the enforced state); return it."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping")
    if entry.get("cluster") != cluster:
        raise ValueError(f"{where}: cluster is not {cluster}")
    generation = entry.get("generation")
    if type(generation) is not int or not 0 <= generation < MAX_INT:
        raise ValueError(f"{where}: generation is not an integer from 0 to 2^53 - 1")
    if entry.get("source") not in SOURCES:
        raise ValueError(f"{where}: source is not bridge or pull")
    for family in ("ipv4", "ipv6"):
        contract.parse_entry_list(entry.get(family), family, max_prefix, 10**6, where=f"{where}:{family}")
    if not isinstance(entry.get("digest"), str) or entry["digest"] != contract.digest(entry["ipv4"], entry["ipv6"]):
        raise ValueError(f"{where}: digest does not match the lists")
    return entry


def _read_caches(config):
    """
    Return ``(caches, corrupt)``: ``{cluster: entry}`` of the valid cache files (every address
    re-validated) and ``{cluster: reason}`` of those unreadable, corrupt or of the wrong types.
    """
    caches, corrupt = {}, {}
    directory = config["cache_dir"]
    if not os.path.isdir(directory):
        return caches, corrupt
    for name in sorted(os.listdir(directory)):
        cluster = name[: -len(CACHE_SUFFIX)]
        if not name.endswith(CACHE_SUFFIX) or not contract.is_cluster_name(cluster):
            continue
        path = os.path.join(directory, name)
        try:
            entry = _read_json(path, _max_file_bytes(config["max_entries"]))
            caches[cluster] = _check_entry(entry, cluster, config["max_prefix"], path)
        except (OSError, ValueError) as err:
            corrupt[cluster] = _clip(
                f"cache file {path} is unreadable or corrupt ({err}); run kube_allowlist.forget "
                f"{cluster} (keeps the rules last enforced) and re-send the cluster's list"
            )
    return caches, corrupt


def _write_json(directory, name, obj):
    """Write ``directory/name`` atomically (temp file, fsync, rename, fsync the directory) unless
    it already holds exactly these bytes. Return True when the file was written."""
    data = json.dumps(obj, sort_keys=True).encode("ascii")
    path = os.path.join(directory, name)
    with contextlib.suppress(OSError):
        with open(path, "rb") as handle:
            if handle.read(len(data) + 1) == data:
                return False
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise CommandExecutionError(f"cannot write {path}: {err}") from err
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def _write_cache(config, entry):
    _write_json(config["cache_dir"], entry["cluster"] + CACHE_SUFFIX, entry)


def _state_doc(config, caches):
    return {
        "format": STATE_FORMAT,
        "backend": config["backend"],
        "max_entries": config["max_entries"],
        "max_prefix": config["max_prefix"],
        "rules": config["rules"],
        "lists": caches,
    }


def _read_state(directory, max_entries=None):
    """
    Return the enforced state persisted in ``directory`` (validated: backend, rules, every list),
    None when there is none, or raise ``ValueError`` saying what is wrong with it.
    """
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    try:
        doc = _read_json(path, _max_file_bytes(max_entries or 10**6))
    except OSError as err:
        raise ValueError(f"{path}: unreadable ({err})") from err
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not an enforced-state file of format {STATE_FORMAT}")
    try:
        pillar = {k: doc.get(k) for k in ("backend", "max_entries", "max_prefix")}
        base = pillarcfg.load(pillar, contract.parse_entry, directory)
        rules = pillarcfg.rules_from_disk(doc.get("rules"), contract.parse_entry)
        lists = doc.get("lists")
        if not isinstance(lists, dict):
            raise ValueError("lists: expected a mapping")
        caches = {}
        for cluster, entry in lists.items():
            if not contract.is_cluster_name(cluster):
                raise ValueError(f"lists: {str(cluster)[:80]!r} is not a cluster name")
            caches[cluster] = _check_entry(entry, cluster, base["max_prefix"], f"lists:{cluster}")
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: {err}") from err
    base.update(rules=rules, cache_dir=directory)
    return {"config": base, "caches": caches}


def _with_fallback(config, caches, corrupt):
    """
    Return the lists to enforce: the valid caches, plus, for a cluster whose cache is corrupt, the
    list the firewall last enforced (persisted state), so that its rules stay as they were.
    Also return ``{cluster: note}`` of the clusters so kept.
    """
    if not corrupt:
        return caches, {}
    try:
        state = _read_state(config["cache_dir"], config["max_entries"])
    except ValueError as err:
        log.warning("kube_allowlist: %s", _clip(err))
        state = None
    kept, notes = dict(caches), {}
    for cluster in corrupt:
        if state and cluster in state["caches"]:
            kept[cluster] = state["caches"][cluster]
            notes[cluster] = f"kept the list last enforced (generation {kept[cluster]['generation']})"
        else:
            notes[cluster] = "no list last enforced is known: its rules are pending"
    return kept, notes


# --- firewall -------------------------------------------------------------------------------


def _which(tools, name):
    """The path of executable ``name`` or None, looked up once per ``tools`` (one per job)."""
    if name not in tools:
        tools[name] = command.which(name)
    return tools[name]


def _run(tools, argv, stdin=None):
    """Run one firewall command (:py:func:`command.run`); a command that cannot be started or runs
    past the timeout is a ``CommandExecutionError`` naming it."""
    shown = " ".join(argv)
    path = _which(tools, argv[0])
    if path is None:
        raise CommandExecutionError(f"{argv[0]} not found: install it or choose another backend")
    try:
        return command.run(argv, stdin, executable=path)
    except subprocess.TimeoutExpired as err:
        raise CommandExecutionError(
            f"{shown} did not finish within {command.TIMEOUT_SECONDS} s and was killed"
        ) from err
    except OSError as err:
        raise CommandExecutionError(f"cannot run {shown}: {err}") from err


def _readback(tools):
    current = {}
    for key, argv in firewall.read_commands().items():
        current[key] = None
        if not _which(tools, argv[0]):
            continue
        res = _run(tools, argv)
        if res["retcode"] == 0:
            current[key] = firewall.parse_readback(key, res["stdout"])
        elif key != "nft":  # nft exits non-zero when our table does not exist
            raise CommandExecutionError(
                f"{' '.join(argv)} failed (exit {res['retcode']}): {res['stderr'].strip()[:500]}"
            )
    return current


def _converge(config, caches, persist=True, dry_run=False):
    """
    Bring the backend to the state the config and caches describe, then (``persist``) record
    that state in ``_enforced.json``. Return ``(desired, steps)``. With ``dry_run`` only the
    read-only commands run: the steps are what a real run would execute now.
    """
    desired = firewall.desired_state(config, caches)
    tools = {}  # executable paths, looked up once per job
    missing = [t for t in firewall.required_tools(config["backend"], desired) if not _which(tools, t)]
    if missing:
        raise CommandExecutionError(
            f"backend {config['backend']} needs {', '.join(missing)}: install it or choose another "
            "backend in pillar kube_allowlist:backend"
        )
    steps = firewall.plan(config["backend"], desired, _readback(tools))
    if dry_run:
        return desired, steps
    for step in steps:
        res = _run(tools, step["argv"], step["stdin"])
        if res["retcode"] != 0:
            raise CommandExecutionError(
                f"{step['desc']} failed (exit {res['retcode']}): {res['stderr'].strip()[:500]}; "
                "the previous rules of that step stay in effect"
            )
        log.info("kube_allowlist: %s", step["desc"])
    if persist:
        _write_json(config["cache_dir"], STATE_FILE, _state_doc(config, caches))
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
        "need_full": False,
    }
    if isinstance(payload, dict):
        if contract.is_cluster_name(payload.get("cluster")):
            ret["cluster"] = payload["cluster"]
        generation = payload.get("generation")
        if type(generation) is int and 0 <= generation < MAX_INT:
            ret["generation"] = generation
        if isinstance(payload.get("digest"), str) and DIGEST_RE.fullmatch(payload["digest"]):
            ret["digest"] = payload["digest"]
    return ret


def _finish(ret, retcode, reason):
    ret["reason"] = _clip(reason)
    __context__["retcode"] = retcode
    level = logging.INFO if retcode == OK else logging.WARNING
    log.log(level, "kube_allowlist: cluster %s: %s", ret["cluster"], ret["reason"])
    return ret


def _not_configured(ret, cluster):
    """Nothing to enforce for ``cluster`` on this minion: a success (applied, unchanged, retcode 0)."""
    ret["applied"] = True
    return _finish(ret, OK, f"not configured here: no kube_allowlist:rules entry references cluster {cluster}")


def _parsed(config, payload):
    if isinstance(payload, (str, bytes, bytearray)):
        if not isinstance(payload, str):
            try:
                payload = bytes(payload).decode("utf-8")
            except UnicodeDecodeError as err:
                raise _Refused("refused: payload: not UTF-8 text") from err
        limit = 64 * contract.max_values(config["max_entries"])
        try:
            return contract.parse_json(payload, limit)
        except ValueError as err:
            raise _Refused(f"refused: {err}") from err
    return payload


def _key_ring(config, cluster):
    """Return ``{key_id: raw}`` for ``cluster``; a bad or missing key is a pillar failure."""
    try:
        where, texts = pillarcfg.public_keys(config, cluster)
        return contract.key_ring(texts, where)
    except ValueError as err:
        raise CommandExecutionError(f"invalid pillar: {err}") from err


def _verified(config, payload, tag):
    try:
        contract.check_shape(payload, config["max_entries"])
    except ValueError as err:
        raise _Refused(f"refused: {err}") from err
    cluster = payload["cluster"]
    keys = _key_ring(config, cluster)
    try:
        # payload.verify without its check_shape, done above (one walk over the data, not two).
        contract.verify_signature(payload, keys)
        contract.check_fields(
            payload,
            config["max_prefix"],
            config["max_entries"],
            config["max_address_space"],
            _now_ms(),
            config["max_generation_skew"],
        )
    except ValueError as err:
        raise _Refused(f"refused: {err}") from err
    view = contract.signed_view(payload)
    if tag is not None:
        match = TAG_RE.fullmatch(tag) if isinstance(tag, str) else None
        if not match or match.group(1) != cluster:
            shown = repr(tag[:120]) if isinstance(tag, str) else type(tag).__name__
            raise _Refused(f"refused: tag {shown} does not name cluster {cluster}")
    return view


def _from_delta(config, held, incoming, delta, ret):
    """
    The full list a delta makes of ``held`` (docs/event-contract.md, "Delta form"): ``incoming``
    with the resulting ``ipv4``/``ipv6``, or None when ``ret`` is finished (stale, current,
    conflict, need full, or a delta that does not apply). Runs under the cluster lock.
    """
    early = policy.order(held, incoming)
    if early is not None and early[0] == "current":
        # The held list is this generation's (same digest): decided as the full form's duplicate.
        return dict(incoming, ipv4=held["ipv4"], ipv6=held["ipv6"])
    if early is not None:
        _finish(ret, early[1], early[2])
        return None
    base = delta[contract.DELTA_KEY]
    if held is None or held["digest"] != base:
        ret["need_full"] = True
        _finish(ret, OK, f"need_full: holds {held['digest'] if held else 'nothing'}, the delta is from {base}")
        return None
    try:
        lists = contract.apply_delta(held, delta, config["max_entries"], config["max_address_space"])
    except ValueError as err:
        _finish(ret, REFUSED, f"refused: {err}")
        return None
    return dict(incoming, **lists)


def _accept(config, incoming, ret, force, delta=None):
    """
    Decide on ``incoming`` under the lock, cache it, converge the backend; fill ``ret``. With
    ``delta`` (the verified delta payload) ``incoming`` has no lists yet: they are computed from
    the cached list first, then judged as a full list.
    """
    cluster = incoming["cluster"]
    setting = pillarcfg.cluster_setting
    with _locked(config["cache_dir"]):
        caches, corrupt = _read_caches(config)
        if cluster in corrupt:
            return _finish(ret, FAILED, corrupt[cluster])
        if delta is not None:
            incoming = _from_delta(config, caches.get(cluster), incoming, delta, ret)
            if incoming is None:
                return ret
        decision = policy.decide(
            caches.get(cluster),
            incoming,
            pillarcfg.families_for(config, cluster),
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
        enforced, _ = _with_fallback(config, caches, corrupt)
        desired, steps = _converge(config, enforced)
    ret.update(changed=bool(steps), applied=True)
    return _finish(ret, OK, decision["reason"] + _pending_note(desired))


def apply(payload=None, force=False, tag=None, **kwargs):  # pylint: disable=unused-argument
    """
    Verify a kube-salt-bridge payload (contract version 2) and converge the firewall to its lists.

    payload
        The event data as the reactor passes it (a dict, or its JSON text). Keys outside the
        contract (``_stamp``, the unsigned routing hint ``minions`` ...) are ignored, but the
        whole payload must be plain data (no bytes, floats, NaN, deep nesting or huge strings).
        It is in the full form (``ipv4`` and ``ipv6``: the whole list) or the delta form
        (``base_digest``, ``added``, ``removed``: the change from the list of digest
        ``base_digest``); a payload with both is refused.

    force
        Accept a shrink larger than ``max_shrink``.

    tag
        Optional: the event tag. When given it must be ``kube-salt-bridge/cluster/<cluster>/nodes``
        naming the payload's cluster.

    A delta is applied only to exactly the list it was computed from: after the generation order
    (stale, already current, conflict, as for the full form), a minion that holds no list for the
    cluster, or one whose digest is not ``base_digest``, changes nothing and answers need full
    (retcode 0, ``applied`` false, ``need_full`` true, reason ``need_full: holds ..., the delta is
    from ...``) so that the bridge sends it the full list. Otherwise the held list minus
    ``removed`` plus ``added`` must have the digest ``digest`` (an entry removed that is not held,
    or added that already is, is refused); that list is then judged and applied exactly as a full
    list (bounds, empty and shrink policy against the held list) and cached whole. The check form
    (``base_digest`` equal to ``digest``, nothing added or removed) so answers already current
    when the minion holds that generation's list, and need full when it holds another list.

    Returns ``cluster, generation, digest, changed, applied, reason, backend, added, removed,
    need_full`` and sets the job's retcode: 0 applied / already current / stale / need full / not
    configured here, 1 refused (version 1 and other versions, unknown key id, signature, schema,
    address, address space, generation skew or conflict, a delta that does not apply to its base,
    empty, shrink), 2 failed (invalid pillar or public keys, the cluster's cache file corrupt, a
    firewall command). ``applied`` is true for applied, already current and not configured here
    (the minion is at this list), false for stale, need full, refused and failed; ``need_full`` is
    true only for need full. A cluster that no ``kube_allowlist:rules`` entry references is
    verified, then left alone with reason "not configured here" (applied true, changed false,
    retcode 0).

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.apply payload='{"version": 2, "cluster": "prod", ...}'
        salt-call kube_allowlist.apply payload='{"version": 2, "base_digest": "sha256:...", ...}'
    """
    ret = _result(None)
    try:
        config = _config()
        ret["backend"] = config["backend"]
        payload = _parsed(config, payload)
        ret.update(_result(payload), backend=config["backend"])
        view = _verified(config, payload, tag)
    except _Refused as err:
        return _finish(ret, REFUSED, str(err))
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))
    cluster = view["cluster"]
    if not pillarcfg.rules_for(config, cluster):
        return _not_configured(ret, cluster)
    incoming = {
        "cluster": cluster,
        "generation": view["generation"],
        "digest": view["digest"],
        "nodes": view["nodes"],
        "issued_at": view["issued_at"],
        "key_id": view["key_id"],
        "source": "bridge",
    }
    delta = view if contract.is_delta(view) else None
    if delta is None:
        incoming.update(ipv4=view["ipv4"], ipv6=view["ipv6"])
    try:
        return _accept(config, incoming, ret, force is True, delta)
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))


def _pull_lists(config, settings):
    conf = kube.load_kubeconfig(settings["kubeconfig"], settings.get("context"))
    items = kube.list_nodes(conf, settings["timeout"])
    lists, nodes = kube.node_addresses(items, settings["address_types"], settings["families"])
    for family in ("ipv4", "ipv6"):
        contract.parse_entry_list(lists[family], family, config["max_prefix"], config["max_entries"])
        contract.check_address_space(lists[family], family, config["max_address_space"][family])
    return lists, nodes


def pull(cluster, force=False):
    """
    Read the cluster's node addresses straight from its API (the pull formula's mode) and apply them.

    Uses the kubeconfig at pillar ``kube_allowlist:clusters:<cluster>:kubeconfig`` (optional
    ``context``), address types and families from the same pillar key. The list keeps the last
    bridge generation and passes the same bounds as a payload (``max_prefix``, ``max_entries``,
    ``max_address_space``). When the API cannot be read the firewall is re-converged from the cache
    and the job fails (retcode 2) saying so; an invalid pillar also fails with retcode 2. Returns
    the same dict as :py:func:`apply`.

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.pull prod
    """
    ret = _result(None)
    ret["cluster"] = cluster if isinstance(cluster, str) else None
    try:
        config = _config()
        ret["backend"] = config["backend"]
        settings = config["clusters"].get(cluster, {})
        if "kubeconfig" not in settings:
            raise CommandExecutionError(f"invalid pillar: kube_allowlist:clusters:{cluster}:kubeconfig is not set")
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))
    if not pillarcfg.rules_for(config, cluster):
        return _not_configured(ret, cluster)
    try:
        try:
            lists, nodes = _pull_lists(config, settings)
        except (RuntimeError, ValueError, OSError) as err:
            with _locked(config["cache_dir"]):
                caches, corrupt = _read_caches(config)
                _converge(config, _with_fallback(config, caches, corrupt)[0])
            kept = caches.get(cluster, {}).get("generation", "none")
            return _finish(ret, FAILED, f"cluster API not usable ({err}); firewall kept from cache (generation {kept})")
        caches, corrupt = _read_caches(config)
        if cluster in corrupt:
            return _finish(ret, FAILED, corrupt[cluster])
        cached = caches.get(cluster) or {}
        incoming = {
            "cluster": cluster,
            "generation": cached.get("generation", 0),
            "digest": contract.digest(lists["ipv4"], lists["ipv6"]),
            "ipv4": lists["ipv4"],
            "ipv6": lists["ipv6"],
            "nodes": nodes,
            "issued_at": _now(),
            "source": "pull",
        }
        ret.update(generation=incoming["generation"], digest=incoming["digest"])
        return _accept(config, incoming, ret, force is True)
    except CommandExecutionError as err:
        return _finish(ret, FAILED, str(err))


# --- show / restore / forget / flush --------------------------------------------------------


def _key_report(config):
    """``{pillar path: [key ids] or error}`` for the global list and every per-cluster list."""
    report, lists = {}, {"kube_allowlist:public_keys": config["public_keys"]}
    for name, settings in sorted(config["clusters"].items()):
        if "public_keys" in settings:
            lists[f"kube_allowlist:clusters:{name}:public_keys"] = settings["public_keys"]
    for where, texts in lists.items():
        try:
            report[where] = sorted(contract.key_ring(texts, where))
        except ValueError as err:
            report[where] = f"error: {err}"
    return report


def show():
    """
    Show the cached list per cluster, the state of each rule, the public key ids and warnings.

    Per cluster: generation, digest, source (bridge|pull), entry counts, nodes, issued_at,
    applied_at, backend, key_id. Per rule: clusters, proto, ports, families, others, and whether it
    is enforced or waiting for a cluster's first list. ``corrupt`` names the clusters whose cache
    file is unreadable or corrupt (their rules keep the list last enforced, when known);
    ``public_keys`` the key ids per pillar list; ``warnings`` ignored pillar keys (the version 1
    ``signing_key``), invalid public keys, a corrupt enforced-state file. Retcode 2 with ``error``
    when the pillar is invalid.

    CLI Example:

    .. code-block:: bash

        salt '*' kube_allowlist.show
    """
    try:
        config = _config()
    except CommandExecutionError as err:
        return _failed({}, str(err))
    caches, corrupt = _read_caches(config)
    enforced, kept = _with_fallback(config, caches, corrupt)
    desired = firewall.desired_state(config, enforced)
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
            "key_id": e.get("key_id"),
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
    keys = _key_report(config)
    warnings = [
        f"{path} is ignored: contract version 2 verifies with public_keys (Ed25519)" for path in config["ignored"]
    ]
    warnings += [f"{where}: {report}" for where, report in keys.items() if isinstance(report, str)]
    unverifiable = sorted(
        {
            c
            for r in config["rules"]
            for c in r["clusters"]
            if not keys.get(f"kube_allowlist:clusters:{c}:public_keys", keys["kube_allowlist:public_keys"])
        }
    )
    if unverifiable:
        warnings.append(
            f"no public key to verify payloads of {', '.join(unverifiable)}: set kube_allowlist:public_keys"
        )
    warnings += [f"{reason}; {kept[c]}" for c, reason in corrupt.items()]
    try:
        _read_state(config["cache_dir"], config["max_entries"])
    except ValueError as err:
        warnings.append(_clip(f"enforced state: {err}"))
    for warning in warnings:
        log.warning("kube_allowlist: %s", _clip(warning))
    return _succeeded(
        {
            "backend": config["backend"],
            "cache_dir": config["cache_dir"],
            "clusters": clusters,
            "corrupt": corrupt,
            "rules": rules,
            "public_keys": keys,
            "warnings": warnings,
        }
    )


def _restore_persisted(directory, test):
    ret = {
        "changed": False,
        "source": "persisted",
        "cache_dir": directory,
        "backend": None,
        "steps": [],
        "generations": {},
        "pending": {},
        "test": test,
    }
    if not os.path.isdir(directory):
        ret["comment"] = f"nothing persisted: {directory} does not exist"
        return _succeeded(ret)
    with _locked(directory, create=not test):
        try:
            state = _read_state(directory)
        except ValueError as err:
            return _failed(ret, f"cannot restore from disk: {err}")
        if state is None:
            caches = [n for n in os.listdir(directory) if n.endswith(CACHE_SUFFIX) and n != STATE_FILE]
            if caches:
                return _failed(
                    ret,
                    f"cannot restore from disk: {directory}/{STATE_FILE} is missing (cached lists "
                    f"{', '.join(sorted(caches))} but no persisted rules); run kube_allowlist.restore "
                    "with the pillar once",
                )
            ret["comment"] = f"nothing persisted in {directory}"
            return _succeeded(ret)
        config, caches = state["config"], state["caches"]
        desired, steps = _converge(config, caches, persist=False, dry_run=test)
    ret.update(
        changed=bool(steps),
        backend=config["backend"],
        steps=[s["desc"] for s in steps],
        generations={c: e["generation"] for c, e in caches.items()},
        pending=desired["pending"],
    )
    return _succeeded(ret)


def restore(persisted=False, cache_dir=None, test=False):
    """
    Re-apply the cached lists and the pillar rules to the backend (after a reboot, a pillar change
    or with the bridge down). Changes nothing when the firewall is already right.

    ``test=True`` changes nothing at all (only the read-only commands run: ``ipset save``,
    ``iptables-save``, ``nft list``): ``steps`` are what a real run would execute now and
    ``changed`` says whether there are any; the return code is the one the real run would get
    before its first command.

    Without pillar ``kube_allowlist`` (``salt-call --local`` at boot: no master, no pillar), or with
    ``persisted=True``, the firewall is rebuilt from ``<cache_dir>/_enforced.json`` alone: exactly
    the backend, rules and lists last enforced. ``cache_dir`` overrides the directory (default: the
    pillar's ``cache_dir``, else ``<minion cachedir>/kube_allowlist``). Nothing persisted (a minion
    that never applied a list) is a success that changes nothing; a missing state next to cached
    lists, a corrupt state file or a failed command is retcode 2 with ``error``.

    A cluster whose cache file is corrupt keeps the list last enforced (``corrupt`` in the return);
    the other clusters are restored as usual.

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.restore
        salt-call kube_allowlist.restore test=True
        salt-call --local --retcode-passthrough kube_allowlist.restore persisted=True
    """
    test = test is True
    ret = {"changed": False, "source": "pillar", "backend": None, "steps": [], "test": test}
    if cache_dir is not None and (not isinstance(cache_dir, str) or not cache_dir.startswith("/")):
        return _failed(ret, f"cache_dir: expected an absolute path, got {str(cache_dir)[:200]!r}")
    try:
        if persisted is True or not __pillar__.get("kube_allowlist"):
            if cache_dir is None:
                pillar = __pillar__.get("kube_allowlist")
                configured = pillar.get("cache_dir") if isinstance(pillar, dict) else None
                if isinstance(configured, str) and configured.startswith("/"):
                    cache_dir = configured
            return _restore_persisted(cache_dir or _default_cache_dir(), test)
        config = _config()
        if cache_dir is not None:
            config["cache_dir"] = cache_dir
        ret["backend"] = config["backend"]
        with _locked(config["cache_dir"], create=not test):
            caches, corrupt = _read_caches(config)
            enforced, kept = _with_fallback(config, caches, corrupt)
            desired, steps = _converge(config, enforced, dry_run=test)
    except CommandExecutionError as err:
        return _failed(ret, str(err))
    ret.update(
        changed=bool(steps),
        steps=[s["desc"] for s in steps],
        generations={c: e["generation"] for c, e in enforced.items()},
        pending=desired["pending"],
        corrupt={c: f"{reason}; {kept[c]}" for c, reason in corrupt.items()},
    )
    return _succeeded(ret)


def _forget_generation(config, caches, entry, ret):
    """Cache ``entry`` again with generation 0 (the old one kept as ``forgotten_generation``) and
    return the old generation."""
    generation = entry["generation"]
    ret["forgotten_generation"] = generation
    caches[entry["cluster"]] = dict(entry, generation=0, forgotten_generation=generation)
    _write_cache(config, caches[entry["cluster"]])
    return generation


def forget(cluster):
    """
    Forget the generation cached for ``cluster``, keeping its list and the firewall as they are: the
    next payload of any generation is accepted (still subject to the shrink and empty policy).

    The recovery after a bridge whose clock ran ahead published a too-new generation
    (docs/event-contract.md, "Generations and clocks"). When the cluster's cache file is corrupt,
    it is rebuilt from the list last enforced (with generation 0), or moved aside to
    ``<cluster>.json.corrupt`` when none is known. Returns ``cluster, changed,
    forgotten_generation, reason``.

    CLI Example:

    .. code-block:: bash

        salt '<minions>' kube_allowlist.forget prod
    """
    ret = {"cluster": None, "changed": False, "forgotten_generation": None, "reason": ""}
    if not contract.is_cluster_name(cluster):
        ret["reason"] = _clip(f"cluster {str(cluster)[:80]!r} is not a DNS label")
        __context__["retcode"] = FAILED
        return ret
    ret["cluster"] = cluster
    try:
        config = _config()
        with _locked(config["cache_dir"]):
            caches, corrupt = _read_caches(config)
            if cluster in corrupt:
                enforced, _ = _with_fallback(config, caches, {cluster: corrupt[cluster]})
                if cluster in enforced:
                    generation = _forget_generation(config, caches, enforced[cluster], ret)
                    reason = (
                        f"rebuilt the corrupt cache from the list last enforced (generation {generation} forgotten)"
                    )
                else:
                    path = _cache_path(config["cache_dir"], cluster)
                    os.replace(path, path + ".corrupt")
                    reason = f"moved the corrupt cache aside to {path}.corrupt; no list last enforced was known"
                del corrupt[cluster]
            elif cluster in caches and caches[cluster]["generation"] != 0:
                generation = _forget_generation(config, caches, caches[cluster], ret)
                reason = f"forgot generation {generation}; the list and rules stay in place"
            else:
                reason = "nothing to forget" if cluster not in caches else "generation already forgotten"
                return _finish(ret, OK, reason)
            ret["changed"] = True
            enforced, _ = _with_fallback(config, caches, corrupt)
            _converge(config, enforced)
    except (CommandExecutionError, OSError) as err:
        return _finish(ret, FAILED, str(err))
    return _finish(ret, OK, reason)


def flush(cluster=None, test=False):
    """
    Remove what this module owns: for one cluster its cached list and sets (rules that reference it
    stop being enforced), or without ``cluster`` everything (chains, jumps, sets, table, cache files
    and the persisted enforced state). Corrupt cache files are removed too.

    ``test=True`` removes nothing: ``caches_removed`` and ``steps`` are what a real run would
    remove and execute now, ``changed`` whether there is anything.

    CLI Example:

    .. code-block:: bash

        salt-call kube_allowlist.flush
        salt-call kube_allowlist.flush cluster=prod
        salt-call kube_allowlist.flush test=True
    """
    test = test is True
    ret = {"changed": False, "caches_removed": [], "steps": [], "test": test}
    if cluster is not None and not contract.is_cluster_name(cluster):
        return _failed(ret, f"cluster {str(cluster)[:80]!r} is not a DNS label")
    try:
        config = _config()
        with _locked(config["cache_dir"], create=not test):
            caches, corrupt = _read_caches(config)
            for name in [cluster] if cluster else sorted(set(caches) | set(corrupt)):
                if name in caches or name in corrupt:
                    if not test:
                        os.unlink(_cache_path(config["cache_dir"], name))
                    ret["caches_removed"].append(name)
                    caches.pop(name, None)
                    corrupt.pop(name, None)
            enforced, _ = _with_fallback(config, caches, corrupt)
            _, steps = _converge(config, enforced, persist=cluster is not None, dry_run=test)
            if cluster is None and not test:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(config["cache_dir"], STATE_FILE))
    except (CommandExecutionError, OSError) as err:
        return _failed(ret, str(err))
    ret.update(changed=bool(steps or ret["caches_removed"]), steps=[s["desc"] for s in steps])
    return _succeeded(ret)
