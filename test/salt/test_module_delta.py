"""Execution module flows for the delta form (docs/event-contract.md, "Delta form") on a fake kernel:
a delta applies only to exactly the list it was computed from, need full otherwise; the generation
order first; a delta that does not apply to its base is refused; its result is judged as a full list;
nothing changes on any refusal."""

import json
import logging
import os
import pathlib

import pytest

import ksb_sign
from conftest import KEY

VECTORS = json.loads((pathlib.Path(__file__).resolve().parents[1] / "vectors" / "payloads-v2.json").read_text())
V4 = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
V6 = ["fd00::2"]
BASE = (V4, V6)


def full(generation, v4=V4, v6=V6, **extra):
    return ksb_sign.build("prod", generation, v4, v6, key=KEY, **extra)


def delta(generation, result, base=BASE, **extra):
    return ksb_sign.build_delta("prod", generation, base, result, key=KEY, **extra)


def forged_delta(generation, base_digest, added, removed, result_digest):
    """A delta signed with our key whose parts need not agree (what a bridge bug could publish)."""
    return ksb_sign.resign(
        {
            "version": 2,
            "cluster": "prod",
            "generation": generation,
            "digest": result_digest,
            "base_digest": base_digest,
            "added": added,
            "removed": removed,
            "nodes": 4,
            "issued_at": "2026-11-22T10:00:00.000Z",
        },
        KEY,
    )


def cache_dir(mod):
    return mod.__pillar__["kube_allowlist"]["cache_dir"]


def retcode(mod):
    return mod.__context__["retcode"]


def cached(mod):
    with open(os.path.join(cache_dir(mod), "prod.json"), encoding="utf-8") as handle:
        return json.load(handle)


def state(mod, kernel):
    """Everything an apply may change: the kernel's objects and the files of the cache directory."""
    files = {}
    for name in sorted(os.listdir(cache_dir(mod))):
        with open(os.path.join(cache_dir(mod), name), "rb") as handle:
            files[name] = handle.read()
    return json.dumps([kernel.sets, kernel.chains, kernel.jumps, kernel.nft], sort_keys=True), files


def holding(make_module, kernel, generation=5, **pillar):
    """A module that applied the full list ``BASE`` at ``generation``; the kernel's log cleared."""
    mod = make_module(**pillar)
    ret = mod.apply(payload=full(generation))
    assert ret["applied"] and retcode(mod) == 0, ret
    kernel.mutations.clear()
    return mod


@pytest.mark.parametrize("backend", ["ipset", "nftables", "iptables"])
def test_a_delta_on_the_list_held_applies_its_result(make_module, kernel, backend):
    mod = holding(make_module, kernel, backend=backend)
    result = (["10.0.0.10", "10.0.0.3", "10.0.0.4", "10.0.0.5"], ["fd00::2", "fd00::a"])
    ret = mod.apply(payload=delta(6, result))
    assert (ret["applied"], ret["changed"], ret["need_full"], retcode(mod)) == (True, True, False, 0), ret
    assert ret["reason"] == "applied generation 6" and ret["digest"] == ksb_sign.digest(*result)
    assert (ret["added"], ret["removed"]) == (["10.0.0.10", "fd00::a"], ["10.0.0.2"])
    assert kernel.mutations, "the firewall really changed"
    if backend == "ipset":
        assert sorted(kernel.sets["ksb-prod-4"][1]) == sorted(result[0])
        assert sorted(kernel.sets["ksb-prod-6"][1]) == result[1]
    elif backend == "nftables":
        assert "10.0.0.10" in kernel.nft and "fd00::a" in kernel.nft and "10.0.0.2," not in kernel.nft
    else:
        rules = "\n".join(kernel.chains["ipv4"] + kernel.chains["ipv6"])
        assert "-s 10.0.0.10/32" in rules and "-s fd00::a/128" in rules and "-s 10.0.0.2/32" not in rules
    entry = cached(mod)
    assert (entry["generation"], entry["ipv4"], entry["ipv6"]) == (6, result[0], result[1]), "cached whole, sorted"
    assert entry["digest"] == ksb_sign.digest(*result) and entry["source"] == "bridge"
    assert "base_digest" not in entry and "added" not in entry
    kernel.mutations.clear()
    again = mod.apply(payload=delta(6, result))
    assert (again["applied"], again["changed"], again["reason"]) == (True, False, "already current at generation 6")
    assert mod.restore()["changed"] is False and kernel.mutations == [], "converged: the rules are the full result"


