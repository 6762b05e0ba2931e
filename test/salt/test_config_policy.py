"""Decision tables for the pillar validation and for the generation/safety policy."""

import ipaddress
import json
import pathlib

import pytest

SHRINK_VECTORS = pathlib.Path(__file__).resolve().parents[1] / "vectors" / "shrink-v1.json"


def load(utils, **pillar):
    base = {"rules": [{"name": "pg", "clusters": "prod", "ports": [5432]}]}
    base.update(pillar)
    return utils["config"].load(base, utils["payload"].parse_entry, "/var/cache/salt/minion/kube_allowlist")


def test_defaults(utils):
    config = load(utils)
    assert config["backend"] == "ipset" and config["max_shrink"] == 0.5 and config["allow_empty"] is False
    assert config["max_prefix"] == {"ipv4": 16, "ipv6": 48}
    assert config["rules"][0] == {
        "name": "pg",
        "clusters": ["prod"],
        "proto": "tcp",
        "ports": ["5432"],
        "others": "drop",
        "families": ["ipv4", "ipv6"],
        "extra_sources": {"ipv4": [], "ipv6": []},
    }


BAD = [
    ({"backend": "pf"}, "kube_allowlist:backend: 'pf' is not one of"),
    ({"max_shrink": 2}, "max_shrink: expected a number between 0 and 1"),
    ({"allow_empty": "yes"}, "allow_empty: expected true or false"),
    ({"max_prefix": {"ipv4": 0}}, "max_prefix:ipv4"),
    ({"cache_dir": "relative"}, "cache_dir: expected an absolute path"),
    ({"clusters": {"Prod": {}}}, "is not a DNS label"),
    ({"rules": [{"name": "pg", "clusters": "prod", "ports": ["5432;id"]}]}, "rules[0]:ports[0]"),
    ({"rules": [{"name": "pg", "clusters": "prod", "ports": ["9:3"]}]}, "low < high"),
    ({"rules": [{"name": "pg", "clusters": "prod", "ports": [1], "others": "log"}]}, "others"),
    (
        {"rules": [{"name": "pg", "clusters": "prod", "ports": [1], "extra_sources": ["0.0.0.0/0"]}]},
        "extra_sources[0]: '0.0.0.0/0' is wider than /16",
    ),
    ({"rules": [{"name": "pg", "clusters": "prod", "ports": [1], "proto": "icmp"}]}, "proto"),
    ({"rules": [{"name": "p g", "clusters": "prod", "ports": [1]}]}, "rules[0]:name"),
    ({"rules": [{"name": "pg", "clusters": "prod", "ports": [1], "port": 2}]}, "unknown keys port"),
    ({"rules": [{"name": "pg", "clusters": "prod", "ports": [1]}] * 2}, "must be unique"),
]


@pytest.mark.parametrize("pillar,message", BAD, ids=[m for _, m in BAD])
def test_invalid_pillar_names_the_path(utils, pillar, message):
    with pytest.raises(ValueError) as err:
        load(utils, **pillar)
    assert message in str(err.value)


def entry(generation, v4, source="bridge", digest=None):
    return {
        "generation": generation,
        "digest": digest or f"d{generation}-{len(v4)}",
        "ipv4": v4,
        "ipv6": [],
        "source": source,
    }


FOUR = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
POLICY = [
    ("first list", None, entry(1, FOUR), {}, "apply", 0),
    ("newer", entry(1, FOUR), entry(2, FOUR[:3]), {}, "apply", 0),
    ("duplicate", entry(2, FOUR), entry(2, FOUR), {}, "current", 0),
    ("conflict", entry(2, FOUR), entry(2, FOUR[:3]), {}, "conflict", 1),
    ("stale", entry(3, FOUR), entry(2, FOUR), {}, "stale", 0),
    ("empty first", None, entry(1, []), {}, "empty", 1),
    ("empty allowed", entry(1, FOUR), entry(2, []), {"allow_empty": True, "max_shrink": 1.0}, "apply", 0),
    ("shrink 75%", entry(1, FOUR), entry(2, FOUR[:1]), {}, "shrink", 1),
    ("shrink 50% ok", entry(1, FOUR), entry(2, FOUR[:2]), {}, "apply", 0),
    ("shrink forced", entry(1, FOUR), entry(2, FOUR[:1]), {"force": True}, "apply", 0),
    ("pull keeps gen", entry(4, FOUR), entry(4, FOUR[:3], "pull"), {}, "apply", 0),
    ("bridge after pull", entry(4, FOUR, "pull"), entry(4, FOUR[:3]), {}, "apply", 0),
    ("stale after pull", entry(4, FOUR, "pull"), entry(3, FOUR), {}, "stale", 0),
]


