"""
``saltutil.sync_all`` fallback: serves the ``saltext.kube_allowlist`` state module from the synced
sources (see ``_modules/kube_allowlist.py``); stands aside where the package is installed.
"""

from saltext.kube_allowlist import fallback_virtual as _fallback_virtual
from saltext.kube_allowlist.states import kube_allowlist_mod as _impl

__virtualname__ = "kube_allowlist"


def __virtual__():
    return _fallback_virtual(_impl, __opts__)


def restored(name):
    return _impl.restored(name)


def flushed(name):
    return _impl.flushed(name)


for _fun in (restored, flushed):
    _fun.__doc__ = getattr(_impl, _fun.__name__).__doc__
