"""
Where one minion apply job's CPU goes, without a master: run inside a network namespace of its own
(its firewall is the one changed), in the Salt venv's python.

apply_profile.py PUBLIC_KEY BACKEND SERIES.jsonl [--profile FILE] [--variant cmd.run_all]

Builds the minion's loader once (as salt-minion has it when a job arrives), then per payload of the
series (one JSON per line, generations rising, each changing the list) forks a child the way the
minion forks a job process: the child looks ``kube_allowlist.apply`` up (the lazy loader loads the
module and its imports in the child, as in every job), applies the payload and exits; the parent
reads the child's CPU time (user + system, its firewall commands included) from ``wait4``. The
first apply fills the firewall and is not counted. Prints one JSON object: the CPU ms of each
apply, the wall ms of the lookup and of the call. With ``--profile FILE`` the last apply runs under
cProfile (dumped to FILE). ``--variant`` patches the loaded module first (see ``_patch``).
"""

import cProfile
import json
import os
import sys
import tempfile
import time

import salt.config
import salt.loader


def _patch(fun, variants):
    """
    Measure the module against a variant of itself without editing it: ``cmd.run_all`` puts back
    how it ran its firewall commands before (``salt.utils.path.which`` at every use, 9 lookups per
    ipset apply, and each command through ``__salt__["cmd.run_all"]``), so the same run shows what
    the module's own ``utils.command`` (``which`` once per tool and job, ``run``) saves.
    """
    if "cmd.run_all" in variants:
        import salt.utils.path  # pylint: disable=import-outside-toplevel

        module = fun.func.__globals__
        salt_funcs = module["__salt__"]

        def run(tools, argv, stdin=None):  # pylint: disable=unused-argument
            return salt_funcs["cmd.run_all"](
                argv,
                python_shell=False,
                stdin=stdin,
                ignore_retcode=True,
                output_loglevel="quiet",
                env={"LC_ALL": "C"},
            )

        module["_run"] = run
        module["_which"] = lambda tools, name: salt.utils.path.which(name)


def main(argv):
    profile = None
    if "--profile" in argv:
        i = argv.index("--profile")
        profile = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    variants = set()
    if "--variant" in argv:
        i = argv.index("--variant")
        variants = set(argv[i + 1].split(","))
        argv = argv[:i] + argv[i + 2 :]
    key, backend, series = argv[1], argv[2], argv[3]
    with open(series, encoding="utf-8") as handle:
        payloads = [json.loads(line) for line in handle if line.strip()]
    cluster = payloads[0]["cluster"]
    root = tempfile.mkdtemp(prefix="ksb-apply-profile-")
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "root_dir": root,
            "cachedir": os.path.join(root, "cache"),
            "pki_dir": os.path.join(root, "pki"),
            "file_client": "local",
            "id": "profile",
        }
    )
    opts["grains"] = salt.loader.grains(opts)
    opts["pillar"] = {
        "kube_allowlist": {
            "public_keys": [key],
            "backend": backend,
            "clusters": {cluster: {}},
            "max_shrink": 1,
            "rules": [{"name": "redis", "clusters": [cluster], "proto": "tcp", "ports": [6379], "others": "drop"}],
        }
    }
    utils = salt.loader.utils(opts)
    funcs = salt.loader.minion_mods(opts, utils=utils)
    out = {"entries": len(payloads[0]["ipv4"]) + len(payloads[0]["ipv6"]), "cpuMs": [], "lookupMs": [], "callMs": []}
    # The first apply fills the firewall (not measured); each later one changes it by one Node.
    for it, payload in enumerate(payloads):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            t0 = time.perf_counter()
            fun = funcs["kube_allowlist.apply"]
            t1 = time.perf_counter()
            _patch(fun, variants)
            prof = cProfile.Profile() if profile and it == len(payloads) - 1 else None
            if prof:
                prof.enable()
            ret = fun(payload=payload)
            if prof:
                prof.disable()
                prof.dump_stats(profile)
            t2 = time.perf_counter()
            os.write(write, json.dumps({"lookup": (t1 - t0) * 1000, "call": (t2 - t1) * 1000, "ret": ret}).encode())
            os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 1 << 16):
            data += chunk
        os.close(read)
        _, status, usage = os.wait4(pid, 0)
        child = json.loads(data)
        # The first apply may find the list in place already (a previous run in the same namespace).
        if status != 0 or not child["ret"].get("applied") or not (it == 0 or child["ret"].get("changed")):
            raise SystemExit(f"apply {it} did not change the firewall: {json.dumps(child['ret'])[:500]}")
        if it == 0:
            continue
        out["cpuMs"].append((usage.ru_utime + usage.ru_stime) * 1000)
        out["lookupMs"].append(child["lookup"])
        out["callMs"].append(child["call"])
    print(json.dumps({"backend": backend, **out}))


if __name__ == "__main__":
    main(sys.argv)
