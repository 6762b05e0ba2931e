// /healthz (the process and its loop are alive), /readyz (every cluster synced and salt-api
// reachable), /metrics (Prometheus text), /status (JSON behind `kube-salt-bridge status`),
// POST /release (operator override of a held publish, behind `kube-salt-bridge release`).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HttpDeps {
  registry: Registry;
  /** Why the bridge is not ready, or an empty list when it is. */
  notReady(): string[];
  status(): unknown;
  /** Operator override of a held publish (POST /release?cluster=NAME[&digest=sha256:...]). */
  release?(cluster: string, digest: string | undefined): { released: boolean; message: string };
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { host, port: Number(listen.slice(i + 1)) };
}

export function startHttp(listen: string, deps: HttpDeps): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://bridge');
    const path = url.pathname;
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method === 'POST' && path === '/release' && deps.release) {
      const cluster = url.searchParams.get('cluster');
      if (!cluster) return send(400, 'text/plain', 'release needs ?cluster=NAME\n');
      const r = deps.release(cluster, url.searchParams.get('digest') ?? undefined);
      return send(r.released ? 200 : 409, 'application/json', JSON.stringify(r) + '\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    switch (path) {
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz': {
        const reasons = deps.notReady();
        return reasons.length === 0 ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', reasons.map((r) => `not ready: ${r}`).join('\n') + '\n');
      }
      case '/metrics':
        deps.registry.metrics().then(
          (text) => send(200, deps.registry.contentType, text),
          (err: Error) => send(500, 'text/plain', `metrics failed: ${err.message}\n`),
        );
        return;
      case '/status':
        return send(200, 'application/json', JSON.stringify(deps.status(), null, 2) + '\n');
      default:
        return send(404, 'text/plain', 'not found: try /healthz /readyz /metrics /status\n');
    }
  });
  const { host, port } = parseListen(listen);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
