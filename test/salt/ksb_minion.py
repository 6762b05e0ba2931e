"""
A masterless Salt minion for real-kernel tests: config dir, pillar, ``salt-call --local`` inside a
network namespace, and an in-process ``salt.client.Caller`` batch runner for long update series.
The minion loads ``kube_allowlist`` the production way: from the ``saltext.kube_allowlist`` package
installed into the Salt venv (scripts/setup.sh), found through its ``salt.loader`` entry point. Its
``file_roots`` is the repository's ``salt/file_roots`` (the formula; ``saltutil.sync_all`` there is
the fallback ``test_fallback_netns.py`` proves).
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import yaml

FILE_ROOTS = pathlib.Path(__file__).resolve().parents[2] / "salt" / "file_roots"

BATCH = textwrap.dedent(
    """
    import json, sys
    import salt.client, salt.config
    opts = salt.config.minion_config(sys.argv[1])
    caller = salt.client.Caller(mopts=opts)
    results = []
    for line in open(sys.argv[2]):
        results.append(caller.cmd("kube_allowlist.apply", payload=json.loads(line)))
    print(json.dumps(results))
    """
)


class Minion:
    """Config + pillar for one test; ``call`` runs salt-call in ``netns`` (or the root ns)."""

    def __init__(self, root, extmods, netns=None, python=None):
        self.root = pathlib.Path(root)
        self.netns = netns
        # salt-call of this venv, or salt-call run by another Python (test_fallback_netns.py).
        self.salt_call = [python, "-c", "import salt.scripts; salt.scripts.salt_call()"] if python else ["salt-call"]
        self.python = python or sys.executable
        self.cfg = self.root / "cfg"
        self.pillar_dir = self.root / "pillar"
        self.cache_dir = self.root / "kube_allowlist"
        # Where the module puts its files without a pillar cache_dir: <cachedir>/kube_allowlist.
        self.default_cache_dir = self.root / "cache" / "kube_allowlist"
        for directory in (self.cfg, self.pillar_dir):
            directory.mkdir(parents=True, exist_ok=True)
        config = {
            "id": "ksb-test-minion",
            "file_client": "local",
            "file_roots": {"base": [str(FILE_ROOTS)]},
            "pillar_roots": {"base": [str(self.pillar_dir)]},
            "cachedir": str(self.root / "cache"),
            "extension_modules": str(extmods),
            "pki_dir": str(self.root / "pki"),
            "sock_dir": str(self.root / "sock"),
            "log_file": str(self.root / "minion.log"),
            "log_level_logfile": "info",
        }
        (self.cfg / "minion").write_text(yaml.safe_dump(config))
        (self.pillar_dir / "top.sls").write_text("base:\n  '*':\n    - ksb\n")

    def set_pillar(self, kube_allowlist):
        """Write pillar ``kube_allowlist`` (cache_dir defaults to this minion's temp dir)."""
        value = dict({"cache_dir": str(self.cache_dir)}, **kube_allowlist)
        (self.pillar_dir / "top.sls").write_text("base:\n  '*':\n    - ksb\n")
        (self.pillar_dir / "ksb.sls").write_text(yaml.safe_dump({"kube_allowlist": value}))

    def clear_pillar(self):
        """No pillar at all, as a minion booting without its master sees it."""
        (self.pillar_dir / "top.sls").write_text("base: {}\n")
        (self.pillar_dir / "ksb.sls").unlink(missing_ok=True)

    def _prefix(self):
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def call(self, fun, *args, **kwargs):
        """Run ``salt-call --local fun args key=json`` and return ``(exit code, return value)``."""
        argv = self._prefix() + [
            *self.salt_call,
            "--local",
            "--retcode-passthrough",
            "--out=json",
            "--log-level=quiet",
            f"--config-dir={self.cfg}",
            fun,
            *args,
        ]
        argv += [f"{k}={json.dumps(v)}" for k, v in kwargs.items()]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        try:
            out = json.loads(res.stdout)["local"]
        except (ValueError, KeyError) as err:
            raise AssertionError(f"salt-call {fun}: rc={res.returncode}\n{res.stdout}\n{res.stderr}") from err
        return res.returncode, out

    def apply_batch(self, payloads, path):
        """Apply payloads in order with one in-process Caller (real loader); return their results."""
        path = pathlib.Path(path)
        path.write_text("".join(json.dumps(p) + "\n" for p in payloads))
        argv = self._prefix() + [self.python, "-c", BATCH, str(self.cfg / "minion"), str(path)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout.splitlines()[-1])


def check_installed(root):
    """Prove that salt-call serves kube_allowlist from the installed package with nothing synced;
    return the (empty) extension_modules directory the minions get."""
    extmods = pathlib.Path(root) / "extmods"
    minion = Minion(root, extmods)
    code, out = minion.call("sys.list_functions", "kube_allowlist")
    want = {f"kube_allowlist.{f}" for f in ("apply", "show", "pull", "restore", "forget", "flush")}
    assert code == 0 and want <= set(out), out
    assert not (extmods / "modules").exists(), "nothing was synced"
    return extmods
