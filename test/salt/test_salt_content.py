"""Reactor, master.d snippets, pillar.example, runner: rendered and checked with Salt's own code."""

import pathlib

import pytest
import salt.config
import salt.loader
import salt.template
import salt.utils.minions
import yaml

import ksb_sign
from ksb_loader import SALT_DIR, load_file

TAG = "kube-salt-bridge/cluster/prod/nodes"


@pytest.fixture(scope="module", name="renderers")
def fixture_renderers():
    opts = salt.config.minion_config(None)
    opts.update(file_client="local", file_roots={"base": [str(SALT_DIR)]})
    return opts, salt.loader.render(opts, {})


def render_reactor(renderers, data):
    opts, funcs = renderers
    return salt.template.compile_template(
        str(SALT_DIR / "reactor" / "kube_allowlist.sls"), funcs, "jinja|yaml",
        opts["renderer_blacklist"], opts["renderer_whitelist"], data=data, tag=TAG,
    )


def test_reactor_passes_a_5000_node_payload_through_unchanged(renderers):
    v4 = [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(1, 5001)]
    v6 = [f"fd00::{i:x}" for i in range(1, 5001)]
    data = dict(ksb_sign.build("prod", 9, v4, v6, target="G@role:db and I@kube_allowlist:clusters:prod"),
                _stamp="2026-11-22T10:00:00.123456")
    reaction = render_reactor(renderers, data)
    assert list(reaction) == ["kube_allowlist_apply"]
    args = [dict(item) for item in reaction["kube_allowlist_apply"]["local.kube_allowlist.apply"]]
    assert args[:2] == [{"tgt": data["target"]}, {"tgt_type": "compound"}]
    assert args[2]["kwarg"]["payload"] == data


def test_reactor_config_maps_the_contract_tag():
    conf = yaml.safe_load((SALT_DIR / "master.d" / "reactor.conf").read_text())
    assert conf["reactor"] == [{"kube-salt-bridge/cluster/*/nodes": ["salt://reactor/kube_allowlist.sls"]}]


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
    conf = yaml.safe_load((SALT_DIR / "master.d" / "eauth.conf").read_text())
    auth_list = conf["external_auth"]["sharedsecret"]["kube-salt-bridge"]
    checker = salt.utils.minions.CkMinions(salt.config.master_config(None))
    assert bool(checker.runner_check(auth_list, fun, {"arg": arg, "kwarg": kwarg})) is allowed
    assert checker.auth_check(auth_list, "cmd.run", ["id"], "*") is False
    assert checker.wheel_check(auth_list, "key.accept", {"arg": [], "kwarg": {"match": "*"}}) is False


def test_api_config_uses_tls():
    conf = yaml.safe_load((SALT_DIR / "master.d" / "api.conf").read_text())["rest_cherrypy"]
    assert conf["ssl_crt"] and conf["ssl_key"] and "disable_ssl" not in conf


def test_pillar_example_is_valid_and_documents_every_option(utils):
    text = (SALT_DIR / "pillar.example").read_text()
    pillar = yaml.safe_load(text)["kube_allowlist"]
    config = utils["config"].load(pillar, utils["payload"].parse_entry, "/var/cache/x")
    assert [r["name"] for r in config["rules"]] == ["postgres", "redis"]
    options = set(utils["config"].DEFAULTS) | {"signing_key", "cache_dir", "clusters", "rules"}
    options |= {"kubeconfig", "context", "address_types", "families", "timeout", "allow_empty", "max_shrink",
                "signing_key", "name", "proto", "ports", "others", "extra_sources"}
    assert [o for o in sorted(options) if f"{o}:" not in text] == []


def test_formula_files_follow_template_formula_conventions():
    formula = SALT_DIR / "kube_allowlist"
    assert {p.name for p in formula.iterdir()} >= {"init.sls", "clean.sls", "map.jinja", "defaults.yaml"}
    for sls in ("init", "clean"):
        ids = [line.rstrip(":") for line in (formula / f"{sls}.sls").read_text().splitlines()
               if line and not line[0].isspace() and line.endswith(":")]
        assert ids and all(i.startswith(f"kube_allowlist-{sls}-") for i in ids), ids


def test_runner_summarize_flags_minions_behind():
    runner = load_file(SALT_DIR / "_runners" / "kube_allowlist.py", "ksbtest_runner")
    show = lambda gen: {"clusters": {"prod": {"generation": gen, "digest": f"sha256:{gen}"}}}  # noqa: E731
    report = runner.summarize({"db1": show(7), "db2": show(5), "db3": "'kube_allowlist.show' is not available."})
    assert report["clusters"]["prod"]["newest"] == 7
    assert report["clusters"]["prod"]["behind"] == ["db2"]
    assert report["clusters"]["prod"]["minions"]["db1"] == {
        "generation": 7, "digest": "sha256:7", "applied_at": None, "behind": False}
    assert list(report["errors"]) == ["db3"]