def test_deltas_chain_and_a_replayed_one_is_stale(make_module, kernel):
    mod = holding(make_module, kernel)
    second = (V4 + ["10.0.0.6"], V6)
    third = (V4[1:] + ["10.0.0.6"], V6 + ["fd00::3"])
    assert mod.apply(payload=delta(6, second))["applied"]
    assert mod.apply(payload=json.dumps(delta(7, third, base=second)))["applied"], "JSON text too"
    assert set(kernel.sets["ksb-prod-4"][1]) == set(third[0]) and kernel.sets["ksb-prod-6"][1] == third[1]
    before = state(mod, kernel)
    kernel.mutations.clear()
    ret = mod.apply(payload=delta(6, second))
    assert (ret["applied"], ret["need_full"], retcode(mod)) == (False, False, 0) and ret["reason"].startswith("stale")
    assert kernel.mutations == [] and state(mod, kernel) == before


def test_need_full_when_no_list_is_held(make_module, kernel):
    mod = make_module()
    payload = delta(6, (V4, V6 + ["fd00::3"]))
    ret = mod.apply(payload=payload)
    assert (ret["applied"], ret["changed"], ret["need_full"], retcode(mod)) == (False, False, True, 0), ret
    assert ret["reason"] == f"need_full: holds nothing, the delta is from {payload['base_digest']}"
    assert (ret["generation"], ret["digest"]) == (6, payload["digest"])
    assert kernel.mutations == [] and not os.path.exists(os.path.join(cache_dir(mod), "prod.json"))
    assert mod.apply(payload=full(6, V4, V6 + ["fd00::3"]))["applied"], "the full list then applies"


def test_need_full_when_the_list_held_is_another(make_module, kernel):
    mod = holding(make_module, kernel)
    held = cached(mod)["digest"]
    other = (V4[:3], V6)
    payload = delta(6, (V4[:3] + ["10.0.0.9"], V6), base=other)
    before = state(mod, kernel)
    ret = mod.apply(payload=payload)
    assert (ret["applied"], ret["changed"], ret["need_full"], retcode(mod)) == (False, False, True, 0), ret
    assert ret["reason"] == f"need_full: holds {held}, the delta is from {ksb_sign.digest(*other)}"
    assert kernel.mutations == [] and state(mod, kernel) == before
    assert cached(mod)["generation"] == 5


def test_generation_order_comes_before_need_full(make_module, kernel):
    mod = holding(make_module, kernel)
    held = cached(mod)["digest"]
    before = state(mod, kernel)
    elsewhere = (["10.9.0.1"], [])
    cases = [
        ("stale, from another base", delta(4, (["10.9.0.2"], []), base=elsewhere), 0, "stale: generation 4"),
        ("stale, from the held base", delta(4, (V4 + ["10.0.0.9"], V6)), 0, "stale: generation 4"),
        (
            "current, from another base",
            forged_delta(5, ksb_sign.digest(*elsewhere), ["10.0.0.2"], [], held),
            0,
            "already current at generation 5",
        ),
        (
            "conflict, from the held base",
            delta(5, (V4 + ["10.0.0.9"], V6)),
            1,
            "refused: generation 5 was already applied",
        ),
        (
            "conflict, from another base",
            delta(5, (["10.9.0.2"], []), base=elsewhere),
            1,
            "refused: generation 5 was already applied",
        ),
    ]
    for name, payload, code, reason in cases:
        ret = mod.apply(payload=payload)
        assert ret["reason"].startswith(reason) and retcode(mod) == code, (name, ret)
        assert ret["need_full"] is False and ret["changed"] is False, name
    assert kernel.mutations == [] and state(mod, kernel) == before


def test_the_check_form(make_module, kernel):
    mod = holding(make_module, kernel)
    held = cached(mod)["digest"]
    check = delta(5, BASE)
    assert check["base_digest"] == check["digest"] == held and check["added"] == check["removed"] == []
    ret = mod.apply(payload=check)
    assert (ret["applied"], ret["changed"], ret["need_full"], retcode(mod)) == (True, False, False, 0)
    assert ret["reason"] == "already current at generation 5"
    other = delta(6, (V4[:3], V6), base=(V4[:3], V6))
    ret = mod.apply(payload=other)
    assert (ret["applied"], ret["need_full"], retcode(mod)) == (False, True, 0)
    assert ret["reason"] == f"need_full: holds {held}, the delta is from {other['digest']}"
    assert kernel.mutations == [] and cached(mod)["generation"] == 5
    ret = mod.apply(payload=delta(6, BASE))
    assert (ret["applied"], ret["changed"], retcode(mod)) == (True, False, 0), "same list, newer generation"
    assert cached(mod)["generation"] == 6 and kernel.mutations == []


