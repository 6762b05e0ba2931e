"""Shared fixtures for the Salt content tests (unit level; the netns tests have their own)."""

import random
import signal

import pytest
import salt._logging.impl
import salt.utils.path

import ksb_sign
import netlab
from fake_kernel import FakeKernel
from ksb_minion import sync_all
from ksb_loader import load_module, load_utils

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


@pytest.fixture(name="utils")
def fixture_utils():
    """The util modules by short name (payload, config, policy, firewall, kube)."""
    return load_utils()[0]


@pytest.fixture(name="kernel")
def fixture_kernel():
    return FakeKernel()


@pytest.fixture(name="make_module")
def fixture_make_module(tmp_path, kernel, monkeypatch):
    """Factory: ``make_module(**pillar_overrides)`` -> execution module on the fake kernel."""
    monkeypatch.setattr(salt.utils.path, "which", lambda name: f"/usr/sbin/{name}")

    def make(**overrides):
        return load_module(base_pillar(tmp_path, **overrides), kernel, tmp_path / "minion-cache")

    def bare():
        """The module as ``salt-call --local`` at boot sees it: no kube_allowlist pillar at all."""
        return load_module(None, kernel, tmp_path / "minion-cache")

    make.bare = bare
    return make


@pytest.fixture(scope="session", name="extmods")
def fixture_extmods(tmp_path_factory):
    """Real-kernel tests: check namespaces work (fail, never skip), clean stale ones, sync modules."""
    problem = netlab.require_netns()
    if problem:
        pytest.fail(f"real-kernel tests cannot run: {problem}")
    netlab.remove_stale_namespaces()
    return sync_all(tmp_path_factory.mktemp("sync"))


@pytest.fixture(name="lab")
def fixture_lab(request, extmods):  # pylint: disable=unused-argument
    """A fresh minion/nodes namespace pair, deleted at teardown."""
    lab = netlab.Lab(f"t{random.randrange(10**6)}")
    request.addfinalizer(lab.close)
    return lab.start()
