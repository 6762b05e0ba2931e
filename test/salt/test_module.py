"""Execution module flows on a fake kernel: apply, idempotency, replay, policy, show/flush/restore."""

import json
import os

import pytest

import ksb_sign
from conftest import KEY

V4 = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]


def p(generation, v4=V4, v6=("fd00::2",), **extra):
    return ksb_sign.build("prod", generation, v4, v6, key=KEY, **extra)


def test_apply_then_repeat_runs_no_mutating_command(make_module, kernel):
    mod = make_module()
    ret = mod.apply(payload=p(1))
    assert (ret["applied"], ret["changed"], mod.__context__["retcode"]) == (True, True, 0)
    assert set(kernel.sets["ksb-prod-4"][1]) == set(V4)
    assert kernel.jumps == {"ipv4": 1, "ipv6": 1}
    kernel.mutations.clear()
    again = mod.apply(payload=dict(p(1), _stamp="x", __pub_jid="1"))
    assert (again["changed"], again["reason"], kernel.mutations) == (False, "already current at generation 1", [])
    assert mod.restore()["changed"] is False and kernel.mutations == []


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
    "second,verdict,retcode",
    [(p(1), "already current", 0), (p(1, V4[:3]), "refused: generation 1 was already applied", 1)],
    ids=["duplicate", "conflicting digest"],
)
def test_same_generation(make_module, kernel, second, verdict, retcode):
    mod = make_module()
    mod.apply(payload=p(1))
    kernel.mutations.clear()
    ret = mod.apply(payload=second)
    assert ret["reason"].startswith(verdict) and mod.__context__["retcode"] == retcode
    assert kernel.mutations == []


def test_replay_of_older_generation_is_ignored(make_module, kernel):
    mod = make_module()
    first = p(1)
    mod.apply(payload=first)
    mod.apply(payload=p(2, V4[1:]))
    kernel.mutations.clear()
    ret = mod.apply(payload=first)
    assert (ret["applied"], ret["reason"][:5], mod.__context__["retcode"]) == (False, "stale", 0)
    assert kernel.mutations == [] and "10.0.0.2" not in kernel.sets["ksb-prod-4"][1]


@pytest.mark.parametrize(
    "payload,reason",
    [
        (dict(p(1), signature="hmac-sha256:" + "f" * 64), "signature"),
        (ksb_sign.build("prod", 1, ["0.0.0.0/0"], key=KEY), "wider than /16"),
        (p(1, v4=["10.0.0.1;id"]), "only lower-case hex"),
        (dict(p(1), version=2), "version"),
        ("{not json", "not JSON"),
        (None, "expected a mapping"),
    ],
)
def test_refused_payload_changes_nothing(make_module, kernel, payload, reason):
    mod = make_module()
    ret = mod.apply(payload=payload)
    assert not ret["applied"] and reason in ret["reason"] and mod.__context__["retcode"] == 1
    assert kernel.mutations == [] and not os.path.exists(mod.__pillar__["kube_allowlist"]["cache_dir"] + "/prod.json")


def test_missing_signing_key_is_refused(make_module):
    mod = make_module(signing_key=None)
    ret = mod.apply(payload=p(1))
    assert "signing_key is not set" in ret["reason"] and mod.__context__["retcode"] == 1


def test_invalid_pillar_fails_with_retcode_2(make_module):
    mod = make_module(rules=[{"name": "pg", "clusters": ["prod"], "ports": [70000]}])
    ret = mod.apply(payload=p(1))
    assert "rules[0]:ports[0]" in ret["reason"] and mod.__context__["retcode"] == 2


def test_cluster_without_rule_is_not_configured_here(make_module, kernel):
    mod = make_module()
    ret = mod.apply(payload=ksb_sign.build("other", 1, V4, key=KEY))
    assert ret["reason"].startswith("not configured here") and mod.__context__["retcode"] == 0
    assert (ret["applied"], ret["changed"], kernel.mutations) == (True, False, [])


