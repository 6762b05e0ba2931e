"""
kube-salt-bridge's Salt extension: the minion side of docs/event-contract.md (version 2).

Loaded by Salt through the ``salt.loader`` entry point (this package's ``modules``, ``states`` and
``runners`` directories); the pure helpers under ``utils`` are imported directly by those modules.

The same sources also reach minions by ``saltutil.sync_all`` (the fallback for minions that cannot
install packages, see the file_roots shims). Where the package is installed as well, Salt's loader
may import this file from the synced copy first (it puts ``<extension_modules>/utils`` on
``sys.path``); the package's path then points at the installed copy, so an installed extension
always serves and the two never mix.
"""

import importlib.metadata
import pathlib

__version__ = "0.1.0"

try:
    _installed = pathlib.Path(
        str(importlib.metadata.distribution("saltext.kube-allowlist").locate_file("saltext/kube_allowlist"))
    )
except importlib.metadata.PackageNotFoundError:
    _installed = None
if _installed is not None and _installed.is_dir() and _installed.resolve() != pathlib.Path(__file__).resolve().parent:
    __path__ = [str(_installed)]


def fallback_virtual(impl, opts):
    """
    The ``__virtual__`` of the file_roots shims: stand aside where the package is installed (the
    installed extension serves), else hand the shim's loader opts to ``impl`` (which reads them as
    its own ``__opts__``) and answer with ``impl.__virtual__()``.
    """
    try:
        importlib.metadata.distribution("saltext.kube-allowlist")
    except importlib.metadata.PackageNotFoundError:
        impl.__opts__ = opts
        return impl.__virtual__()
    return (False, "kube_allowlist: served by the installed saltext.kube_allowlist package")
