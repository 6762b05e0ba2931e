"""Execution module flows on a fake kernel: apply, idempotency, replay, keys, bounds, policy,
corrupt caches, forget, the persisted enforced state, show/flush/restore and their return codes."""

import importlib.metadata
import json
import logging
import os
import subprocess
import sysconfig

import pytest

from saltext.kube_allowlist.runners import kube_allowlist_mod as runner

import ksb_sign
from conftest import KEY, PUBLIC_KEY

V4 = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
OTHER_KEY = "rotated key"


def p(generation, v4=V4, v6=("fd00::2",), key=KEY, cluster="prod", **extra):
    return ksb_sign.build(cluster, generation, v4, v6, key=key, **extra)


def cache_dir(mod):
    return mod.__pillar__["kube_allowlist"]["cache_dir"]


def retcode(mod):
    return mod.__context__["retcode"]


def snapshot(kernel):
    return json.dumps([kernel.sets, kernel.chains, kernel.jumps, kernel.nft], sort_keys=True)


def test_apply_then_repeat_runs_no_mutating_command(make_module, kernel):
    mod = make_module()
    ret = mod.apply(payload=p(1))
    assert (ret["applied"], ret["changed"], retcode(mod)) == (True, True, 0)
    assert set(kernel.sets["ksb-prod-4"][1]) == set(V4)
    assert kernel.jumps == {"ipv4": 1, "ipv6": 1}
    kernel.mutations.clear()
    state = os.stat(os.path.join(cache_dir(mod), "_enforced.json"))
    again = mod.apply(payload=dict(p(1), _stamp="x", minions=["db1"], __pub_jid="1"))
    assert (again["changed"], again["reason"], kernel.mutations) == (False, "already current at generation 1", [])
    assert mod.restore()["changed"] is False and kernel.mutations == []
    after = os.stat(os.path.join(cache_dir(mod), "_enforced.json"))
    assert (after.st_ino, after.st_mtime_ns) == (state.st_ino, state.st_mtime_ns), "unchanged state is not rewritten"


@pytest.mark.parametrize("backend", ["ipset", "iptables", "nftables"])
def test_each_backend_is_idempotent_and_converges_on_update(make_module, kernel, backend):
    mod = make_module(backend=backend)
    mod.apply(payload=p(1))
    kernel.mutations.clear()
    mod.apply(payload=p(1))
    assert kernel.mutations == []
    ret = mod.apply(payload=p(2, V4[1:]))
    assert ret["changed"] and ret["removed"] == ["10.0.0.2"]
    kernel.mutations.clear()
    assert mod.restore()["changed"] is False and kernel.mutations == []


def test_update_replaces_only_changed_sets(make_module, kernel):
    mod = make_module()
    mod.apply(payload=p(1))
    kernel.mutations.clear()
    mod.apply(payload=p(2, V4[:3] + ["10.0.0.9"]))
    assert [m[0] for m in kernel.mutations] == [["ipset", "restore"]]
    assert "ksb-prod-6" not in kernel.mutations[0][1]


def test_payload_as_json_text(make_module):
    assert make_module().apply(payload=json.dumps(p(1)))["applied"]


@pytest.mark.parametrize(
    "second,verdict,code",
    [(p(1), "already current", 0), (p(1, V4[:3]), "refused: generation 1 was already applied", 1)],
    ids=["duplicate", "conflicting digest"],
)
def test_same_generation(make_module, kernel, second, verdict, code):
    mod = make_module()
    mod.apply(payload=p(1))
    kernel.mutations.clear()
    ret = mod.apply(payload=second)
    assert ret["reason"].startswith(verdict) and retcode(mod) == code
    assert kernel.mutations == []


def test_replay_of_older_generation_is_ignored(make_module, kernel):
    mod = make_module()
    first = p(1)
    mod.apply(payload=first)
    mod.apply(payload=p(2, V4[1:]))
    kernel.mutations.clear()
    ret = mod.apply(payload=first)
    assert (ret["applied"], ret["reason"][:5], retcode(mod)) == (False, "stale", 0)
    assert kernel.mutations == [] and "10.0.0.2" not in kernel.sets["ksb-prod-4"][1]


V1 = {
    "version": 1,
    "cluster": "prod",
    "generation": 1,
    "ipv4": V4,
    "ipv6": [],
    "added": [],
    "removed": [],
    "nodes": 4,
    "target": "*",
    "issued_at": "2026-11-22T10:00:00.000Z",
    "digest": "sha256:" + "0" * 64,
    "signature": "hmac-sha256:" + "0" * 64,
}


