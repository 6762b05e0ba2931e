"""
``saltutil.sync_all`` fallback for minions that cannot install the ``saltext.kube_allowlist``
package into Salt's Python: this shim serves the package's execution module from the sources that
the same sync put under ``<extension_modules>/utils/saltext/kube_allowlist`` (this file_roots
tree's ``_utils``). Where the package is installed, the installed extension serves
``kube_allowlist`` and this shim stands aside, so the two never mix.
"""

from saltext.kube_allowlist import fallback_virtual as _fallback_virtual
from saltext.kube_allowlist.modules import kube_allowlist_mod as _impl

__virtualname__ = "kube_allowlist"


def __virtual__():
    return _fallback_virtual(_impl, __opts__)


def apply(payload=None, force=False, tag=None, **kwargs):
    return _impl.apply(payload=payload, force=force, tag=tag, **kwargs)


def show():
    return _impl.show()


def pull(cluster, force=False):
    return _impl.pull(cluster, force=force)


def restore(persisted=False, cache_dir=None, test=False):
    return _impl.restore(persisted=persisted, cache_dir=cache_dir, test=test)


def forget(cluster):
    return _impl.forget(cluster)


def flush(cluster=None, test=False):
    return _impl.flush(cluster=cluster, test=test)


for _fun in (apply, show, pull, restore, forget, flush):
    _fun.__doc__ = getattr(_impl, _fun.__name__).__doc__
