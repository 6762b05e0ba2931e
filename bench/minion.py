"""
Part 3 of the benchmark: the minion side of one large payload, with the shipped Salt utils
(salt/_utils, loaded with importlib as test/salt/ksb_loader.py does it; no Salt minion needed).

python bench/minion.py PAYLOAD.json KEY ITERATIONS  -> prints one JSON object (times in ms).
"""
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "salt"))
import ksb_loader  # noqa: E402  pylint: disable=wrong-import-position


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
    utils, _ = ksb_loader.load_utils()
    payload_u, config_u, firewall = utils["payload"], utils["config"], utils["firewall"]
    payload = json.loads(text)
    cluster = payload["cluster"]
    config = config_u.load(
        {
            "signing_key": key,
            "backend": "ipset",
            "clusters": {cluster: {}},
            "rules": [{"name": "redis", "clusters": [cluster], "proto": "tcp", "ports": [6379], "others": "drop"}],
        },
        payload_u.parse_entry,
        "/nonexistent/kube_allowlist",
    )

    def verify():
        return payload_u.verify(json.loads(text), key, config["max_prefix"], config["max_entries"])

    view = verify()
    lists = {"ipv4": view["ipv4"], "ipv6": view["ipv6"]}
    desired = firewall.desired_state(config, {cluster: lists})
    empty_kernel = {
        "ipset": {},
        "ipv4": firewall.parse_iptables_save(""),
        "ipv6": firewall.parse_iptables_save(""),
        "nft": None,
    }
    changes = {firewall.ipset_name(cluster, f): (f, lists[f]) for f in ("ipv4", "ipv6")}
    script = firewall.ipset_script(changes, set(), desired["maxelem"])
    first = firewall.plan("ipset", desired, empty_kernel)

    # One node joined: the kernel holds the list without the last IPv4 and IPv6 node address;
    # the module reads it back (ipset save), parses it and compares before rendering.
    before = {"ipv4": lists["ipv4"][:-1], "ipv6": lists["ipv6"][:-1]}
    save_lines = []
    for fam in ("ipv4", "ipv6"):
        name = firewall.ipset_name(cluster, fam)
        save_lines.append(f"create {name} hash:net family {firewall.IPSET_FAMILY[fam]} hashsize 1024 maxelem 65536")
        save_lines += [f"add {name} {e}" for e in before[fam]]
    save_text = "\n".join(save_lines) + "\n"

    chains = {
        fam: "\n".join(
            ["*filter", f":{firewall.CHAIN} - [0:0]", f"-A INPUT -j {firewall.CHAIN}"]
            + firewall.iptables_lines(desired, fam, per_ip=False)
            + ["COMMIT"]
        )
        for fam in ("ipv4", "ipv6")
    }

    def incremental():
        current = {
            "ipset": firewall.parse_ipset_save(save_text),
            "ipv4": firewall.parse_iptables_save(chains["ipv4"]),
            "ipv6": firewall.parse_iptables_save(chains["ipv6"]),
            "nft": None,
        }
        return firewall.plan("ipset", desired, current)

    inc = incremental()
    print(json.dumps({
        "python": sys.version.split()[0],
        "entries": {"ipv4": len(lists["ipv4"]), "ipv6": len(lists["ipv6"])},
        "payloadBytes": len(text.encode()),
        "jsonLoadsMs": timed(iterations, lambda: json.loads(text)),
        "verifyMs": timed(iterations, verify),
        "ipsetScriptMs": timed(iterations, lambda: firewall.ipset_script(changes, set(), desired["maxelem"])),
        "ipsetScriptBytes": len(script.encode()),
        "ipsetScriptLines": script.count("\n"),
        "planFirstMs": timed(iterations, lambda: firewall.plan("ipset", desired, empty_kernel)),
        "planFirstSteps": [s["desc"] for s in first],
        "planOneJoinMs": timed(iterations, incremental),
        "planOneJoinSteps": [s["desc"] for s in inc],
    }))


if __name__ == "__main__":
    main(sys.argv)
