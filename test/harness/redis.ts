// A real redis-server inside a host's namespace, and TCP probes from node addresses to it.
import { join } from 'node:path';
import { ROOT, requireTools } from './tools.ts';
import { waitFor, workDir, type Daemon } from './proc.ts';
import type { Host } from './netns.ts';

export const REDIS_PORT = 6379;

export async function startRedis(host: Host): Promise<Daemon> {
  const bins = requireTools(['redis-server']);
  const dir = workDir(`redis-${host.ns}`);
  const d = host.daemon(
    `redis-${host.ns}`,
    bins['redis-server']!,
    ['--port', String(REDIS_PORT), '--bind', '0.0.0.0 ::', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir],
    join(dir, 'redis.log'),
  );
  await waitFor(`redis in ${host.ns}`, async () => (await probe(host, '127.0.0.1', '127.0.0.1')).ok, 15_000, 200);
  return d;
}

const PROBE = join(ROOT, 'test', 'harness', 'probe.py');

/** One TCP connection + Redis PING from `src` (an address of `from`) to `dst`. */
export async function probe(from: Host, src: string, dst: string, timeoutS = 2): Promise<{ ok: boolean; error: string | null }> {
  const r = await from.exec('python3', [PROBE, 'once', src, dst, String(REDIS_PORT), String(timeoutS)]);
  return JSON.parse(r.stdout) as { ok: boolean; error: string | null };
}
