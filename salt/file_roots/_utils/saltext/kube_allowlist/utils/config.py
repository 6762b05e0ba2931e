"""
Pure validation of the ``kube_allowlist`` pillar into one plain dict (see salt/pillar.example).

Every error raises ``ConfigError`` naming the pillar path, e.g.
``kube_allowlist:rules[0]:ports[1]: 70000 is not a port``.
"""

import re

from saltext.kube_allowlist.utils.payload import CLUSTER_RE, FAMILIES

BACKENDS = ("ipset", "nftables", "iptables")
OTHERS = ("drop", "reject", "none")
PROTOS = ("tcp", "udp")
ADDRESS_TYPES = ("InternalIP", "ExternalIP")
RULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
PORT_RANGE_RE = re.compile(r"^(\d{1,5}):(\d{1,5})$")
ROOT = "kube_allowlist"
DEFAULTS = {
    "backend": "ipset",
    "max_prefix": {"ipv4": 16, "ipv6": 48},
    "max_address_space": {"ipv4": 24, "ipv6": 88},
    "max_entries": 20000,
    "max_shrink": 0.5,
    "allow_empty": False,
    "max_generation_skew": 300,
    "public_keys": [],
}
MAX_SKEW = 366 * 86400


class ConfigError(ValueError):
    """The pillar is not a valid kube_allowlist configuration."""


