"""
The ``saltutil.sync_all`` fallback, for minions and masters that cannot install packages into
Salt's Python: a Salt whose Python does not have ``saltext.kube_allowlist`` installed syncs the
shims (file_roots ``_modules``, ``_states``, ``_runners``) and the package's sources (``_utils``)
from ``salt/file_roots`` and then serves the very same module, state and runner from there: the
formula with ``install: {method: sync}`` converges a real firewall in a namespace (real TCP
connections), the runner summarises from the synced sources. Where the package is installed the
installed extension serves and the synced shims stand aside.
"""

import json
import os
import pathlib
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import yaml

import ksb_sign
from ksb_minion import FILE_ROOTS, Minion
from netlab import NODES_V4 as V4
from netlab import NODES_V6 as V6

WHERE = textwrap.dedent(
    """
    import json, sys
    import salt.config, salt.loader
    opts = salt.config.minion_config(sys.argv[1])
    funcs = salt.loader.minion_mods(opts, whitelist=["kube_allowlist"])
    shim = sys.modules[funcs["kube_allowlist.apply"].__module__]
    impl = getattr(shim, "_impl", shim)
    import saltext.kube_allowlist.utils.payload as payload
    print(json.dumps({"shim": shim.__file__, "impl": impl.__file__, "utils": payload.__file__}))
    """
)


@pytest.fixture(scope="module", name="bare_python")
def fixture_bare_python(tmp_path_factory):
    """A Python with this venv's packages (Salt and its dependencies) but without the extension."""
    root = tmp_path_factory.mktemp("nosaltext")
    view = root / "site"
    view.mkdir()
    purelib = pathlib.Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        if entry.name == "saltext" or entry.name.lower().startswith("saltext_kube_allowlist"):
            continue
        (view / entry.name).symlink_to(entry)
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)  # pylint: disable=protected-access
    python = root / "venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    pathlib.Path(site, "ksb-view.pth").write_text(f"{view}\n")
    check = textwrap.dedent(
        """
        import importlib.metadata as m, importlib.util, salt.version
        assert importlib.util.find_spec("saltext") is None
        try:
            m.distribution("saltext.kube-allowlist")
        except m.PackageNotFoundError:
            print("bare")
        """
    )
    probe = subprocess.run([str(python), "-c", check], capture_output=True, text=True)
    assert probe.stdout.strip() == "bare", probe.stderr
    return str(python)


def test_formula_sync_fallback_serves_the_synced_sources(lab, extmods, bare_python, tmp_path):  # pylint: disable=unused-argument
    minion = Minion(tmp_path, tmp_path / "extmods", lab.minion, python=bare_python)
    code, ret = minion.call("sys.list_functions", "kube_allowlist")
    assert (code, ret) == (0, []), "nothing serves kube_allowlist before the sync"
    minion.set_pillar(
        {
            "public_keys": [ksb_sign.public_hex()],
            "clusters": {"prod": {}},
            "rules": [{"name": "pg", "clusters": ["prod"], "ports": [5432]}],
            "install": {"method": "sync"},
            "boot": {"enabled": False},
        }
    )
    code, states = minion.call("state.apply", "kube_allowlist")
    by_id = {v["__id__"]: v for v in states.values()}
    assert code == 0 and "kube_allowlist-init-pip-installed" not in by_id, states
    synced = by_id["kube_allowlist-init-saltutil-sync_all"]
    assert synced["result"] is True and "modules.kube_allowlist" in synced["changes"]["modules"], synced
    assert "states.kube_allowlist" in synced["changes"]["states"], synced
    assert "utils.saltext.kube_allowlist.utils.payload" in synced["changes"]["utils"], synced
    # The state from the synced shim ran (nothing cached yet: nothing to enforce, nothing changed).
    assert by_id["kube_allowlist-init-kube_allowlist-restored"]["result"] is True, states

    code, ret = minion.call("kube_allowlist.apply", payload=ksb_sign.build("prod", 5, V4[:2], V6[:1]))
    assert (code, ret["applied"], ret["changed"]) == (0, True, True), ret
    assert lab.reachable(V4[:3] + V6[:2]) == {V4[0], V4[1], V6[0]}

    where = subprocess.run(
        ["ip", "netns", "exec", lab.minion, bare_python, "-c", WHERE, str(minion.cfg / "minion")],
        capture_output=True,
        text=True,
        check=True,
    )
    files = json.loads(where.stdout.splitlines()[-1])
    ext = tmp_path / "extmods"
    assert files == {
        "shim": str(ext / "modules" / "kube_allowlist.py"),
        "impl": str(ext / "utils" / "saltext" / "kube_allowlist" / "modules" / "kube_allowlist_mod.py"),
        "utils": str(ext / "utils" / "saltext" / "kube_allowlist" / "utils" / "payload.py"),
    }, files


def test_runner_sync_fallback_on_a_master(bare_python, tmp_path):
    """`salt-run saltutil.sync_all` on a master without the package, then the runner from there."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "master").write_text(
        yaml.safe_dump(
            {
                "root_dir": str(tmp_path / "root"),
                "user": "root",
                "file_roots": {"base": [str(FILE_ROOTS)]},
                "log_file": str(tmp_path / "master.log"),
            }
        )
    )
    # What a salt-master creates at start and salt-run then uses (Salt 3008 tracks runner jobs there).
    (tmp_path / "root" / "var" / "cache" / "salt" / "master" / "proc").mkdir(parents=True)
    salt_run = [bare_python, "-c", "import salt.scripts; salt.scripts.salt_run()", "-c", str(cfg), "--out=json"]

    def run(*args):
        res = subprocess.run(
            salt_run + list(args),
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(res.stdout)

    assert "runners.kube_allowlist" in run("saltutil.sync_all")["runners"]
    shown = {"clusters": {"prod": {"generation": 7, "digest": "sha256:7"}}}
    report = run("kube_allowlist.summarize", "returns=" + json.dumps({"db1": shown, "db2": "not available"}))
    assert report["clusters"]["prod"]["newest"] == 7 and list(report["errors"]) == ["db2"], report


def test_installed_extension_wins_over_synced_shims(extmods, tmp_path):  # pylint: disable=unused-argument
    """Both present (a minion that synced once, then got the package): the installed one serves."""
    minion = Minion(tmp_path, tmp_path / "extmods")
    code, out = minion.call("saltutil.sync_modules")
    assert code == 0 and "modules.kube_allowlist" in out, out
    code, out = minion.call("saltutil.sync_utils")
    assert code == 0, out
    where = subprocess.run(
        [sys.executable, "-c", WHERE, str(minion.cfg / "minion")], capture_output=True, text=True, check=True
    )
    files = json.loads(where.stdout.splitlines()[-1])
    purelib = sysconfig.get_paths()["purelib"]
    installed = os.path.join(purelib, "saltext", "kube_allowlist", "modules", "kube_allowlist_mod.py")
    assert files["shim"] == files["impl"] == installed, files
    assert files["utils"].startswith(purelib), files