@pytest.mark.parametrize(
    "payload,reason",
    [
        (V1, "refused: version: 1 (HMAC-SHA256 with a shared key) is no longer accepted"),
        (dict(p(1), signature="ed25519:" + "A" * 86 + "=="), "refused: signature: does not verify"),
        (p(1, key=OTHER_KEY), "refused: key_id: " + ksb_sign.key_id(OTHER_KEY) + " is not one of"),
        (dict(p(1), generation=2), "refused: signature: does not verify"),
        (ksb_sign.build("prod", 1, ["0.0.0.0/0"], key=KEY), "wider than /16"),
        (
            ksb_sign.build("prod", 1, sorted(f"{10 + (i >> 8)}.{i & 255}.0.0/16" for i in range(300)), key=KEY),
            "max_address_space:ipv4",
        ),
        (p(1, v4=["10.0.0.1;id"]), "only lower-case hex"),
        (dict(p(1), version=3), "version: 3 is not supported"),
        (p(True), "generation: expected an integer from 1 to 2^53 - 1, got bool"),
        ("{not json", "not JSON"),
        ('{"version": 2, "x": NaN}', "NaN is not allowed"),
        ("[" * 50000 + "]" * 50000, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        (dict(p(1), _stamp=b"x"), "payload._stamp: a value of type bytes"),
        (dict(p(1), minions=[1.5]), "payload.minions[0]: a float"),
        (None, "expected a mapping"),
    ],
    ids=[
        "version 1",
        "bad signature",
        "unknown key id",
        "altered generation",
        "any",
        "address space",
        "injection",
        "version 3",
        "generation bool",
        "not json",
        "NaN",
        "deep json",
        "binary",
        "bytes",
        "float",
        "none",
    ],
)
def test_refused_payload_changes_nothing(make_module, kernel, caplog, payload, reason):
    mod = make_module()
    with caplog.at_level(logging.INFO):
        ret = mod.apply(payload=payload)
    assert not ret["applied"] and reason in ret["reason"] and retcode(mod) == 1, ret
    assert kernel.mutations == [] and not os.path.exists(cache_dir(mod) + "/prod.json")
    logged = [r for r in caplog.records if r.name.endswith(".kube_allowlist_mod")]
    assert len(logged) == 1 and len(logged[0].getMessage()) < 700, "logged once, truncated"


def test_generation_too_far_ahead_is_refused(make_module, kernel, monkeypatch):
    mod = make_module()
    now = 1_795_307_097_725
    monkeypatch.setattr(mod.module, "_now_ms", lambda: now)
    ret = mod.apply(payload=p(now + 301_000))
    assert retcode(mod) == 1
    assert "301 s ahead of this minion's clock, more than max_generation_skew 300 s" in ret["reason"]
    assert mod.apply(payload=p(now + 299_000))["applied"] and retcode(mod) == 0
    mod = make_module(max_generation_skew=3600)
    monkeypatch.setattr(mod.module, "_now_ms", lambda: now)
    assert mod.apply(payload=p(now + 3_000_000))["applied"]
    kernel.mutations.clear()
    monkeypatch.setattr(mod.module, "_now_ms", lambda: now - 10**9)
    assert not mod.apply(payload=p(now + 3_100_000))["applied"] and retcode(mod) == 1


def test_forget_recovers_from_a_too_new_generation_keeping_the_rules(make_module, kernel):
    """A bridge whose clock ran ahead published generation G; fixed, it publishes older ones."""
    mod = make_module()
    ahead = mod.module._now_ms() + 200_000  # pylint: disable=protected-access
    assert mod.apply(payload=p(ahead))["applied"]
    fixed = p(mod.module._now_ms(), V4[1:])  # pylint: disable=protected-access
    assert mod.apply(payload=fixed)["reason"].startswith("stale") and retcode(mod) == 0
    before = snapshot(kernel)
    kernel.mutations.clear()
    ret = mod.forget("prod")
    assert (ret["changed"], ret["forgotten_generation"], retcode(mod)) == (True, ahead, 0), ret
    assert kernel.mutations == [] and snapshot(kernel) == before, "rules stay in place"
    assert mod.show()["clusters"]["prod"]["generation"] == 0
    ret = mod.apply(payload=fixed)
    assert ret["applied"] and ret["removed"] == ["10.0.0.2"]
    assert mod.forget("other")["reason"] == "nothing to forget" and retcode(mod) == 0
    assert mod.forget("Bad_Name")["cluster"] is None and retcode(mod) == 2


def test_forget_keeps_the_shrink_policy(make_module):
    mod = make_module()
    mod.apply(payload=p(5))
    mod.forget("prod")
    ret = mod.apply(payload=p(1, V4[:1], []))
    assert ret["reason"].startswith("refused: 4 of 5") and retcode(mod) == 1


# --- public keys ------------------------------------------------------------------------------


def test_rotation_two_keys_then_the_new_one_only(make_module):
    both = make_module(public_keys=[PUBLIC_KEY, ksb_sign.public_b64(OTHER_KEY) + "\n"])
    assert both.apply(payload=p(1))["applied"]
    assert both.apply(payload=p(2, key=OTHER_KEY))["applied"]
    new_only = make_module(public_keys=[ksb_sign.public_b64(OTHER_KEY, urlsafe=True, padding=False)])
    ret = new_only.apply(payload=p(3))
    assert retcode(new_only) == 1 and f"key_id: {ksb_sign.key_id(KEY)} is not one of" in ret["reason"]
    assert ksb_sign.key_id(OTHER_KEY) in ret["reason"]
    assert new_only.apply(payload=p(3, key=OTHER_KEY))["applied"]
    assert new_only.show()["clusters"]["prod"]["key_id"] == ksb_sign.key_id(OTHER_KEY)


def test_per_cluster_public_keys_replace_the_global_list(make_module):
    mod = make_module(
        clusters={"prod": {}, "edge": {"public_keys": [ksb_sign.public_hex(OTHER_KEY)]}},
        rules=[
            {"name": "pg", "clusters": ["prod"], "ports": [5432]},
            {"name": "r", "clusters": ["edge"], "ports": [6379]},
        ],
    )
    assert mod.apply(payload=p(1, cluster="edge", key=OTHER_KEY))["applied"]
    assert mod.apply(payload=p(2, cluster="edge"))["reason"].startswith("refused: key_id") and retcode(mod) == 1
    assert mod.apply(payload=p(1))["applied"]
    assert mod.apply(payload=p(2, key=OTHER_KEY))["reason"].startswith("refused: key_id")
    assert mod.show()["public_keys"] == {
        "kube_allowlist:public_keys": [ksb_sign.key_id(KEY)],
        "kube_allowlist:clusters:edge:public_keys": [ksb_sign.key_id(OTHER_KEY)],
    }


BAD_KEYS = [
    ("none configured", {"public_keys": None}, "kube_allowlist:public_keys is empty"),
    ("empty list", {"public_keys": []}, "kube_allowlist:public_keys is empty"),
    ("a string, not a list", {"public_keys": PUBLIC_KEY}, "kube_allowlist:public_keys: expected a list"),
    ("placeholder", {"public_keys": ["CHANGE-ME"]}, "kube_allowlist:public_keys[0]: not valid base64"),
    ("short key", {"public_keys": [PUBLIC_KEY, "abcd"]}, "kube_allowlist:public_keys[1]: base64 of 3 bytes"),
    ("v1 signing_key only", {"public_keys": None, "signing_key": "old-shared-secret"}, "public_keys is empty"),
    (
        "per-cluster placeholder",
        {"clusters": {"prod": {"public_keys": ["CHANGE-ME"]}}},
        "kube_allowlist:clusters:prod:public_keys[0]: not valid base64",
    ),
]


@pytest.mark.parametrize("pillar,reason", [c[1:] for c in BAD_KEYS], ids=[c[0] for c in BAD_KEYS])
def test_bad_public_keys_fail_with_retcode_2_naming_the_field(make_module, kernel, pillar, reason):
    mod = make_module(**pillar)
    if pillar.get("public_keys", "") is None:
        del mod.__pillar__["kube_allowlist"]["public_keys"]
    ret = mod.apply(payload=p(1))
    assert reason in ret["reason"] and retcode(mod) == 2 and not ret["applied"], ret
    assert kernel.mutations == []
    assert "CHANGE-ME" not in ret["reason"] and "old-shared-secret" not in ret["reason"]


def test_show_warns_about_the_ignored_signing_key(make_module):
    mod = make_module(signing_key="old-shared-secret", clusters={"prod": {"signing_key": "x"}})
    shown = mod.show()
    assert retcode(mod) == 0
    ignored = "kube_allowlist:signing_key is ignored: contract version 2 verifies with public_keys (Ed25519)"
    assert ignored in shown["warnings"]
    assert any(w.startswith("kube_allowlist:clusters:prod:signing_key is ignored") for w in shown["warnings"])
    assert "old-shared-secret" not in json.dumps(shown)
    assert mod.apply(payload=p(1))["applied"], "public_keys still verify"
    bad = make_module(public_keys=["CHANGE-ME"]).show()
    assert any("kube_allowlist:public_keys[0]: not valid base64" in w for w in bad["warnings"])


# --- return codes -----------------------------------------------------------------------------


def test_invalid_pillar_fails_with_retcode_2_everywhere(make_module, tmp_path):
    bad = {"rules": [{"name": "pg", "clusters": ["prod"], "ports": [70000]}]}
    mod = make_module(**bad)
    ret = mod.apply(payload=p(1))
    assert "rules[0]:ports[0]" in ret["reason"] and retcode(mod) == 2
    for call in (mod.show, mod.restore, mod.flush, lambda: mod.forget("prod"), lambda: mod.pull("prod")):
        mod.__context__.clear()
        out = call()
        assert retcode(mod) == 2 and "rules[0]:ports[0]" in (out.get("error") or out.get("reason")), out
    mod = make_module(clusters={"prod": {}})
    assert "kubeconfig is not set" in mod.pull("prod")["reason"] and retcode(mod) == 2
    assert mod.flush(cluster="a/b")["error"].startswith("cluster 'a/b'") and retcode(mod) == 2
    assert (
        make_module(max_generation_skew=-1)
        .apply(payload=p(1))["reason"]
        .startswith("invalid pillar: kube_allowlist:max_generation_skew")
    )
    assert "max_address_space:ipv4" in make_module(max_address_space={"ipv4": 33}).apply(payload=p(1))["reason"]
    del tmp_path


def test_cluster_without_rule_is_not_configured_here(make_module, kernel):
    mod = make_module()
    ret = mod.apply(payload=p(1, cluster="other"))
    assert ret["reason"].startswith("not configured here") and retcode(mod) == 0
    assert (ret["applied"], ret["changed"], kernel.mutations) == (True, False, [])


def test_tag_must_name_the_cluster(make_module):
    mod = make_module()
    assert mod.apply(payload=p(1), tag="kube-salt-bridge/cluster/prod/nodes")["applied"]
    ret = mod.apply(payload=p(2), tag="kube-salt-bridge/cluster/stage/nodes")
    assert ret["reason"] == "refused: tag 'kube-salt-bridge/cluster/stage/nodes' does not name cluster prod"
    assert retcode(mod) == 1


def bridge_ok(ret, code):
    """The bridge's verdict on a job return (src/salt/interpret.ts): retcode 0, success not false
    (Salt sets success = retcode == 0), a dict that does not say applied: false."""
    return code == 0 and isinstance(ret, dict) and ret.get("applied") is not False


@pytest.mark.parametrize(
    "name,first,second,ok,reason",
    [
        ("applied", None, p(1), True, "applied generation 1"),
        ("already current", p(1), p(1), True, "already current at generation 1"),
        ("not configured here", None, p(1, cluster="other"), True, "not configured here"),
        ("stale", p(2), p(1), False, "stale: generation 1 is older"),
        ("refused", None, dict(p(1), signature="ed25519:" + "A" * 86 + "=="), False, "refused: "),
        ("conflict", p(1), p(1, V4[:3]), False, "refused: generation 1 was already applied"),
    ],
)
def test_bridge_judges_each_outcome(make_module, name, first, second, ok, reason):  # pylint: disable=unused-argument
    """Success outcomes must read as ok to the bridge (applied not false, retcode 0); the others not."""
    mod = make_module()
    if first is not None:
        assert mod.apply(payload=first)["applied"]
    ret = mod.apply(payload=second)
    assert ret["reason"].startswith(reason), ret
    assert bridge_ok(ret, retcode(mod)) is ok, ret


def test_pull_of_unconfigured_cluster_reads_as_success(make_module, tmp_path):
    mod = make_module(clusters={"prod": {}, "other": {"kubeconfig": str(tmp_path / "none")}})
    ret = mod.pull("other")
    assert ret["reason"].startswith("not configured here") and bridge_ok(ret, retcode(mod))


def test_empty_list_refused_unless_allowed(make_module, kernel):
    empty = p(1, v4=[], v6=[])
    mod = make_module()
    assert mod.apply(payload=empty)["reason"].startswith("refused: empty")
    assert retcode(mod) == 1 and kernel.mutations == []
    mod = make_module(clusters={"prod": {"allow_empty": True}})
    assert mod.apply(payload=empty)["applied"]
    assert kernel.sets["ksb-prod-4"][1] == [] and kernel.chains["ipv4"][-1].endswith("-j DROP")


def test_shrink_refused_unless_forced(make_module, kernel):
    mod = make_module()
    mod.apply(payload=p(1))
    kernel.mutations.clear()
    shrunk = p(2, V4[:1], ["fd00::2"])  # 3 of 5 entries go: 60% > 50%
    ret = mod.apply(payload=shrunk)
    assert ret["reason"].startswith("refused: 3 of 5") and retcode(mod) == 1
    assert kernel.mutations == []
    ret = mod.apply(payload=shrunk, force=True)
    assert ret["applied"] and ret["removed"] == V4[1:]
    assert make_module(max_shrink=0.7).apply(payload=p(3, V4[:1], ["fd00::3"]))["applied"]


def test_address_space_bound_is_configurable(make_module):
    pods = sorted(f"{10 + (i >> 8)}.{i & 255}.0.0/16" for i in range(300))
    assert make_module(max_address_space={"ipv4": 25}).apply(payload=p(1, pods))["applied"]


def test_cache_is_written_atomically_and_shown(make_module):
    mod = make_module()
    mod.apply(payload=p(4))
    assert sorted(os.listdir(cache_dir(mod))) == [".lock", "_enforced.json", "prod.json"]
    shown = mod.show()
    assert shown["clusters"]["prod"]["generation"] == 4 and shown["clusters"]["prod"]["ipv4"] == 4
    assert shown["rules"]["pg"]["status"] == "enforced" and shown["corrupt"] == {} and shown["warnings"] == []


# --- corrupt caches ---------------------------------------------------------------------------


CORRUPT = [
    ("garbage", b"\x00\xffnot json at all"),
    ("truncated", b'{"cluster": "prod", "generation": 1, "ipv4": ["10.0.0.2"'),
    ("empty file", b""),
    ("generation as string", None),
    ("generation bool", None),
    ("any address", None),
    ("lists changed, digest not", None),
    ("not a mapping", b"[1, 2, 3]"),
    ("deeply nested", b"[" * 100000 + b"]" * 100000),
]


def corrupt_cache(path, name, data):
    entry = json.loads(open(path, encoding="utf-8").read())
    if name == "generation as string":
        data = json.dumps(dict(entry, generation="11")).encode()
    elif name == "generation bool":
        data = json.dumps(dict(entry, generation=True)).encode()
    elif name == "any address":
        data = json.dumps(dict(entry, ipv4=["0.0.0.0/0"])).encode()
    elif name == "lists changed, digest not":
        data = json.dumps(dict(entry, ipv4=entry["ipv4"] + ["10.9.9.9"])).encode()
    with open(path, "wb") as handle:
        handle.write(data)


def two_clusters(make_module):
    return make_module(
        clusters={"prod": {}, "stage": {}},
        rules=[
            {"name": "pg", "clusters": ["prod"], "ports": [5432]},
            {"name": "redis", "clusters": ["stage"], "ports": [6379]},
        ],
    )


@pytest.mark.parametrize("name,data", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_a_corrupt_cache_affects_only_its_cluster(make_module, kernel, name, data):
    mod = two_clusters(make_module)
    assert mod.apply(payload=p(1))["applied"] and mod.apply(payload=p(1, ["10.1.0.1"], [], cluster="stage"))["applied"]
    path = os.path.join(cache_dir(mod), "prod.json")
    corrupt_cache(path, name, data)
    before = snapshot(kernel)

    ret = mod.apply(payload=p(2, ["10.1.0.1", "10.1.0.2"], [], cluster="stage"))
    assert ret["applied"] and retcode(mod) == 0, "another cluster still applies"
    assert set(kernel.sets["ksb-prod-4"][1]) == set(V4), "the corrupt cluster keeps the list last enforced"
    kernel.__init__()  # a reboot
    ret = mod.restore()
    assert retcode(mod) == 0 and ret["generations"] == {"prod": 1, "stage": 2}
    assert list(ret["corrupt"]) == ["prod"] and "kept the list last enforced (generation 1)" in ret["corrupt"]["prod"]
    assert set(kernel.sets["ksb-prod-4"][1]) == set(V4) and kernel.sets["ksb-stage-4"][1] == ["10.1.0.1", "10.1.0.2"]
    assert before != snapshot(kernel)  # stage moved on

    ret = mod.apply(payload=p(2))
    assert retcode(mod) == 2 and not ret["applied"] and f"cache file {path} is unreadable or corrupt" in ret["reason"]
    assert "kube_allowlist.forget prod" in ret["reason"] and len(ret["reason"]) <= 600
    shown = mod.show()
    assert retcode(mod) == 0 and list(shown["corrupt"]) == ["prod"] and "prod" not in shown["clusters"]
    assert shown["rules"]["pg"]["status"] == "enforced"

    report = runner.summarize({"db1": shown})
    assert report["clusters"]["prod"]["corrupt"] == ["db1"]
    assert "corrupt" in report["clusters"]["prod"]["minions"]["db1"]["corrupt"]

    kernel.mutations.clear()
    ret = mod.forget("prod")
    assert ret["changed"] and retcode(mod) == 0 and "rebuilt the corrupt cache" in ret["reason"]
    assert kernel.mutations == []
    assert mod.show()["corrupt"] == {} and mod.apply(payload=p(2))["applied"]


def test_a_corrupt_cache_without_an_enforced_copy(make_module, kernel):
    mod = make_module()
    os.makedirs(cache_dir(mod))
    with open(os.path.join(cache_dir(mod), "prod.json"), "w", encoding="utf-8") as handle:
        handle.write("{")
    ret = mod.restore()
    assert retcode(mod) == 0 and "no list last enforced is known" in ret["corrupt"]["prod"]
    assert ret["pending"] == {"pg": ["prod"]} and kernel.sets == {}
    ret = mod.forget("prod")
    assert retcode(mod) == 0 and "moved the corrupt cache aside" in ret["reason"]
    assert sorted(os.listdir(cache_dir(mod))) == [".lock", "_enforced.json", "prod.json.corrupt"]
    assert mod.apply(payload=p(1))["applied"]


def test_flush_removes_corrupt_caches_too(make_module, kernel):
    mod = two_clusters(make_module)
    mod.apply(payload=p(1))
    mod.apply(payload=p(1, ["10.1.0.1"], [], cluster="stage"))
    corrupt_cache(os.path.join(cache_dir(mod), "prod.json"), "garbage", b"garbage")
    ret = mod.flush(cluster="prod")
    assert ret["caches_removed"] == ["prod"] and retcode(mod) == 0
    assert "ksb-prod-4" not in kernel.sets and kernel.sets["ksb-stage-4"][1] == ["10.1.0.1"]
    ret = mod.flush()
    assert ret["caches_removed"] == ["stage"] and sorted(os.listdir(cache_dir(mod))) == [".lock"]
    assert kernel.sets == {} and kernel.chains == {"ipv4": None, "ipv6": None}


# --- persisted enforced state: restore at boot with no master and no pillar -------------------


def test_restore_without_pillar_rebuilds_exactly_the_enforced_rules(make_module, kernel, tmp_path):
    for backend in ("ipset", "nftables", "iptables"):
        kernel.__init__()
        mod = make_module(
            backend=backend,
            cache_dir=str(tmp_path / backend),
            rules=[
                {
                    "name": "pg",
                    "clusters": ["prod"],
                    "ports": [5432, "6000:6010"],
                    "others": "reject",
                    "extra_sources": ["192.0.2.10", "2001:db8:10::/48"],
                },
                {"name": "waits", "clusters": ["prod", "later"], "ports": [9000], "families": ["ipv4"]},
            ],
        )
        assert mod.apply(payload=p(3))["applied"]
        enforced = snapshot(kernel)
        kernel.__init__()  # reboot: the kernel forgets everything; no master, no pillar
        boot = make_module.bare()
        ret = boot.restore(cache_dir=str(tmp_path / backend))
        assert retcode(boot) == 0 and ret["changed"] and ret["source"] == "persisted", ret
        assert (ret["backend"], ret["generations"], ret["pending"]) == (backend, {"prod": 3}, {"waits": ["later"]})
        assert snapshot(kernel) == enforced, f"{backend}: exactly the rules enforced before the reboot"
        kernel.mutations.clear()
        assert boot.restore(cache_dir=str(tmp_path / backend))["changed"] is False and kernel.mutations == []


def test_restore_without_pillar_uses_the_default_cache_dir(make_module, kernel):
    mod = make_module()
    del mod.__pillar__["kube_allowlist"]["cache_dir"]
    assert mod.apply(payload=p(1))["applied"]
    enforced = snapshot(kernel)
    kernel.__init__()
    boot = make_module.bare()
    ret = boot.restore()
    assert retcode(boot) == 0 and ret["cache_dir"].endswith("minion-cache/kube_allowlist")
    assert snapshot(kernel) == enforced


def test_restore_persisted_ignores_the_pillar(make_module, kernel):
    mod = make_module()
    mod.apply(payload=p(1))
    enforced = snapshot(kernel)
    kernel.__init__()
    changed = make_module(rules=[], backend="nftables")
    ret = changed.restore(persisted=True)
    assert retcode(changed) == 0 and ret["backend"] == "ipset" and snapshot(kernel) == enforced
    changed.restore()
    assert kernel.sets == {} and kernel.nft is None, "with the pillar, restore follows the pillar"


def test_every_change_keeps_the_enforced_state_current(make_module, kernel):
    mod = two_clusters(make_module)
    boot = make_module.bare()

    def rebooted():
        kernel.__init__()
        boot.restore(cache_dir=cache_dir(mod))
        return snapshot(kernel)

    for step in (
        lambda: mod.apply(payload=p(1)),
        lambda: mod.apply(payload=p(1, ["10.1.0.1"], [], cluster="stage")),
        lambda: mod.apply(payload=p(2, V4[1:])),
        lambda: mod.forget("stage"),
        lambda: mod.flush(cluster="stage"),
    ):
        step()
        assert retcode(mod) == 0
        live = snapshot(kernel)
        assert rebooted() == live
    mod.flush()
    assert not os.path.exists(os.path.join(cache_dir(mod), "_enforced.json"))
    assert boot.restore(cache_dir=cache_dir(mod))["changed"] is False and retcode(boot) == 0


def state_path(mod):
    return os.path.join(cache_dir(mod), "_enforced.json")


def edit_state(mod, change):
    doc = json.load(open(state_path(mod), encoding="utf-8"))
    change(doc)
    with open(state_path(mod), "w", encoding="utf-8") as handle:
        json.dump(doc, handle)


BAD_STATES = [
    ("garbage", lambda mod: open(state_path(mod), "w", encoding="utf-8").write("{garbage"), "not JSON"),
    ("other format", lambda mod: edit_state(mod, lambda d: d.update(format=9)), "not an enforced-state file"),
    ("unknown backend", lambda mod: edit_state(mod, lambda d: d.update(backend="pf")), "backend"),
    ("rule port injection", lambda mod: edit_state(mod, lambda d: d["rules"][0].update(ports=["5432;id"])), "ports"),
    ("rule not normalised", lambda mod: edit_state(mod, lambda d: d["rules"][0].update(proto="TCP")), "proto"),
    (
        "list widened",
        lambda mod: edit_state(mod, lambda d: d["lists"]["prod"].update(ipv4=["0.0.0.0/0"])),
        "wider than /16",
    ),
    (
        "generation as string",
        lambda mod: edit_state(mod, lambda d: d["lists"]["prod"].update(generation="11")),
        "generation",
    ),
    ("lists not a mapping", lambda mod: edit_state(mod, lambda d: d.update(lists=[])), "lists"),
    ("missing, caches present", lambda mod: os.unlink(state_path(mod)), "is missing"),
]


@pytest.mark.parametrize("damage,message", [c[1:] for c in BAD_STATES], ids=[c[0] for c in BAD_STATES])
def test_a_bad_enforced_state_fails_the_boot_restore_with_retcode_2(make_module, kernel, damage, message):
    mod = make_module()
    mod.apply(payload=p(1))
    damage(mod)
    kernel.__init__()
    kernel.mutations.clear()
    boot = make_module.bare()
    ret = boot.restore(cache_dir=cache_dir(mod))
    assert retcode(boot) == 2 and message in ret["error"] and kernel.mutations == [], ret
    assert ret["error"].startswith("cannot restore from disk: ")
    assert mod.restore()["changed"] and retcode(mod) == 0, "with the pillar, restore works and rewrites the state"
    assert boot.restore(cache_dir=cache_dir(mod))["changed"] is False and retcode(boot) == 0


def test_boot_restore_with_nothing_persisted_is_a_no_op(make_module, kernel, tmp_path):
    boot = make_module.bare()
    ret = boot.restore(cache_dir=str(tmp_path / "never"))
    assert retcode(boot) == 0 and ret["changed"] is False and "nothing persisted" in ret["comment"]
    assert not (tmp_path / "never").exists() and kernel.mutations == []
    assert boot.restore(cache_dir="relative")["error"].startswith("cache_dir: expected an absolute path")
    assert retcode(boot) == 2


# --- the rest ---------------------------------------------------------------------------------


def test_restore_after_reboot_and_flush(make_module, kernel):
    mod = make_module()
    mod.apply(payload=p(1))
    kernel.__init__()  # reboot: the kernel forgets everything
    ret = mod.restore()
    assert ret["changed"] and ret["generations"] == {"prod": 1} and set(kernel.sets["ksb-prod-4"][1]) == set(V4)
    ret = mod.flush()
    assert ret["caches_removed"] == ["prod"]
    assert kernel.sets == {} and kernel.chains == {"ipv4": None, "ipv6": None} and kernel.jumps["ipv4"] == 0
    assert kernel.foreign["ipv4"] == ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]
    assert mod.flush()["changed"] is False


def test_backend_switch_removes_the_old_backend(make_module, kernel):
    make_module().apply(payload=p(1))
    make_module(backend="nftables").restore()
    assert kernel.sets == {} and kernel.chains["ipv4"] is None and kernel.nft
    make_module(backend="iptables").restore()
    assert kernel.nft is None and len(kernel.chains["ipv4"]) == 6  # lo return + 4 sources + drop


def test_failed_command_returns_retcode_2(make_module, kernel, utils, monkeypatch):
    mod = make_module()

    def broken(argv, stdin=None, **kwargs):
        if argv[:2] == ["ipset", "restore"]:
            return {"retcode": 1, "stdout": "", "stderr": "Kernel error received: ipset protocol error"}
        return kernel(argv, stdin, **kwargs)

    monkeypatch.setattr(utils["command"], "run", broken)
    ret = mod.apply(payload=p(1))
    assert "ipset protocol error" in ret["reason"] and retcode(mod) == 2
    ret = mod.restore()
    assert "ipset protocol error" in ret["error"] and retcode(mod) == 2
    assert not os.path.exists(state_path(mod)), "nothing enforced, nothing persisted"


def test_a_long_stderr_is_cut_and_the_job_logs_it_once(make_module, kernel, utils, monkeypatch, caplog):
    mod = make_module()

    def noisy(argv, stdin=None, **kwargs):
        if argv[0] == "iptables-restore":
            return {"retcode": 4, "stdout": "", "stderr": "iptables-restore: line 3 failed " + "x" * 5000 + " END"}
        return kernel(argv, stdin, **kwargs)

    monkeypatch.setattr(utils["command"], "run", noisy)
    with caplog.at_level(logging.WARNING):
        ret = mod.apply(payload=p(1))
    assert retcode(mod) == 2 and ret["applied"] is False, ret
    head = "iptables-restore: rewrite chain KSB-ALLOW (3 rules) failed (exit 4): iptables-restore: line 3"
    assert ret["reason"].startswith(head), ret
    assert len(ret["reason"]) <= 600 and "END" not in ret["reason"]
    logged = [r for r in caplog.records if "failed (exit 4)" in r.getMessage()]
    assert len(logged) == 1 and len(logged[0].getMessage()) < 700, "logged once, truncated"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            lambda argv: subprocess.TimeoutExpired(argv, 60),
            "ipset restore did not finish within 60 s and was killed",
        ),
        (
            lambda argv: PermissionError(13, "Permission denied", "/usr/sbin/ipset"),
            "cannot run ipset restore: [Errno 13] Permission denied: '/usr/sbin/ipset'",
        ),
    ],
    ids=["timeout", "cannot start"],
)
def test_a_command_that_hangs_or_cannot_start_fails(make_module, kernel, utils, monkeypatch, error, reason):
    """The module kills a firewall command after its timeout (a hung command would hold the cache
    lock for every later job) and names a command it cannot start; both are retcode 2."""
    mod = make_module()

    def failing(argv, stdin=None, **kwargs):
        if argv[:2] == ["ipset", "restore"]:
            raise error(argv)
        return kernel(argv, stdin, **kwargs)

    monkeypatch.setattr(utils["command"], "run", failing)
    ret = mod.apply(payload=p(1))
    assert (retcode(mod), ret["applied"], ret["reason"]) == (2, False, reason)
    assert kernel.mutations == [] and not os.path.exists(state_path(mod))


