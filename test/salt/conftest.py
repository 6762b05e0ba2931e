"""Shared fixtures for the Salt content tests (unit level; the netns tests have their own)."""

import random
import signal
import sys

import pytest
import salt._logging.impl
import salt.config
import salt.loader

from saltext.kube_allowlist.utils import command, config, firewall, ipset, iptables, kube, nftables, payload, policy

import ksb_minion
import ksb_sign
import netlab
from fake_kernel import FakeKernel

KEY = ksb_sign.SEED
PUBLIC_KEY = ksb_sign.public_hex(KEY)

# Salt's import-time deferred log handler flushes at exit into pytest's closed capture stream;
# drop it so records go through pytest's own logging capture.
salt._logging.impl.shutdown_temp_handler()


def pytest_sessionstart(session):  # pylint: disable=unused-argument
    """SIGTERM or SIGHUP (a cancelled CI run) ends the session the way Ctrl-C does.

    Python's default action for those signals exits at once, so no fixture finalizer runs and the
    namespaces and listeners of the test in progress stay behind; a KeyboardInterrupt lets pytest
    finish the session, which tears every fixture down.
    """

    def interrupt(signum, frame):  # pylint: disable=unused-argument
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def base_pillar(tmp_path, **overrides):
    """A pillar with one tcp rule on 5432 for cluster prod (both families) and a cache in tmp."""
    pillar = {
        "public_keys": [PUBLIC_KEY],
        "cache_dir": str(tmp_path / "cache"),
        "clusters": {"prod": {}},
        "rules": [{"name": "pg", "clusters": ["prod"], "proto": "tcp", "ports": [5432]}],
    }
    pillar.update(overrides)
    return pillar


UTILS = {
    "payload": payload,
    "config": config,
    "policy": policy,
    "firewall": firewall,
    "kube": kube,
    "command": command,
    "ipset": ipset,
    "iptables": iptables,
    "nftables": nftables,
}


class LoadedModule:
    """The ``kube_allowlist`` execution module as Salt's own loader loads it (the installed extension,
    found through its ``salt.loader`` entry point); the ``make_module`` fixture runs its firewall
    commands on the fake kernel.

    ``mod.apply(...)`` calls ``kube_allowlist.apply`` through the loader; ``__pillar__`` and
    ``__context__`` are the very objects the loaded module sees.
    """

    def __init__(self, pillar, cachedir):
        opts = salt.config.minion_config(None)
        opts.update(
            cachedir=str(cachedir), file_client="local", pillar={} if pillar is None else {"kube_allowlist": pillar}
        )
        self.__dict__["__context__"] = {}
        self.__dict__["funcs"] = salt.loader.minion_mods(opts, context=self.__context__, whitelist=["kube_allowlist"])
        assert "kube_allowlist.apply" in self.funcs, self.funcs.missing_fun_string("kube_allowlist.apply")
        self.__dict__["__pillar__"] = self.funcs.pack["__pillar__"]
        self.__dict__["module"] = sys.modules[self.funcs["kube_allowlist.apply"].__module__]
        self.__dict__["opts"] = opts

    def state(self, name, test=False):
        """Call state function ``kube_allowlist.<name>`` as Salt's state loader loads it, over this
        execution module, with ``test`` as a state run sets it."""
        opts = dict(self.opts, test=test)
        states = salt.loader.states(
            opts, self.funcs, salt.loader.utils(opts), salt.loader.serializers(opts), context=self.__context__
        )
        return states[f"kube_allowlist.{name}"](f"ksb-{name}")

    def __getattr__(self, name):
        return self.funcs[f"kube_allowlist.{name}"]


@pytest.fixture(name="utils")
def fixture_utils():
    """The extension's pure helpers by short name, imported from the installed package."""
    return UTILS


@pytest.fixture(name="kernel")
def fixture_kernel():
    return FakeKernel()


@pytest.fixture(name="which")
def fixture_which(monkeypatch):
    """Every firewall tool is found, at ``/usr/sbin/<name>`` (the path the fake kernel expects as
    the executable); ``which.missing`` are not; ``which.calls`` are the names looked up."""

    def which(name):
        which.calls.append(name)
        return None if name in which.missing else f"/usr/sbin/{name}"

    which.calls, which.missing = [], set()
    monkeypatch.setattr(command, "which", which)
    return which


@pytest.fixture(name="make_module")
def fixture_make_module(tmp_path, kernel, which, monkeypatch):  # pylint: disable=unused-argument
    """Factory: ``make_module(**pillar_overrides)`` -> execution module on the fake kernel (its
    firewall commands, ``command.run``, go to ``kernel``)."""
    monkeypatch.setattr(command, "run", kernel)

    def make(**overrides):
        return LoadedModule(base_pillar(tmp_path, **overrides), tmp_path / "minion-cache")

    def bare():
        """The module as ``salt-call --local`` at boot sees it: no kube_allowlist pillar at all."""
        return LoadedModule(None, tmp_path / "minion-cache")

    make.bare = bare
    return make


@pytest.fixture(scope="session", name="extmods")
def fixture_extmods(tmp_path_factory):
    """Real-kernel tests: check namespaces work (fail, never skip), clean stale ones, check that
    salt-call finds the installed extension. Returns an (empty) extension_modules directory: the
    minions load kube_allowlist from the installed package, nothing is synced."""
    problem = netlab.require_netns()
    if problem:
        pytest.fail(f"real-kernel tests cannot run: {problem}")
    netlab.remove_stale_namespaces()
    return ksb_minion.check_installed(tmp_path_factory.mktemp("installed"))


@pytest.fixture(name="lab")
def fixture_lab(request, extmods):  # pylint: disable=unused-argument
    """A fresh minion/nodes namespace pair, deleted at teardown."""
    lab = netlab.Lab(f"t{random.randrange(10**6)}")
    request.addfinalizer(lab.close)
    return lab.start()
