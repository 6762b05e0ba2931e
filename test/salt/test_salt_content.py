"""Reactor, master.d snippets, pillar.example, runner: rendered and checked with Salt's own code."""

import pathlib

import pytest
import salt.client
import salt.config
import salt.loader
import salt.template
import salt.utils.minions
import yaml

from saltext.kube_allowlist.runners import kube_allowlist_mod as runner

import ksb_sign

SALT_DIR = pathlib.Path(__file__).resolve().parents[2] / "salt"
FILE_ROOTS = SALT_DIR / "file_roots"
MASTER_D = SALT_DIR / "conf" / "master.d"

TAG = "kube-salt-bridge/cluster/prod/nodes"


@pytest.fixture(scope="module", name="renderers")
def fixture_renderers():
    opts = salt.config.minion_config(None)
    opts.update(file_client="local", file_roots={"base": [str(FILE_ROOTS)]})
    return opts, salt.loader.render(opts, {})


def render_reactor(renderers, data, tag="salt/run/20261122100000000000/ret"):
    opts, funcs = renderers
    return salt.template.compile_template(
        str(FILE_ROOTS / "reactor" / "kube_allowlist.sls"),
        funcs,
        "jinja|yaml",
        opts["renderer_blacklist"],
        opts["renderer_whitelist"],
        data=data,
        tag=tag,
    )


def runner_ret(fun_args, **extra):
    """The salt/run/<jid>/ret event of a runner.event.send job, as the master fires it."""
    data = {
        "fun": "runner.event.send",
        "jid": "20261122100000000000",
        "user": "kube-salt-bridge",
        "fun_args": fun_args,
        "return": True,
        "success": True,
        "_stamp": "2026-11-22T10:00:00.2",
    }
    data.update(extra)
    return data


def reaction(renderers, data):
    """``(tgt, payload)`` of the rendered reaction, or None when it renders nothing."""
    out = dict(render_reactor(renderers, data))
    if not out:
        return None
    assert list(out) == ["kube_allowlist_apply"]
    args = [dict(item) for item in out["kube_allowlist_apply"]["local.kube_allowlist.apply"]]
    assert args[1] == {"tgt_type": "compound"}
    return args[0]["tgt"], args[2]["kwarg"]["payload"]


def test_reactor_passes_a_5000_node_payload_through_unchanged(renderers):
    v4 = [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(1, 5001)]
    v6 = [f"fd00::{i:x}" for i in range(1, 5001)]
    data = dict(ksb_sign.build("prod", 9, v4, v6), _stamp="2026-11-22T10:00:00.123456")
    for fun_args in ([{"tag": TAG, "data": data}], [TAG, {"data": data}]):
        assert reaction(renderers, runner_ret(fun_args)) == ("I@kube_allowlist:clusters:prod", data)


def test_reactor_passes_a_delta_through_unchanged(renderers):
    """A delta payload (no ipv4/ipv6: base_digest, added, removed) reaches the minions as it was fired,
    with or without the minions hint of a targeted re-send."""
    base = ([f"10.0.{i >> 8}.{i & 255}" for i in range(1, 300)], ["fd00::1"])
    data = ksb_sign.build_delta("prod", 9, base, (base[0][1:] + ["10.9.0.1"], ["fd00::1", "fd00::2"]))
    hinted = dict(data, minions=["db-1"])
    for fun_args in ([{"tag": TAG, "data": data}], [TAG, {"data": data}]):
        assert reaction(renderers, runner_ret(fun_args)) == ("I@kube_allowlist:clusters:prod", data)
    assert reaction(renderers, runner_ret([{"tag": TAG, "data": hinted}])) == (
        "I@kube_allowlist:clusters:prod and L@db-1",
        hinted,
    )


P = {"version": 2, "cluster": "prod"}