def test_each_tool_is_looked_up_once_per_job(make_module, kernel, which):
    mod = make_module()
    mod.funcs["kube_allowlist.show"]  # the loader has loaded the module (its __virtual__ looks nft up)
    for generation, v4 in ((1, V4), (2, V4[:3])):
        which.calls.clear()
        kernel.mutations.clear()
        assert mod.apply(payload=p(generation, v4=v4))["changed"] is True and kernel.mutations
        assert sorted(which.calls) == sorted(set(which.calls)), which.calls
        tools = {"ipset", "iptables-save", "ip6tables-save", "nft", "iptables-restore", "ip6tables-restore"}
        assert set(which.calls) == tools


@pytest.mark.parametrize(
    ("backend", "missing", "named"),
    [
        ("ipset", {"ipset"}, "ipset"),
        ("ipset", {"ip6tables-restore", "ip6tables-save"}, "ip6tables-restore, ip6tables-save"),
        ("iptables", {"iptables-restore"}, "iptables-restore"),
        ("nftables", {"nft"}, "nft"),
    ],
)
def test_a_missing_tool_fails_naming_it_and_runs_nothing(make_module, kernel, which, backend, missing, named):
    which.missing = missing
    mod = make_module(backend=backend)
    ret = mod.apply(payload=p(1))
    assert retcode(mod) == 2 and ret["applied"] is False, ret
    assert ret["reason"] == (
        f"backend {backend} needs {named}: install it or choose another backend in pillar kube_allowlist:backend"
    )
    assert kernel.mutations == []
    assert mod.restore()["error"] == ret["reason"] and retcode(mod) == 2