def _mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _choice(value, choices, where):
    if value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _fraction(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{where}: expected a number between 0 and 1, got {value!r}")
    return float(value)


def _list(value, where):
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _int(value, low, high, where):
    if type(value) is not int or not low <= value <= high:
        raise ConfigError(f"{where}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _per_family(raw, key, low):
    out = dict(DEFAULTS[key])
    for family, value in _mapping(raw.get(key), f"{ROOT}:{key}").items():
        _choice(family, FAMILIES, f"{ROOT}:{key}")
        out[family] = _int(value, low, 32 if family == "ipv4" else 128, f"{ROOT}:{key}:{family}")
    return out


def _names(value, pattern, where):
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: expected a name or a non-empty list of names")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise ConfigError(f"{where}[{index}]: {item!r} is not a DNS label")
    return list(dict.fromkeys(items))


def _families(value, where):
    if value is None:
        return list(FAMILIES)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of ipv4/ipv6")
    return [f for f in FAMILIES if f in [_choice(v, FAMILIES, f"{where}[]") for v in value]]


def parse_ports(value, where):
    """Return ports as canonical strings: ``"5432"`` or ``"8000:8100"`` (low < high)."""
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of ports or 'low:high' ranges")
    ports = []
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if type(item) is int:
            ports.append(str(_int(item, 1, 65535, here)))
            continue
        match = PORT_RANGE_RE.fullmatch(item) if isinstance(item, str) else None
        if not match:
            raise ConfigError(f"{here}: {item!r} is not a port (1-65535) or range 'low:high'")
        low, high = (_int(int(g), 1, 65535, here) for g in match.groups())
        if low >= high:
            raise ConfigError(f"{here}: range {item!r} must have low < high")
        ports.append(f"{low}:{high}")
    return list(dict.fromkeys(ports))


def _rule(raw, index, parse_entry, max_prefix):
    where = f"{ROOT}:rules[{index}]"
    raw = _mapping(raw, where)
    name = raw.get("name")
    if not isinstance(name, str) or not RULE_NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}:name: {name!r} must match {RULE_NAME_RE.pattern}")
    unknown = set(raw) - {"name", "clusters", "proto", "ports", "others", "extra_sources", "families"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    families = _families(raw.get("families"), f"{where}:families")
    extra = {f: [] for f in FAMILIES}
    for pos, entry in enumerate(raw.get("extra_sources") or []):
        checked = parse_entry(entry, None, max_prefix, f"{where}:extra_sources[{pos}]")
        family = "ipv6" if ":" in checked else "ipv4"
        if checked not in extra[family]:
            extra[family].append(checked)
    return {
        "name": name,
        "clusters": _names(raw.get("clusters"), CLUSTER_RE, f"{where}:clusters"),
        "proto": _choice(raw.get("proto", "tcp"), PROTOS, f"{where}:proto"),
        "ports": parse_ports(raw.get("ports"), f"{where}:ports"),
        "others": _choice(raw.get("others", "drop"), OTHERS, f"{where}:others"),
        "families": families,
        "extra_sources": {f: sorted(v) for f, v in extra.items()},
    }


def _cluster(name, raw, where):
    raw = _mapping(raw, where)
    out = {"name": name}
    if "kubeconfig" in raw:
        if not isinstance(raw["kubeconfig"], str):
            raise ConfigError(f"{where}:kubeconfig: expected a file path")
        out["kubeconfig"] = raw["kubeconfig"]
    if "context" in raw:
        out["context"] = str(raw["context"])
    types = raw.get("address_types", ["InternalIP"])
    if not isinstance(types, list) or not types:
        raise ConfigError(f"{where}:address_types: expected a list such as [InternalIP]")
    out["address_types"] = [_choice(t, ADDRESS_TYPES, f"{where}:address_types[]") for t in types]
    out["families"] = _families(raw.get("families"), f"{where}:families")
    out["timeout"] = _int(raw.get("timeout", 10), 1, 300, f"{where}:timeout")
    if "allow_empty" in raw:
        out["allow_empty"] = _bool(raw["allow_empty"], f"{where}:allow_empty")
    if "max_shrink" in raw:
        out["max_shrink"] = _fraction(raw["max_shrink"], f"{where}:max_shrink")
    if "public_keys" in raw:
        out["public_keys"] = raw["public_keys"]
    if "signing_key" in raw:
        out["ignored"] = [f"{where}:signing_key"]
    return out


def load(pillar, parse_entry, default_cache_dir):
    """
    Validate ``pillar`` (the value of pillar key ``kube_allowlist``) and return the config dict.

    ``parse_entry`` is ``kube_allowlist_payload.parse_entry`` (static sources are validated exactly
    like payload entries); ``default_cache_dir`` is used when ``cache_dir`` is not set.
    """
    raw = _mapping(pillar, ROOT)
    max_prefix = _per_family(raw, "max_prefix", 1)
    max_space = _per_family(raw, "max_address_space", 0)
    clusters = {}
    for name, value in _mapping(raw.get("clusters"), f"{ROOT}:clusters").items():
        if not isinstance(name, str) or not CLUSTER_RE.fullmatch(name):
            raise ConfigError(f"{ROOT}:clusters: {name!r} is not a DNS label")
        clusters[name] = _cluster(name, value, f"{ROOT}:clusters:{name}")
    rules_raw = raw.get("rules") or []
    if not isinstance(rules_raw, list):
        raise ConfigError(f"{ROOT}:rules: expected a list of rules")
    rules = [_rule(r, i, parse_entry, max_prefix) for i, r in enumerate(rules_raw)]
    names = [r["name"] for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{ROOT}:rules: rule names must be unique, got {names}")
    cache_dir = raw.get("cache_dir", default_cache_dir)
    if not isinstance(cache_dir, str) or not cache_dir.startswith("/"):
        raise ConfigError(f"{ROOT}:cache_dir: expected an absolute path, got {cache_dir!r}")
    ignored = [f"{ROOT}:signing_key"] if "signing_key" in raw else []
    ignored += [path for c in clusters.values() for path in c.pop("ignored", [])]
    return {
        "backend": _choice(raw.get("backend", DEFAULTS["backend"]), BACKENDS, f"{ROOT}:backend"),
        "public_keys": raw.get("public_keys", DEFAULTS["public_keys"]),
        "ignored": ignored,
        "cache_dir": cache_dir,
        "max_prefix": max_prefix,
        "max_address_space": max_space,
        "max_generation_skew": _int(
            raw.get("max_generation_skew", DEFAULTS["max_generation_skew"]),
            0,
            MAX_SKEW,
            f"{ROOT}:max_generation_skew",
        ),
        "max_entries": _int(raw.get("max_entries", DEFAULTS["max_entries"]), 1, 1000000, f"{ROOT}:max_entries"),
        "max_shrink": _fraction(raw.get("max_shrink", DEFAULTS["max_shrink"]), f"{ROOT}:max_shrink"),
        "allow_empty": _bool(raw.get("allow_empty", DEFAULTS["allow_empty"]), f"{ROOT}:allow_empty"),
        "clusters": clusters,
        "rules": rules,
    }


def cluster_setting(config, cluster, key):
    """Return a per-cluster override (``clusters:<name>:<key>``) or the global value."""
    return config["clusters"].get(cluster, {}).get(key, config[key])


def public_keys(config, cluster):
    """
    Return ``(pillar path, key texts)`` of the public keys that verify ``cluster``'s payloads:
    ``clusters:<cluster>:public_keys`` when set (it replaces the global list), else
    ``public_keys``. Raise ``ConfigError`` when the list is missing, empty or not a list of strings.
    """
    settings = config["clusters"].get(cluster, {})
    if "public_keys" in settings:
        where, keys = f"{ROOT}:clusters:{cluster}:public_keys", settings["public_keys"]
    else:
        where, keys = f"{ROOT}:public_keys", config["public_keys"]
    if not isinstance(keys, list):
        raise ConfigError(f"{where}: expected a list of public keys, got {type(keys).__name__}")
    if not keys:
        raise ConfigError(
            f"{where} is empty: put the bridge's public key (kube-salt-bridge keygen prints it) in this minion's pillar"
        )
    return where, keys


def rules_from_disk(rules, parse_entry):
    """
    Re-validate rules in the normalised form ``load`` returns (as persisted next to the caches) and
    return them; raise ``ConfigError`` naming ``rules[i]`` when one is not.
    """
    if not isinstance(rules, list):
        raise ConfigError("rules: expected a list")
    out = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) != {
            "name",
            "clusters",
            "proto",
            "ports",
            "others",
            "families",
            "extra_sources",
        }:
            raise ConfigError(f"rules[{index}]: not a normalised rule")
        extra = _mapping(rule["extra_sources"], f"rules[{index}]:extra_sources")
        if set(extra) != set(FAMILIES):
            raise ConfigError(f"rules[{index}]:extra_sources: expected ipv4 and ipv6 lists")
        ports = [
            int(p) if isinstance(p, str) and p.isdigit() else p for p in _list(rule["ports"], f"rules[{index}]:ports")
        ]
        sources = [e for f in FAMILIES for e in _list(extra[f], f"rules[{index}]:extra_sources:{f}")]
        raw = dict(rule, ports=ports, extra_sources=sources)
        parsed = _rule(raw, index, parse_entry, {"ipv4": 0, "ipv6": 0})
        if parsed != rule:
            raise ConfigError(f"rules[{index}]: not in normalised form")
        out.append(parsed)
    if len({r["name"] for r in out}) != len(out):
        raise ConfigError("rules: rule names must be unique")
    return out


def rules_for(config, cluster):
    """Return the rules that reference ``cluster``."""
    return [r for r in config["rules"] if cluster in r["clusters"]]


def families_for(config, cluster):
    """Return the families any rule referencing ``cluster`` uses."""
    used = {f for r in rules_for(config, cluster) for f in r["families"]}
    return [f for f in FAMILIES if f in used]
