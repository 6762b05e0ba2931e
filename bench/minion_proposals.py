"""
The fast path of the minion's payload validation (``payload.parse_entry`` recognises canonical hosts
with string checks) against the path through ``ipaddress`` alone. Every apply validates each entry
twice (the payload, then the cached list re-read under the lock).

python bench/minion_proposals.py PAYLOAD.json  (a full payload, e.g. 5,000 dual-stack Nodes)
    Checks that both answer alike (value or message) on 200,000 random addresses of every kind and
    on edge cases, then times both on the payload's lists.
"""

import ipaddress
import json
import random
import sys
import time

from saltext.kube_allowlist.utils import payload as P

# parse_entry now has the fast path in front; _parse_entry_ipaddress is the path through ipaddress alone.
parse_entry_fast = P.parse_entry
parse_entry_slow = P._parse_entry_ipaddress  # pylint: disable=protected-access


def same(v, fam):
    """The candidate gives the same value, or the same error, as parse_entry."""
    try:
        a = ("ok", parse_entry_slow(v, fam, None, "entry"))
    except P.PayloadError as e:
        a = ("err", str(e))
    try:
        b = ("ok", parse_entry_fast(v, fam))
    except P.PayloadError as e:
        b = ("err", str(e))
    assert a == b, (v, fam, a, b)


def check():
    """Fails unless the candidate answers as parse_entry on random and edge-case text."""
    rnd = random.Random(1)
    for _ in range(200000):
        if rnd.random() < 0.5:
            choices = [rnd.getrandbits(32), rnd.randint(0, 255) << 24, 0, 0xE0000000 + rnd.getrandbits(28), 0xEFFFFFFF]
            v = str(ipaddress.IPv4Address(rnd.choice(choices)))
        else:
            choices = [
                rnd.getrandbits(128),
                rnd.getrandbits(16) << 112,
                0,
                1,
                (0xFF00 + rnd.randint(0, 255)) << 112,
                0xFFFF << 32 | rnd.getrandbits(32),
                rnd.getrandbits(64),
            ]
            v = str(ipaddress.IPv6Address(rnd.choice(choices)))
        for fam in (None, "ipv4", "ipv6"):
            same(v, fam)
    edge = ["0.0.0.0", "::", "224.0.0.1", "239.255.255.255", "240.0.0.1", "ff02::1", "fe80::1", "::ffff:1.2.3.4"]
    edge += ["::ffff:102:304", "01.2.3.4", "1.2.3.4 ", "FD00::1", "fd00:0::1", "::1", "1.2.3.4/32", "10.0.0.0/8"]
    for v in edge:
        for fam in (None, "ipv4", "ipv6"):
            same(v, fam)
    print("the fast path answers as ipaddress does on 200,000 random addresses and the edge cases")


def time_both(payload):
    paths = (
        ("through ipaddress", lambda e, f, m: parse_entry_slow(e, f, m, "entry")),
        ("parse_entry (fast path)", parse_entry_fast),
    )
    for name, fn in paths:
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            for fam in ("ipv4", "ipv6"):
                for e in payload[fam]:
                    fn(e, fam, None)
            ts.append((time.perf_counter() - t) * 1000)
        print(f"{name}: {len(payload['ipv4'])}+{len(payload['ipv6'])} entries, median of 5: {sorted(ts)[2]:.1f} ms")


def main(argv):
    check()
    with open(argv[1], encoding="utf-8") as handle:
        time_both(json.load(handle))


if __name__ == "__main__":
    main(sys.argv)
