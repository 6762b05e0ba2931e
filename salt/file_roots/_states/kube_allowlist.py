"""
``saltutil.sync_all`` fallback: serves the ``saltext.kube_allowlist`` state module from the synced
sources (see ``_modules/kube_allowlist.py``); stands aside where the package is installed.
"""

import importlib.metadata

from saltext.kube_allowlist.states import kube_allowlist_mod as _impl

__virtualname__ = "kube_allowlist"


def __virtual__():
    try:
        importlib.metadata.distribution("saltext.kube-allowlist")
    except importlib.metadata.PackageNotFoundError:
        # The loader's per-module opts, which the implementation reads as its own __opts__.
        _impl.__opts__ = __opts__
        return _impl.__virtual__()
    return (False, "kube_allowlist: served by the installed saltext.kube_allowlist package")


def restored(name):
    return _impl.restored(name)


def flushed(name):
    return _impl.flushed(name)


for _fun in (restored, flushed):
    _fun.__doc__ = getattr(_impl, _fun.__name__).__doc__
