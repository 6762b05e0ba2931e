"""
The fast path of the minion's payload validation (``payload.parse_entry`` recognises canonical hosts
with string checks) against the path through ``ipaddress`` alone. Every apply validates each entry
twice (the payload, then the cached list re-read under the lock).

python bench/minion_proposals.py PAYLOAD.json  (a full payload, e.g. 5,000 dual-stack Nodes)
    Times both on the payload's lists. That both answer alike (value or message) is tested in
    test/salt/test_payload.py, on random addresses of every kind and the edge cases.
"""

import json
import sys
import time

from saltext.kube_allowlist.utils import payload as P

# parse_entry now has the fast path in front; _parse_entry_ipaddress is the path through ipaddress alone.
parse_entry_fast = P.parse_entry
parse_entry_slow = P._parse_entry_ipaddress  # pylint: disable=protected-access


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
    with open(argv[1], encoding="utf-8") as handle:
        time_both(json.load(handle))


if __name__ == "__main__":
    main(sys.argv)
