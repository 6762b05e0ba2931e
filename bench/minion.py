"""
Part 3 of the benchmark: the minion side of one large payload, with the helpers of the Salt
extension saltext.kube_allowlist as installed into the Salt venv (scripts/setup.sh); no Salt minion
needed.

python bench/minion.py PAYLOAD.json PUBLIC_KEY ITERATIONS  -> prints one JSON object (times in ms).
"""

import json
import pathlib
import statistics
import sys
import time

from saltext.kube_allowlist.utils import config as config_u
from saltext.kube_allowlist.utils import firewall, ipset, iptables
from saltext.kube_allowlist.utils import payload as payload_u


def timed(iterations, fn, warmup=2):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    p95 = out[min(len(out) - 1, max(0, -(-95 * len(out) // 100) - 1))]
    return {"n": len(out), "median": statistics.median(out), "p95": p95, "max": out[-1], "min": out[0]}


def main(argv):
    text = pathlib.Path(argv[1]).read_text()
    key, iterations = argv[2], int(argv[3])
    payload = json.loads(text)
    cluster = payload["cluster"]
    config = config_u.load(
        {
            "public_keys": [key],
            "backend": "ipset",
            "clusters": {cluster: {}},
            "rules": [{"name": "redis", "clusters": [cluster], "proto": "tcp", "ports": [6379], "others": "drop"}],
        },
        payload_u.parse_entry,
        "/nonexistent/kube_allowlist",
    )

    keys = payload_u.key_ring(config["public_keys"], "kube_allowlist:public_keys")

    def verify():
        return payload_u.verify(
            json.loads(text), keys, config["max_prefix"], config["max_entries"], config["max_address_space"]
        )

    view = verify()
    lists = {"ipv4": view["ipv4"], "ipv6": view["ipv6"]}
    desired = firewall.desired_state(config, {cluster: lists})
    empty_kernel = {
        "ipset": {},
        "ipv4": iptables.parse_iptables_save(""),
        "ipv6": iptables.parse_iptables_save(""),
        "nft": None,
    }
    changes = {ipset.ipset_name(cluster, f): (f, lists[f]) for f in ("ipv4", "ipv6")}
    script = ipset.ipset_script(changes, set(), desired["maxelem"])
    first = firewall.plan("ipset", desired, empty_kernel)

    # One node joined: the kernel holds the list without the last IPv4 and IPv6 node address;
    # the module reads it back (ipset save), parses it and compares before rendering.
    before = {"ipv4": lists["ipv4"][:-1], "ipv6": lists["ipv6"][:-1]}
    save_lines = []
    for fam in ("ipv4", "ipv6"):
        name = ipset.ipset_name(cluster, fam)
        save_lines.append(f"create {name} hash:net family {ipset.IPSET_FAMILY[fam]} hashsize 1024 maxelem 65536")
        save_lines += [f"add {name} {e}" for e in before[fam]]
    save_text = "\n".join(save_lines) + "\n"

    chains = {
        fam: "\n".join(
            ["*filter", f":{iptables.CHAIN} - [0:0]", f"-A INPUT -j {iptables.CHAIN}"]
            + iptables.iptables_lines(desired, fam, per_ip=False)
            + ["COMMIT"]
        )
        for fam in ("ipv4", "ipv6")
    }

    def incremental():
        current = {
            "ipset": ipset.parse_ipset_save(save_text),
            "ipv4": iptables.parse_iptables_save(chains["ipv4"]),
            "ipv6": iptables.parse_iptables_save(chains["ipv6"]),
            "nft": None,
        }
        return firewall.plan("ipset", desired, current)

    inc = incremental()
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "entries": {"ipv4": len(lists["ipv4"]), "ipv6": len(lists["ipv6"])},
                "payloadBytes": len(text.encode()),
                "jsonLoadsMs": timed(iterations, lambda: json.loads(text)),
                "verifyMs": timed(iterations, verify),
                "ipsetScriptMs": timed(iterations, lambda: ipset.ipset_script(changes, set(), desired["maxelem"])),
                "ipsetScriptBytes": len(script.encode()),
                "ipsetScriptLines": script.count("\n"),
                "planFirstMs": timed(iterations, lambda: firewall.plan("ipset", desired, empty_kernel)),
                "planFirstSteps": [s["desc"] for s in first],
                "planOneJoinMs": timed(iterations, incremental),
                "planOneJoinSteps": [s["desc"] for s in inc],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv)