@pytest.mark.parametrize(
    "event,target",
    [
        (
            runner_ret([{"tag": TAG, "data": dict(P, minions=["db-1", "a.b_c"])}]),
            "I@kube_allowlist:clusters:prod and L@db-1,a.b_c",
        ),
        (
            runner_ret([{"tag": TAG, "data": dict(P, minions=["m"] * 1000)}]),
            "I@kube_allowlist:clusters:prod and L@" + ",".join(["m"] * 1000),
        ),
        # the target is never taken from the data
        (
            runner_ret([{"tag": TAG, "data": dict(P, target="*", tgt="*", tgt_type="glob")}]),
            "I@kube_allowlist:clusters:prod",
        ),
        # hints that do not narrow, or are not a list of ids: nothing
        *[
            (runner_ret([{"tag": TAG, "data": dict(P, minions=h)}]), None)
            for h in (
                ["*"],
                ["x or *"],
                ["E@.*"],
                ["a", "b c"],
                ["a\n"],
                ["a,b"],
                [""],
                ["x" * 129],
                ["m"] * 1001,
                [],
                "db-1",
                {"db-1": 1},
                None,
                [1],
            )
        ],
        # not our tag, not a DNS label, or a trailing newline: nothing
        *[
            (runner_ret([{"tag": t, "data": P}]), None)
            for t in (
                "kube-salt-bridge/cluster/x or */nodes",
                "kube-salt-bridge/cluster/-x/nodes",
                TAG + "\n",
                "kube-salt-bridge/cluster/Prod/nodes",
                "kube-salt-bridge/check",
                "x" + TAG,
                TAG + "/x",
                7,
            )
        ],
        # forwarded by a minion (event.send with preload tricks), failed, other runner, positional data
        (runner_ret([{"tag": TAG, "data": P}], cmd="_minion_event", id="m1"), None),
        (runner_ret([{"tag": TAG, "data": P}], id="m1"), None),
        (runner_ret([{"tag": TAG, "data": P}], success=False), None),
        (runner_ret([{"tag": TAG, "data": P}], **{"return": False}), None),
        (runner_ret([{"tag": TAG, "data": P}], fun="runner.state.orchestrate"), None),
        (runner_ret([TAG, P]), None),
        (runner_ret([{"tag": TAG, "data": P, "x": 1}]), None),
        (runner_ret([{"tag": TAG, "data": [P]}]), None),
        (runner_ret("x"), None),
        (dict(P, minions=["a"]), None),
    ],
)
def test_reactor_targets_the_tags_cluster_only(renderers, event, target):
    got = reaction(renderers, event)
    assert (got and got[0]) == target


def test_reactor_config_maps_runner_returns_only():
    conf = yaml.safe_load((MASTER_D / "reactor.conf").read_text())
    assert conf["reactor"] == [{"salt/run/*/ret": ["salt://reactor/kube_allowlist.sls"]}]


CHECK_TAG = "kube-salt-bridge/check"


@pytest.mark.parametrize(
    "fun,arg,kwarg,allowed",
    [
        ("event.send", [], {"tag": TAG, "data": {}}, True),
        ("event.send", [TAG], {"data": {}}, True),
        ("event.send", [], {"tag": "kube-salt-bridge/cluster/a-1/nodes"}, True),
        ("event.send", [], {"tag": CHECK_TAG, "data": {"id": "x"}}, True),
        ("event.send", [CHECK_TAG], {}, True),
        ("event.send", [], {"tag": "kube-salt-bridge/checkx"}, False),
        ("event.send", ["kube-salt-bridge/checkx"], {}, False),
        ("event.send", [], {"tag": CHECK_TAG + "/x"}, False),
        ("event.send", [], {"tag": CHECK_TAG + "\n"}, False),
        ("event.send", [], {"tag": "x" + CHECK_TAG}, False),
        ("event.send", [], {"tag": "kube-salt-bridge/"}, False),
        ("event.send", [], {"tag": "kube-salt-bridge/cluster/x/nodes/y"}, False),
        ("event.send", [], {"tag": "kube-salt-bridge/cluster/prod/nodes/x"}, False),
        ("event.send", [], {"tag": TAG + "\n"}, False),
        ("event.send", [], {"tag": "kube-salt-bridge/cluster/-x/nodes"}, False),
        ("event.send", [], {"tag": "salt/minion/x/start"}, False),
        ("event.send", ["salt/minion/x/start"], {}, False),
        ("event.send", [], {"tag": "kube-salt-bridge/cluster/../nodes"}, False),
        ("event.send", [], {"data": {}}, False),
        ("event.send_xyz", [], {"tag": TAG}, False),
        ("event.send_xyz", [], {"tag": CHECK_TAG}, False),
        ("state.orchestrate", [], {"mods": "x"}, False),
        ("state.orchestrate", [], {"tag": CHECK_TAG}, False),
        ("salt.cmd", ["cmd.run", "id"], {}, False),
        ("cmd.run", ["id"], {}, False),
    ],
)
def test_eauth_acl_allows_only_our_event_tags(fun, arg, kwarg, allowed):
    """The master's own check (ClearFuncs.runner -> CkMinions.runner_check) on our ACL: the cluster
    tags and the anchored `kube-salt-bridge check` probe tag, through event.send only."""
    conf = yaml.safe_load((MASTER_D / "eauth.conf").read_text())
    (auth_list,) = [u["kube-salt-bridge"] for u in conf["external_auth"].values() if "kube-salt-bridge" in u]
    checker = salt.utils.minions.CkMinions(salt.config.master_config(None))
    assert bool(checker.runner_check(auth_list, fun, {"arg": arg, "kwarg": kwarg})) is allowed
    assert checker.auth_check(auth_list, "cmd.run", ["id"], "*") is False
    assert checker.wheel_check(auth_list, "key.accept", {"arg": [], "kwarg": {"match": "*"}}) is False