def test_a_delta_after_forget_applies_to_the_list_kept(make_module, kernel):
    mod = holding(make_module, kernel)
    assert mod.forget("prod")["forgotten_generation"] == 5
    ret = mod.apply(payload=delta(3, (V4 + ["10.0.0.7"], V6)))
    assert ret["applied"] and ret["added"] == ["10.0.0.7"] and cached(mod)["generation"] == 3


HELD = ksb_sign.digest(*BASE)
INCONSISTENT = [
    (
        "removed entry not held",
        forged_delta(6, HELD, [], ["10.0.0.9"], ksb_sign.digest(V4[1:], V6)),
        "refused: removed[0]: '10.0.0.9' is not in the list held",
    ),
    (
        "added entry already held",
        forged_delta(6, HELD, ["10.0.0.3"], ["10.0.0.2"], ksb_sign.digest(V4[1:], V6)),
        "refused: added[0]: '10.0.0.3' already is in the list held",
    ),
    (
        "result digest is another list's",
        forged_delta(6, HELD, ["10.0.0.7"], [], ksb_sign.digest(V4 + ["10.0.0.8"], V6)),
        "refused: digest: " + ksb_sign.digest(V4 + ["10.0.0.8"], V6) + " is not the digest of the list held",
    ),
    (
        "forms mixed",
        ksb_sign.resign(dict(delta(6, (V4 + ["10.0.0.7"], V6)), ipv4=V4 + ["10.0.0.7"], ipv6=V6), KEY),
        "refused: payload: base_digest (the delta form) together with ipv4, ipv6 (the full form)",
    ),
    (
        "truncation flag in a delta",
        delta(6, (V4 + ["10.0.0.7"], V6), added_truncated=False),
        "refused: payload: base_digest (the delta form) together with added_truncated",
    ),
    (
        "signature over another delta",
        dict(delta(6, (V4 + ["10.0.0.7"], V6)), signature=delta(6, (V4 + ["10.0.0.8"], V6))["signature"]),
        "refused: signature: does not verify",
    ),
    (
        "base_digest altered after signing",
        dict(delta(6, (V4 + ["10.0.0.7"], V6), base=(V4[:3], V6)), base_digest=HELD),
        "refused: signature: does not verify",
    ),
    (
        "an entry in both lists",
        forged_delta(6, HELD, ["10.0.0.7"], ["10.0.0.7"], HELD),
        "refused: added, removed: 1 entries in both",
    ),
    (
        "added entry wider than max_prefix",
        delta(6, (V4 + ["10.0.0.0/8"], V6)),
        "refused: added[0]: '10.0.0.0/8' is wider than /16",
    ),
    (
        "added unsorted",
        forged_delta(6, HELD, ["10.0.0.8", "10.0.0.7"], [], HELD),
        "refused: added: entries must be sorted",
    ),
    (
        "base_digest malformed",
        forged_delta(6, "sha256:" + "A" * 64, ["10.0.0.7"], [], HELD),
        "refused: base_digest: expected",
    ),
]


@pytest.mark.parametrize("payload,reason", [c[1:] for c in INCONSISTENT], ids=[c[0] for c in INCONSISTENT])
def test_a_delta_that_does_not_apply_is_refused_and_changes_nothing(make_module, kernel, caplog, payload, reason):
    mod = holding(make_module, kernel)
    before = state(mod, kernel)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        ret = mod.apply(payload=payload)
    assert ret["reason"].startswith(reason) and retcode(mod) == 1, ret
    logged = [r for r in caplog.records if r.name.endswith(".kube_allowlist_mod")]
    assert len(logged) == 1 and len(logged[0].getMessage()) < 700, "logged once, truncated"
    assert (ret["applied"], ret["changed"], ret["need_full"]) == (False, False, False)
    assert kernel.mutations == [] and state(mod, kernel) == before, "the last good rules stay"
    assert mod.apply(payload=delta(7, (V4 + ["10.0.0.7"], V6)))["applied"], "the next good delta still applies"


