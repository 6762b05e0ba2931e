#!/usr/bin/env python3
"""TCP probes for the real-stack tests, run inside a "node host" network namespace.

probe.py once SRC DST PORT [TIMEOUT]
    One connection from SRC to DST:PORT; sends a Redis PING and expects +PONG.
    Prints a JSON line {"ok": bool, "error": str|null}; always exits 0.
probe.py loop SRC DST PORT SECONDS [INTERVAL]
    New connections back to back for SECONDS (or until SIGTERM); prints
    {"attempts": n, "failures": n, "errors": [...first few...]}.
"""

import json
import signal
import socket
import sys
import time


def attempt(src, dst, port, timeout):
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect((dst, port))
        s.sendall(b"PING\r\n")
        data = s.recv(64)
        if not data.startswith(b"+PONG"):
            return f"unexpected reply {data[:20]!r}"
        return None
    except OSError as err:
        return f"{type(err).__name__}: {err}"
    finally:
        s.close()


def main(argv):
    mode = argv[1]
    src, dst, port = argv[2], argv[3], int(argv[4])
    if mode == "once":
        timeout = float(argv[5]) if len(argv) > 5 else 1.0
        err = attempt(src, dst, port, timeout)
        print(json.dumps({"ok": err is None, "error": err}))
        return
    seconds = float(argv[5])
    interval = float(argv[6]) if len(argv) > 6 else 0.01
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    attempts, failures, errors = 0, 0, []
    deadline = time.monotonic() + seconds
    while not stop[0] and time.monotonic() < deadline:
        attempts += 1
        err = attempt(src, dst, port, 1.0)
        if err is not None:
            failures += 1
            if len(errors) < 5:
                errors.append(err)
        time.sleep(interval)
    print(json.dumps({"attempts": attempts, "failures": failures, "errors": errors}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