def bridge_ok(ret, retcode):
    """The bridge's verdict on a job return (src/salt/interpret.ts): retcode 0, success not false
    (Salt sets success = retcode == 0), a dict that does not say applied: false."""
    return retcode == 0 and isinstance(ret, dict) and ret.get("applied") is not False


@pytest.mark.parametrize(
    "name,first,second,ok,reason",
    [
        ("applied", None, p(1), True, "applied generation 1"),
        ("already current", p(1), p(1), True, "already current at generation 1"),
        ("not configured here", None, ksb_sign.build("other", 1, V4, key=KEY), True, "not configured here"),
        ("stale", p(2), p(1), False, "stale: generation 1 is older"),
        ("refused", None, dict(p(1), signature="hmac-sha256:" + "0" * 64), False, "refused: "),
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
    assert bridge_ok(ret, mod.__context__["retcode"]) is ok, ret


def test_pull_of_unconfigured_cluster_reads_as_success(make_module, tmp_path):
    mod = make_module(clusters={"prod": {}, "other": {"kubeconfig": str(tmp_path / "none")}})
    ret = mod.pull("other")
    assert ret["reason"].startswith("not configured here") and bridge_ok(ret, mod.__context__["retcode"])


def test_empty_list_refused_unless_allowed(make_module, kernel):
    empty = p(1, v4=[], v6=[])
    mod = make_module()
    assert mod.apply(payload=empty)["reason"].startswith("refused: empty")
    assert mod.__context__["retcode"] == 1 and kernel.mutations == []
    mod = make_module(clusters={"prod": {"allow_empty": True}})
    assert mod.apply(payload=empty)["applied"]
    assert kernel.sets["ksb-prod-4"][1] == [] and kernel.chains["ipv4"][-1].endswith("-j DROP")


def test_shrink_refused_unless_forced(make_module, kernel):
    mod = make_module()
    mod.apply(payload=p(1))
    kernel.mutations.clear()
    shrunk = p(2, V4[:1], ["fd00::2"])  # 3 of 5 entries go: 60% > 50%
    ret = mod.apply(payload=shrunk)
    assert ret["reason"].startswith("refused: 3 of 5") and mod.__context__["retcode"] == 1
    assert kernel.mutations == []
    ret = mod.apply(payload=shrunk, force=True)
    assert ret["applied"] and ret["removed"] == V4[1:]
    assert make_module(max_shrink=0.7).apply(payload=p(3, V4[:1], ["fd00::3"]))["applied"]


def test_cache_is_written_atomically_and_shown(make_module):
    mod = make_module()
    mod.apply(payload=p(4))
    cache_dir = mod.__pillar__["kube_allowlist"]["cache_dir"]
    assert sorted(os.listdir(cache_dir)) == [".lock", "prod.json"]
    shown = mod.show()
    assert shown["clusters"]["prod"]["generation"] == 4 and shown["clusters"]["prod"]["ipv4"] == 4
    assert shown["rules"]["pg"]["status"] == "enforced"


def test_corrupt_cache_is_an_actionable_error(make_module):
    mod = make_module()
    mod.apply(payload=p(1))
    path = mod.__pillar__["kube_allowlist"]["cache_dir"] + "/prod.json"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"ipv4": ["0.0.0.0/0"], "ipv6": [], "generation": 1}')
    with pytest.raises(mod.CommandExecutionError, match="delete it and re-send"):
        mod.restore()


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


def test_failed_command_returns_retcode_2(make_module, kernel):
    mod = make_module()

    def broken(argv, stdin=None, **kwargs):
        if argv[:2] == ["ipset", "restore"]:
            return {"retcode": 1, "stdout": "", "stderr": "Kernel error received: ipset protocol error"}
        return kernel(argv, stdin, **kwargs)

    mod.__salt__["cmd.run_all"] = broken
    ret = mod.apply(payload=p(1))
    assert "ipset protocol error" in ret["reason"] and mod.__context__["retcode"] == 2