@pytest.mark.parametrize("cached,incoming,opts,verdict,retcode", [c[1:] for c in POLICY], ids=[c[0] for c in POLICY])
def test_policy_decisions(utils, cached, incoming, opts, verdict, retcode):
    args = {"families": ["ipv4"], "allow_empty": False, "max_shrink": 0.5, **opts}
    decision = utils["policy"].decide(cached, incoming, **args)
    assert (decision["verdict"], decision["retcode"]) == (verdict, retcode), decision["reason"]


def test_policy_counts_only_families_in_use(utils):
    cached = {"generation": 1, "digest": "a", "ipv4": FOUR, "ipv6": ["fd00::1"], "source": "bridge"}
    incoming = {"generation": 2, "digest": "b", "ipv4": [], "ipv6": ["fd00::1"], "source": "bridge"}
    assert utils["policy"].decide(cached, incoming, ["ipv4"], False, 1.0)["verdict"] == "empty"
    assert utils["policy"].decide(cached, incoming, ["ipv6"], False, 0.5)["verdict"] == "apply"


def test_policy_replacing_entries_is_no_shrink(utils):
    new = ["10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4"]
    assert utils["policy"].decide(entry(1, FOUR), entry(2, new), ["ipv4"], False, 0.0)["verdict"] == "apply"
    decision = utils["policy"].decide(entry(1, FOUR), entry(2, new[:1]), ["ipv4"], False, 0.5)
    assert decision["verdict"] == "shrink"
    assert decision["reason"].startswith("refused: 4 of 4 entries would be removed and 1 added, 3 fewer (75.0%)")


def test_policy_same_list_is_accepted_even_when_empty(utils):
    assert utils["policy"].decide(entry(1, []), entry(2, []), ["ipv4"], False, 0.5)["verdict"] == "apply"


def _expand(items):
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        else:
            first = ipaddress.IPv4Address(item["range"])
            out.extend(str(first + i) for i in range(item["count"]))
    return sorted(out)


def _lists(spec):
    return {"ipv4": _expand(spec["ipv4"]), "ipv6": _expand(spec["ipv6"])}


SHRINK = json.loads(SHRINK_VECTORS.read_text(encoding="utf-8"))


def test_shrink_vectors_file():
    assert SHRINK["version"] == 1 and len(SHRINK["cases"]) >= 20
    assert any(len(c["steps"]) > 1 for c in SHRINK["cases"])


@pytest.mark.parametrize("case", SHRINK["cases"], ids=[c["name"] for c in SHRINK["cases"]])
def test_shrink_vectors(utils, case):
    """The minion reproduces the bridge's shrink decision table, step by step against what it holds."""
    policy = utils["policy"]
    opts = {"families": ["ipv4", "ipv6"], "allow_empty": case["allowEmpty"], "max_shrink": case["maxShrinkFraction"]}
    held = None if case["held"] is None else dict(_lists(case["held"]), generation=1, digest="held", source="bridge")
    for n, step in enumerate(case["steps"], start=1):
        given = dict(_lists(step["given"]), generation=n + 1, digest=f"step-{n}", source="bridge")
        judged = policy.judge_list(held, given, **opts)
        want = (step["verdict"], step["reasons"], step["lost"])
        assert (judged["verdict"], judged["reasons"], judged["lost"]) == want, n
        decision = policy.decide(held, given, **opts)
        expected = "apply" if step["verdict"] == "accept" else step["reasons"][0]
        want = (expected, 0 if expected == "apply" else 1)
        assert (decision["verdict"], decision["retcode"]) == want, decision["reason"]
        if decision["verdict"] == "apply":
            held = given
