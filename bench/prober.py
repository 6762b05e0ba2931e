"""
Streaming TCP prober for the end-to-end benchmark, run inside the "node host" namespace.

prober.py SRC DST PORT WANT INTERVAL_S TIMEOUT_S MAX_S
    Starts a new connection attempt from SRC to DST:PORT every INTERVAL_S (non-blocking, so
    attempts overlap) and sends a Redis PING on each; an attempt succeeds on +PONG and fails when
    it is not connected within TIMEOUT_S (a dropped SYN). Prints "ready" once started, then one
    JSON line and exits when the state is WANT:
      WANT=accept: the first successful attempt; "ago_ms" = time since it completed (~0).
      WANT=drop:   three consecutive attempts (in start order) failed and none after the first of
                   them succeeded; "ago_ms" = time since that first failed attempt was started.
    Also "attempts". Exits 1 after MAX_S without reaching WANT.

A single long-lived process keeps the probe cheap (one python, ~50 connects/s), unlike one
process per attempt, and gives INTERVAL_S resolution.
"""

import json
import selectors
import socket
import sys
import time


def main(argv):
    src, dst, port, want = argv[1], argv[2], int(argv[3]), argv[4]
    interval, timeout, max_s = float(argv[5]), float(argv[6]), float(argv[7])
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    sel = selectors.DefaultSelector()
    attempts = {}  # seq -> dict(sock, start, state)
    results = {}  # seq -> (ok, start, end)
    seq = 0
    started = time.monotonic()
    next_at = started
    print("ready", flush=True)

    def finish(k, ok):
        a = attempts.pop(k)
        try:
            sel.unregister(a["sock"])
        except (KeyError, ValueError):
            pass
        a["sock"].close()
        results[k] = (ok, a["start"], time.monotonic())

    while time.monotonic() - started < max_s:
        now = time.monotonic()
        if now >= next_at:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((src, 0))
            s.connect_ex((dst, port))
            attempts[seq] = {"sock": s, "start": now, "state": "connecting"}
            sel.register(s, selectors.EVENT_WRITE, seq)
            seq += 1
            next_at = now + interval
        for key, _ in sel.select(timeout=max(0.0, min(next_at - time.monotonic(), 0.005))):
            k = key.data
            a = attempts.get(k)
            if a is None:
                continue
            s = a["sock"]
            if a["state"] == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    finish(k, False)
                    continue
                a["state"] = "reading"
                s.send(b"PING\r\n")
                sel.modify(s, selectors.EVENT_READ, k)
            else:
                try:
                    data = s.recv(64)
                except OSError:
                    data = b""
                finish(k, data.startswith(b"+PONG"))
        now = time.monotonic()
        for k in [k for k, a in attempts.items() if a["state"] == "connecting" and now - a["start"] > timeout]:
            finish(k, False)
        for k in [k for k, a in attempts.items() if now - a["start"] > 5 * timeout]:
            finish(k, False)  # connected but no PONG: neither state, count as failed late
        if want == "accept":
            done = [r for r in results.values() if r[0]]
            if done:
                end = min(r[2] for r in done)
                print(json.dumps({"ok": True, "ago_ms": (time.monotonic() - end) * 1000, "attempts": seq}), flush=True)
                return 0
        else:
            order = sorted(results)
            fails = [k for k in order if not results[k][0]]
            if fails:
                first = None
                for k in order:
                    if not results[k][0] and first is None:
                        first = k
                    elif results[k][0]:
                        first = None
                if first is not None and sum(1 for k in order if k >= first) >= 3:
                    ago = (time.monotonic() - results[first][1]) * 1000
                    print(json.dumps({"ok": False, "ago_ms": ago, "attempts": seq}), flush=True)
                    return 0
    print(json.dumps({"ok": None, "attempts": seq}), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