def test_show_warns_when_no_key_can_verify_a_cluster(make_module):
    shown = make_module(public_keys=[]).show()
    assert "no public key to verify payloads of prod: set kube_allowlist:public_keys" in shown["warnings"]
    assert make_module().show()["warnings"] == []


def test_the_loader_serves_the_installed_extension(make_module):
    """Salt's loader finds kube_allowlist through the package's salt.loader entry point, in the
    Salt venv's site-packages: not a copy from the repository, not a synced file."""
    mod = make_module()
    purelib = sysconfig.get_paths()["purelib"]
    assert mod.module.__file__ == os.path.join(purelib, "saltext", "kube_allowlist", "modules", "kube_allowlist_mod.py")
    (entry,) = importlib.metadata.entry_points(group="salt.loader", name="saltext.kube_allowlist")
    assert entry.value == "saltext.kube_allowlist"


def test_states_report_the_real_plan_under_test(make_module, kernel):
    """test=True: the steps a real run would execute (result None), True when nothing would change;
    nothing runs or is written. A real run then does exactly those steps."""
    mod = make_module()
    assert mod.state("restored", test=True) == {
        "name": "ksb-restored",
        "changes": {},
        "result": True,
        "comment": "already in the desired state",
    }
    assert not os.path.exists(cache_dir(mod)), "a dry run creates nothing, not even the cache directory"
    mod.apply(payload=p(1))
    kernel.chains["ipv4"] = []  # the kernel lost our IPv4 rules
    before, state = snapshot(kernel), os.stat(state_path(mod)).st_mtime_ns
    kernel.mutations.clear()

    planned = mod.state("restored", test=True)
    assert planned["result"] is None and kernel.mutations == [] and snapshot(kernel) == before
    assert planned["changes"]["steps"] == ["iptables-restore: rewrite chain KSB-ALLOW (3 rules)"], planned
    assert planned["comment"] == "would iptables-restore: rewrite chain KSB-ALLOW (3 rules)"
    assert os.stat(state_path(mod)).st_mtime_ns == state

    done = mod.state("restored")
    assert (done["result"], done["changes"]["steps"]) == (True, planned["changes"]["steps"]), done
    assert mod.state("restored", test=True)["result"] is True, "converged: nothing would change"

    flush_plan = mod.state("flushed", test=True)
    assert flush_plan["result"] is None and kernel.mutations[1:] == [] and os.path.exists(cache_dir(mod) + "/prod.json")
    assert flush_plan["changes"]["caches_removed"] == ["prod"] and flush_plan["changes"]["steps"] == [
        "iptables-restore: remove chain KSB-ALLOW",
        "ip6tables-restore: remove chain KSB-ALLOW",
        "ipset: destroy ksb-prod-4, ksb-prod-6",
    ], flush_plan
    assert mod.state("flushed")["changes"]["steps"] == flush_plan["changes"]["steps"]
    assert mod.state("flushed", test=True)["result"] is True


