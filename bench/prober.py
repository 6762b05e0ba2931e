"""
Streaming TCP prober for the end-to-end benchmarks, run inside the "node host" namespace.

prober.py SRC DST[,DST...] PORT WANT INTERVAL_S TIMEOUT_S MAX_S
    Starts a new connection attempt from SRC to each DST:PORT every INTERVAL_S (non-blocking, so
    attempts overlap; several destinations are staggered over the interval) and sends a Redis PING
    on each; an attempt succeeds on +PONG and fails when it is not connected within TIMEOUT_S (a
    dropped SYN). Prints "ready" once started, then one JSON line per destination once its state
    is WANT, and exits when every destination is there:
      WANT=accept: the first successful attempt; "ago_ms" = time since it completed (~0).
      WANT=drop:   three consecutive attempts (in start order) failed and none after the first of
                   them succeeded; "ago_ms" = time since that first failed attempt was started.
    Also "attempts" (to that destination), and "dst" when more than one destination is given.
    A destination that has reached WANT is no longer probed. After MAX_S, prints {"ok": null} for
    each destination not there and exits 1.

A single long-lived process keeps the probe cheap (one python, ~50 connects/s per destination),
unlike one process per attempt, and gives INTERVAL_S resolution.
"""

import json
import selectors
import socket
import sys
import time


class Target:
    """The attempts to one destination and their results."""

    def __init__(self, dst, first_at):
        self.dst = dst
        self.family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        self.attempts = {}  # seq -> dict(sock, start, state)
        self.results = {}  # seq -> (ok, start, end)
        self.seq = 0
        self.next_at = first_at
        self.done = False


def reached(t, want):
    """Return the JSON line for ``t`` when its state is WANT, else None."""
    if want == "accept":
        ends = [r[2] for r in t.results.values() if r[0]]
        if ends:
            return {"ok": True, "ago_ms": (time.monotonic() - min(ends)) * 1000, "attempts": t.seq}
        return None
    order = sorted(t.results)
    first = None
    for k in order:
        if not t.results[k][0] and first is None:
            first = k
        elif t.results[k][0]:
            first = None
    if first is not None and sum(1 for k in order if k >= first) >= 3:
        return {"ok": False, "ago_ms": (time.monotonic() - t.results[first][1]) * 1000, "attempts": t.seq}
    return None


def main(argv):
    src, dsts, port, want = argv[1], argv[2].split(","), int(argv[3]), argv[4]
    interval, timeout, max_s = float(argv[5]), float(argv[6]), float(argv[7])
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    targets = [Target(d, started + interval * i / len(dsts)) for i, d in enumerate(dsts)]
    print("ready", flush=True)

    def emit(t, line):
        if len(targets) > 1:
            line = {"dst": t.dst, **line}
        print(json.dumps(line), flush=True)

    def finish(t, k, ok):
        a = t.attempts.pop(k)
        try:
            sel.unregister(a["sock"])
        except (KeyError, ValueError):
            pass
        a["sock"].close()
        t.results[k] = (ok, a["start"], time.monotonic())

    def retire(t):
        t.done = True
        for k in list(t.attempts):
            finish(t, k, False)

    while time.monotonic() - started < max_s:
        now = time.monotonic()
        live = [t for t in targets if not t.done]
        if not live:
            return 0
        for t in live:
            if now >= t.next_at:
                s = socket.socket(t.family, socket.SOCK_STREAM)
                s.setblocking(False)
                s.bind((src, 0))
                s.connect_ex((t.dst, port))
                t.attempts[t.seq] = {"sock": s, "start": now, "state": "connecting"}
                sel.register(s, selectors.EVENT_WRITE, (t, t.seq))
                t.seq += 1
                t.next_at = now + interval
        wake = min(t.next_at for t in live)
        for key, _ in sel.select(timeout=max(0.0, min(wake - time.monotonic(), 0.005))):
            t, k = key.data
            a = t.attempts.get(k)
            if a is None:
                continue
            s = a["sock"]
            if a["state"] == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    finish(t, k, False)
                    continue
                a["state"] = "reading"
                s.send(b"PING\r\n")
                sel.modify(s, selectors.EVENT_READ, (t, k))
            else:
                try:
                    data = s.recv(64)
                except OSError:
                    data = b""
                finish(t, k, data.startswith(b"+PONG"))
        now = time.monotonic()
        for t in live:
            for k in [k for k, a in t.attempts.items() if a["state"] == "connecting" and now - a["start"] > timeout]:
                finish(t, k, False)
            for k in [k for k, a in t.attempts.items() if now - a["start"] > 5 * timeout]:
                finish(t, k, False)  # connected but no PONG: neither state, count as failed late
            line = reached(t, want)
            if line is not None:
                emit(t, line)
                retire(t)
    for t in targets:
        if not t.done:
            emit(t, {"ok": None, "attempts": t.seq})
    return 0 if all(t.done for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
