"""
``saltutil.sync_all`` fallback (``salt-run saltutil.sync_all`` on the master): serves the
``saltext.kube_allowlist`` runner from the synced sources (see ``_modules/kube_allowlist.py``);
stands aside where the package is installed.
"""

from saltext.kube_allowlist import fallback_virtual as _fallback_virtual
from saltext.kube_allowlist.runners import kube_allowlist_mod as _impl

__virtualname__ = "kube_allowlist"


def __virtual__():
    return _fallback_virtual(_impl, __opts__)


def summarize(returns):
    return _impl.summarize(returns)


def status(tgt="I@kube_allowlist:clusters:*", tgt_type="compound", timeout=None):
    return _impl.status(tgt=tgt, tgt_type=tgt_type, timeout=timeout)


for _fun in (summarize, status):
    _fun.__doc__ = getattr(_impl, _fun.__name__).__doc__