def test_states_fail_with_the_modules_error(make_module, kernel, utils, monkeypatch):
    mod = make_module(backend="nope")
    for name in ("restored", "flushed"):
        for test in (True, False):
            ret = mod.state(name, test=test)
            assert ret["result"] is False and "kube_allowlist:backend" in ret["comment"], ret
    mod = make_module()
    no_netlink = {"retcode": 3, "stdout": "", "stderr": "no netlink"}
    monkeypatch.setattr(utils["command"], "run", lambda argv, stdin=None, **kw: no_netlink)
    ret = mod.state("restored", test=True)
    assert ret["result"] is False and "no netlink" in ret["comment"] and kernel.mutations == [], ret


def test_return_codes_of_every_function_as_documented(make_module, kernel):
    """0 success, 2 failed: invalid pillar, an invalid argument, a firewall command; a dry run gets
    the code the real run would get (apply's 1 is covered by the refusal tables above)."""
    mod = make_module()
    calls = {
        "show": lambda: mod.show(),
        "restore": lambda: mod.restore(),
        "restore test": lambda: mod.restore(test=True),
        "flush test": lambda: mod.flush(test=True),
        "forget": lambda: mod.forget("prod"),
        "flush": lambda: mod.flush(),
    }
    for name, call in calls.items():
        mod.__context__.clear()
        call()
        assert retcode(mod) == 0, name
    for name, call in {
        "forget": lambda: mod.forget("Bad_Name"),
        "flush": lambda: mod.flush(cluster="a/b"),
        "restore": lambda: mod.restore(cache_dir="relative"),
        "restore test": lambda: mod.restore(cache_dir="relative", test=True),
    }.items():
        mod.__context__.clear()
        call()
        assert retcode(mod) == 2, name
    bad = make_module(backend="nope")
    for name in ("show", "restore", "flush", "forget"):
        for kwargs in ({}, {"test": True}) if name in ("restore", "flush") else ({},):
            bad.__context__.clear()
            getattr(bad, name)(*(["prod"] if name == "forget" else []), **kwargs)
            assert retcode(bad) == 2, (name, kwargs)
    assert kernel.mutations == []