def test_api_config_uses_tls():
    conf = yaml.safe_load((MASTER_D / "api.conf").read_text())["rest_cherrypy"]
    assert conf["ssl_crt"] and conf["ssl_key"] and "disable_ssl" not in conf


def test_pillar_example_is_valid_and_documents_every_option(utils):
    text = (SALT_DIR / "pillar.example").read_text()
    pillar = yaml.safe_load(text)["kube_allowlist"]
    config = utils["config"].load(pillar, utils["payload"].parse_entry, "/var/cache/x")
    assert [r["name"] for r in config["rules"]] == ["postgres", "redis"]
    options = set(utils["config"].DEFAULTS) | {"cache_dir", "clusters", "rules"}
    options |= {
        "kubeconfig",
        "context",
        "address_types",
        "families",
        "timeout",
        "allow_empty",
        "max_shrink",
        "public_keys",
        "name",
        "proto",
        "ports",
        "others",
        "extra_sources",
    }
    assert [o for o in sorted(options) if f"{o}:" not in text] == []
    assert "# signing_key:" in text and "signing_key" not in pillar, "the removed v1 key is documented as removed"
    for function in ("forget", "restore persisted=True"):
        assert f"kube_allowlist.{function}" in text
    # The example's key is a placeholder: copied verbatim it fails closed, naming the entry.
    with pytest.raises(ValueError, match=r"^kube_allowlist:public_keys\[0\]: not valid base64"):
        utils["payload"].key_ring(config["public_keys"], "kube_allowlist:public_keys")


@pytest.mark.parametrize(
    ("name", "slss"), [("kube_allowlist", ("init", "boot", "clean")), ("kube_salt_bridge", ("init", "clean"))]
)
def test_formula_files_follow_template_formula_conventions(name, slss):
    formula = FILE_ROOTS / name
    assert {p.name for p in formula.iterdir()} >= {f"{sls}.sls" for sls in slss} | {"map.jinja", "defaults.yaml"}
    for sls in slss:
        ids = [
            line.rstrip(":")
            for line in (formula / f"{sls}.sls").read_text().splitlines()
            if line and not line[0].isspace() and line.endswith(":") and line != "include:"
        ]
        assert ids and all(i.startswith(f"{name}-{sls}-") for i in ids), ids


def test_runner_summarize_flags_minions_behind():
    show = lambda gen: {"clusters": {"prod": {"generation": gen, "digest": f"sha256:{gen}"}}}  # noqa: E731
    report = runner.summarize({"db1": show(7), "db2": show(5), "db3": "'kube_allowlist.show' is not available."})
    assert report["clusters"]["prod"]["newest"] == 7
    assert report["clusters"]["prod"]["behind"] == ["db2"]
    assert report["clusters"]["prod"]["minions"]["db1"] == {
        "generation": 7,
        "digest": "sha256:7",
        "applied_at": None,
        "behind": False,
    }
    assert list(report["errors"]) == ["db3"]


def test_runner_status_through_the_real_runner_loader(monkeypatch):
    """salt-run kube_allowlist.status as the master loads it (the installed extension): it asks the
    targeted minions for show() with the master's own opts and summarises their answers."""
    opts = salt.config.master_config(None)
    runners = salt.loader.runner(opts)
    calls = []

    class Client:
        def cmd(self, tgt, fun, tgt_type, timeout):
            calls.append((tgt, fun, tgt_type, timeout))
            return {"db1": {"clusters": {"prod": {"generation": 3, "digest": "sha256:3"}}}}

    def get_local_client(mopts):
        assert isinstance(mopts, dict) and mopts["conf_file"] == opts["conf_file"], type(mopts)
        return Client()

    monkeypatch.setattr(salt.client, "get_local_client", get_local_client)
    report = runners["kube_allowlist.status"]()
    assert calls == [("I@kube_allowlist:clusters:*", "kube_allowlist.show", "compound", opts["timeout"])]
    assert report["clusters"]["prod"]["newest"] == 3 and report["errors"] == {}
