"""
Load the kube_allowlist execution module, its utils and the runner without a Salt minion: each file
is imported with importlib and given the dunders (``__utils__``, ``__salt__``, ``__pillar__``,
``__opts__``, ``__context__``) the Salt loader would inject. Only public functions defined in a util
file are exposed in ``__utils__``, as the loader does.
"""

import importlib.util
import inspect
import pathlib

SALT_DIR = pathlib.Path(__file__).resolve().parents[2] / "salt"
UTILS = ("payload", "config", "policy", "firewall", "kube")


def load_file(path, name):
    """Import one Python file as a fresh module object."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_utils():
    """Return ``(modules, dunder)``: the util modules by short name and the ``__utils__`` mapping."""
    modules, dunder = {}, {}
    for short in UTILS:
        name = f"kube_allowlist_{short}"
        module = load_file(SALT_DIR / "_utils" / f"{name}.py", f"ksbtest_{name}")
        modules[short] = module
        for fname, func in inspect.getmembers(module, inspect.isfunction):
            if not fname.startswith("_") and func.__module__ == module.__name__:
                dunder[f"{name}.{fname}"] = func
    return modules, dunder


def load_module(pillar, run_all, cachedir):
    """Return the execution module wired to ``pillar`` (None: no ``kube_allowlist`` pillar at all)
    and a fake ``cmd.run_all``."""
    _, dunder = load_utils()
    module = load_file(SALT_DIR / "_modules" / "kube_allowlist.py", "ksbtest_kube_allowlist")
    module.__utils__ = dunder
    module.__salt__ = {"cmd.run_all": run_all}
    module.__pillar__ = {} if pillar is None else {"kube_allowlist": pillar}
    module.__opts__ = {"cachedir": str(cachedir)}
    module.__context__ = {}
    return module
