// The test network: one Linux bridge in the root namespace with a private /24 and /64 that only
// this run uses, and one network namespace per host (salt-minions, "node hosts") attached to it
// with a veth pair. Traffic stays on this machine, between namespaces the run created itself.
import { run, must, trackLink, trackNetns, untrackNetns, RUN_ID, startDaemon, type Daemon } from './proc.ts';
import { requireTools } from './tools.ts';

export interface Host {
  readonly ns: string;
  readonly ipv4: string;
  readonly ipv6: string;
  /** Runs a command inside the namespace. */
  exec(cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): ReturnType<typeof run>;
  /** Adds an extra address (e.g. a node IP) to the host's interface. */
  addAddress(ip: string): Promise<void>;
  delAddress(ip: string): Promise<void>;
  /** Starts a long-running process inside the namespace. */
  daemon(name: string, cmd: string, args: string[], logFile: string): Daemon;
}

export interface Lab {
  readonly bridge: string;
  readonly gw4: string;
  readonly gw6: string;
  /** The n-th address reserved for node IPs (n in 1..120). */
  nodeIp4(n: number): string;
  nodeIp6(n: number): string;
  addHost(label: string): Promise<Host>;
  stop(): Promise<void>;
}

let labs = 0;

export async function startLab(): Promise<Lab> {
  requireTools(['ip', 'iptables', 'ip6tables', 'ipset', 'nft', 'python3']);
  const idx = labs++;
  const bridge = `ksb${RUN_ID}b${idx}`;
  // Pick a /24 inside 10.213.0.0/16 that no route on this machine covers yet.
  const routes = (await must('ip', ['-4', 'route', 'show'])) + (await must('ip', ['-4', 'addr', 'show']));
  let third = (process.pid % 200) + 20 + idx;
  while (routes.includes(`10.213.${third}.`)) third = (third + 1) % 250;
  const p4 = `10.213.${third}`;
  const p6 = `fd6b:7362:${third.toString(16)}::`;
  const gw4 = `${p4}.1`;
  const gw6 = `${p6}1`;
  trackLink(bridge);
  await must('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await run('sysctl', ['-qw', `net.ipv6.conf.${bridge}.accept_dad=0`]);
  await must('ip', ['addr', 'add', `${gw4}/24`, 'dev', bridge]);
  await must('ip', ['-6', 'addr', 'add', `${gw6}/64`, 'dev', bridge, 'nodad']);
  await must('ip', ['link', 'set', bridge, 'up']);

  const hosts: string[] = [];
  let nextHost = 10;
  return {
    bridge,
    gw4,
    gw6,
    nodeIp4: (n) => `${p4}.${100 + n}`,
    nodeIp6: (n) => `${p6}${(0x100 + n).toString(16)}`,
    async addHost(label) {
      const hostNo = nextHost++;
      const ns = `ksb${RUN_ID}-${label}`;
      const vh = `k${RUN_ID}${idx}h${hostNo}`;
      await run('ip', ['netns', 'del', ns]);
      trackNetns(ns);
      await must('ip', ['netns', 'add', ns]);
      hosts.push(ns);
      trackLink(vh);
      await must('ip', ['link', 'add', vh, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await must('ip', ['link', 'set', vh, 'master', bridge, 'up']);
      const ipv4 = `${p4}.${hostNo}`;
      const ipv6 = `${p6}${hostNo.toString(16)}`;
      const inNs = (args: string[]) => must('ip', ['netns', 'exec', ns, ...args]);
      await inNs(['sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
      await inNs(['sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0']);
      await inNs(['ip', 'link', 'set', 'lo', 'up']);
      await inNs(['ip', 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0']);
      await inNs(['ip', '-6', 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad']);
      await inNs(['ip', 'link', 'set', 'eth0', 'up']);
      return {
        ns,
        ipv4,
        ipv6,
        exec: (cmd, args, opts) => run('ip', ['netns', 'exec', ns, cmd, ...args], opts),
        async addAddress(ip) {
          const v6 = ip.includes(':');
          await inNs(['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', `${ip}/${v6 ? 64 : 24}`, 'dev', 'eth0', ...(v6 ? ['nodad'] : [])]);
        },
        async delAddress(ip) {
          const v6 = ip.includes(':');
          await inNs(['ip', ...(v6 ? ['-6'] : []), 'addr', 'del', `${ip}/${v6 ? 64 : 24}`, 'dev', 'eth0']);
        },
        daemon: (name, cmd, args, logFile) => startDaemon(name, 'ip', ['netns', 'exec', ns, cmd, ...args], { logFile }),
      };
    },
    async stop() {
      for (const ns of hosts) {
        const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean);
        for (const p of pids) {
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await run('ip', ['netns', 'del', ns]);
        untrackNetns(ns);
      }
      await run('ip', ['link', 'del', bridge]);
    },
  };
}