def test_the_shrink_and_empty_policy_judge_the_result(make_module, kernel):
    mod = holding(make_module, kernel)
    before = state(mod, kernel)
    shrunk = delta(6, (V4[:1], V6))  # 3 of 5 entries go: 60% > 50%
    ret = mod.apply(payload=shrunk)
    assert ret["reason"].startswith("refused: 3 of 5 entries would be removed") and retcode(mod) == 1, ret
    empty = delta(6, ([], []))
    ret = mod.apply(payload=empty, force=True)
    assert ret["reason"].startswith("refused: empty allow-list") and retcode(mod) == 1, ret
    assert kernel.mutations == [] and state(mod, kernel) == before
    ret = mod.apply(payload=shrunk, force=True)
    assert ret["applied"] and ret["removed"] == V4[1:] and kernel.sets["ksb-prod-4"][1] == V4[:1]
    within = delta(7, (["10.0.0.2", "10.0.0.9"], V6), base=(V4[:1], V6))
    assert mod.apply(payload=within)["applied"], "judged against the list now held"


def test_the_result_is_bounded_as_a_full_list(make_module, kernel):
    mod = holding(make_module, kernel, max_entries=5)
    before = state(mod, kernel)
    ret = mod.apply(payload=delta(6, (V4 + ["10.0.0.6", "10.0.0.7"], V6)))
    assert ret["reason"] == "refused: ipv4: 6 entries exceed the bound of 5 (pillar kube_allowlist:max_entries)"
    assert retcode(mod) == 1
    pods = sorted(f"10.{i}.0.0/16" for i in range(100, 102))
    ret = make_module(max_entries=5, max_address_space={"ipv4": 16}).apply(payload=delta(6, (V4[1:] + pods, V6)))
    assert "more than 2^16 (pillar kube_allowlist:max_address_space:ipv4)" in ret["reason"] and retcode(mod) == 1
    assert kernel.mutations == [] and state(mod, kernel) == before


def test_need_full_is_in_every_return(make_module, tmp_path):
    mod = make_module(clusters={"prod": {}, "other": {"kubeconfig": str(tmp_path / "none")}})
    returns = [
        mod.apply(payload=full(1)),
        mod.apply(payload=full(1)),
        mod.apply(payload=dict(full(2), signature="ed25519:" + "A" * 86 + "==")),
        mod.apply(payload=ksb_sign.build_delta("other", 2, BASE, BASE, key=KEY)),
        mod.apply(payload="{not json"),
        mod.pull("other"),
        mod.pull("prod"),
        make_module(backend="nope").apply(payload=full(3)),
    ]
    assert all(r["need_full"] is False for r in returns), returns


@pytest.mark.parametrize("vector", VECTORS["deltas"], ids=[v["name"] for v in VECTORS["deltas"]])
def test_the_shared_delta_vectors_apply_on_a_minion(make_module, kernel, tmp_path, vector):
    """The bridge's own bytes (test/vectors/payloads-v2.json): need full with nothing held; applied
    on its base (a full list of the generation before, signed by the vector's key); then current."""
    payload, base, result = vector["payload"], vector["base"], vector["result"]
    cluster, seed = payload["cluster"], bytes.fromhex(VECTORS["keys"][vector["key"]]["seed_hex"])
    mod = make_module(
        public_keys=[k["public_key"] for k in VECTORS["keys"].values()],
        cache_dir=str(tmp_path / "vector"),
        clusters={cluster: {}},
        rules=[{"name": "pg", "clusters": [cluster], "proto": "tcp", "ports": [5432]}],
    )
    ret = mod.apply(payload=payload, tag=vector["tag"])
    assert (ret["need_full"], ret["reason"]) == (True, f"need_full: holds nothing, the delta is from {base['digest']}")
    held = ksb_sign.build(cluster, payload["generation"] - 1, base["ipv4"], base["ipv6"], key=seed)
    assert held["digest"] == base["digest"] and mod.apply(payload=held, tag=vector["tag"])["applied"]
    ret = mod.apply(payload=dict(payload, _stamp="2026-11-22T10:00:05.1", minions=["db1"]), tag=vector["tag"])
    assert (ret["applied"], ret["need_full"], retcode(mod), ret["reason"]) == (
        True,
        False,
        0,
        f"applied generation {payload['generation']}",
    ), ret
    assert ret["changed"] is (base["digest"] != result["digest"]), "the check form changes no rule"
    assert sorted(kernel.sets[f"ksb-{cluster}-4"][1]) == sorted(result["ipv4"])
    assert sorted(kernel.sets[f"ksb-{cluster}-6"][1]) == sorted(result["ipv6"])
    with open(os.path.join(tmp_path / "vector", f"{cluster}.json"), encoding="utf-8") as handle:
        entry = json.load(handle)
    assert (entry["ipv4"], entry["ipv6"], entry["digest"]) == (result["ipv4"], result["ipv6"], result["digest"])
    ret = mod.apply(payload=payload, tag=vector["tag"])
    assert ret["reason"] == f"already current at generation {payload['generation']}"
