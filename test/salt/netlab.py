"""
A two-namespace lab for real-kernel tests: a "minion" namespace with a TCP listener and Salt, a
"nodes" namespace with several source addresses, one veth between them. Names are prefixed
``ksbp<pid>-`` so parallel or crashed sessions never collide; stale ones are removed by
``remove_stale_namespaces``. No traffic leaves these namespaces.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time

PREFIX = f"ksbp{os.getpid()}-"
STALE_RE = re.compile(r"^ksbp(\d+)-")
MINION_V4, MINION_V6 = "10.77.0.1", "fd77::1"
NODES_V4 = [f"10.77.0.{i}" for i in range(11, 16)]
NODES_V6 = [f"fd77::{i}" for i in range(11, 16)]
PORT, OTHER_PORT = 5432, 2222

LISTENER = textwrap.dedent(
    """
    import socket, sys, threading
    def serve(port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port)); s.listen(512)
        while True:
            c, _ = s.accept()
            try: c.sendall(b"ok")
            finally: c.close()
    for p in sys.argv[1:]:
        threading.Thread(target=serve, args=(int(p),), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    """
)

PROBE = textwrap.dedent(
    """
    import json, socket, sys
    from concurrent.futures import ThreadPoolExecutor
    def one(job):
        src, dst, port = job
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(float(sys.argv[2]))
        try:
            s.bind((src, 0)); s.connect((dst, port)); return s.recv(2) == b"ok"
        except OSError:
            return False
        finally:
            s.close()
    jobs = json.loads(sys.argv[1])
    with ThreadPoolExecutor(len(jobs) or 1) as pool:
        print(json.dumps(list(pool.map(one, jobs))))
    """
)

CONNECTOR = textwrap.dedent(
    """
    import json, os, socket, sys, time
    src, dst, port, stop, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    ok = failed = 0; errors = []
    while not os.path.exists(stop):
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(0.5)
        try:
            s.bind((src, 0)); s.connect((dst, port))
            if s.recv(2) != b"ok": raise OSError("bad greeting")
            ok += 1
        except OSError as err:
            failed += 1; errors.append(f"{time.time():.3f} {err}")
        finally:
            s.close()
        time.sleep(0.005)
    json.dump({"ok": ok, "failed": failed, "errors": errors[:20]}, open(out, "w"))
    """
)


def sh(argv, check=True, **kwargs):
    """Run a command, return CompletedProcess with text output; raise with its stderr on failure."""
    res = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def require_netns():
    """Return None when namespaces work here, else a message saying what is missing."""
    if sys.platform != "linux":
        return "real-kernel tests need Linux"
    if os.geteuid() != 0:
        return "real-kernel tests need root (ip netns, iptables, ipset, nft)"
    probe = PREFIX + "probe"
    res = sh(["ip", "netns", "add", probe], check=False)
    if res.returncode != 0:
        return f"'ip netns add' failed: {res.stderr.strip()} (need CAP_SYS_ADMIN and iproute2)"
    sh(["ip", "netns", "del", probe], check=False)
    missing = [t for t in ("ipset", "iptables-restore", "ip6tables-restore", "nft") if not _which(t)]
    return f"missing tools: {', '.join(missing)}" if missing else None


def _which(tool):
    return any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":"))


def remove_stale_namespaces():
    """Delete ``ksbp<pid>-*`` namespaces (and the processes in them) of sessions that are gone."""
    for line in sh(["ip", "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = STALE_RE.match(name)
        if not match or _alive(int(match.group(1))):
            continue
        for pid in sh(["ip", "netns", "pids", name], check=False).stdout.split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), 9)
        sh(["ip", "netns", "del", name], check=False)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lab:
    """Two namespaces joined by a veth; ``minion`` listens on PORT and OTHER_PORT."""

    def __init__(self, tag):
        self.minion = f"{PREFIX}{tag}-m"
        self.nodes = f"{PREFIX}{tag}-n"
        self.procs = []

    def start(self):
        for ns in (self.minion, self.nodes):
            sh(["ip", "netns", "add", ns])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh(
            [
                "ip",
                "link",
                "add",
                "name",
                "ksbm",
                "netns",
                self.minion,
                "type",
                "veth",
                "peer",
                "name",
                "ksbn",
                "netns",
                self.nodes,
            ]
        )
        self._addr(self.minion, "ksbm", [MINION_V4], [MINION_V6])
        self._addr(self.nodes, "ksbn", NODES_V4, NODES_V6)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", self.minion, sys.executable, "-c", LISTENER, str(PORT), str(OTHER_PORT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(listener)
        assert listener.stdout.readline().strip() == "ready"
        self._warm_up()
        return self

    def _warm_up(self, attempts=20):
        """Wait until every source connects (link up, IPv6 neighbour discovery done)."""
        for _ in range(attempts):
            if self.reachable(NODES_V4 + NODES_V6) == set(NODES_V4 + NODES_V6):
                return
            time.sleep(0.25)
        raise RuntimeError("lab: the nodes namespace cannot reach the listener")

    def _addr(self, ns, dev, v4, v6):
        for a in v4:
            sh(["ip", "-n", ns, "addr", "add", f"{a}/24", "dev", dev])
        for a in v6:
            sh(["ip", "-n", ns, "addr", "add", f"{a}/64", "dev", dev, "nodad"])
        sh(["ip", "-n", ns, "link", "set", dev, "up"])

    def close(self):
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for ns in (self.minion, self.nodes):
            sh(["ip", "netns", "del", ns], check=False)

    def run(self, ns, argv, **kwargs):
        """Run ``argv`` inside namespace ``ns``."""
        return sh(["ip", "netns", "exec", ns] + list(argv), **kwargs)

    def connects(self, jobs, timeout=0.6):
        """``jobs``: (source, port) pairs from the nodes ns to the minion -> list of bools."""
        full = [(src, MINION_V6 if ":" in src else MINION_V4, port) for src, port in jobs]
        res = self.run(self.nodes, [sys.executable, "-c", PROBE, json.dumps(full), str(timeout)])
        return json.loads(res.stdout)

    def reachable(self, sources, port=PORT):
        """Return the subset of ``sources`` that can connect to ``port``."""
        return {s for s, ok in zip(sources, self.connects([(s, port) for s in sources]), strict=True) if ok}

    def local_reachable(self, destinations, port=PORT):
        """Return the subset of ``destinations`` (the minion's own addresses) that a client inside
        the minion ns connects to; such traffic arrives on ``lo``."""
        jobs = [(dst, dst, port) for dst in destinations]
        res = self.run(self.minion, [sys.executable, "-c", PROBE, json.dumps(jobs), "0.6"])
        return {d for d, ok in zip(destinations, json.loads(res.stdout), strict=True) if ok}

    def connector(self, source, stop_file, out_file):
        """Start a background connect loop from ``source``; it writes its counts on stop."""
        dst = MINION_V6 if ":" in source else MINION_V4
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.nodes,
                sys.executable,
                "-c",
                CONNECTOR,
                source,
                dst,
                str(PORT),
                stop_file,
                out_file,
            ]
        )
        self.procs.append(proc)
        return proc

    def ruleset(self, nft=("list", "ruleset")):
        """Everything the minion ns firewall holds, as text (for before/after comparisons).

        ``nft`` is what ``nft`` lists: the whole ruleset (which also shows the tables of
        iptables-nft, in the order their chains were created), or e.g. ``("list", "table", "inet",
        "kube_allowlist")`` for our own table only (empty when there is none)."""
        parts = [self.run(self.minion, [c]).stdout for c in ("iptables-save", "ip6tables-save")]
        parts = [re.sub(r"^#.*\n", "", p, flags=re.M) for p in parts]
        # ipset save lists a set's members in hash order, which differs between two sets filled
        # alike: sorted lines compare by content.
        parts.append("\n".join(sorted(self.run(self.minion, ["ipset", "save"]).stdout.splitlines())))
        parts.append(self.run(self.minion, ["nft", *nft], check=False).stdout)
        text = "\n".join(parts)
        for pattern in (r"initval 0x[0-9a-f]+", r"\[\d+:\d+\]", r"packets \d+ bytes \d+"):
            text = re.sub(pattern, "", text)
        return text
