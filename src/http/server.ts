// /healthz (the process and its loop are alive), /readyz (every cluster synced and salt-api
// reachable), /metrics (Prometheus text), /status (JSON behind `kube-salt-bridge status`),
// POST /release (operator override of a held publish, behind `kube-salt-bridge release`).
//
// Safe to reach from a browser or another local user (guards.ts): every request must name an IP
// literal, localhost or an http.allowedHosts name in Host (DNS rebinding); a POST with an Origin
// is refused; /release needs Content-Type: application/json and the bearer token of
// http.tokenFile (without one it is disabled). Bodies, headers, connections and slow clients are
// bounded (HTTP_LIMITS).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { checkBearer, checkContentLength, checkHost, checkJsonContentType, checkOrigin, MAX_BODY_BYTES, type Verdict } from './guards.ts';

export interface HttpDeps {
  registry: Registry;
  /** Why the bridge is not ready, or an empty list when it is. */
  notReady(): string[];
  status(): unknown;
  /** Operator override of a held publish (POST /release?cluster=NAME[&digest=sha256:...]). */
  release?(cluster: string, digest: string | undefined): { released: boolean; message: string };
}

export interface HttpOptions {
  /** HOST:PORT, [IPv6]:PORT. */
  readonly listen: string;
  /** The bearer token of POST /release; without it /release answers 403 (disabled). */
  readonly token?: { reveal(): string } | undefined;
  /** Names accepted in Host besides IP literals and localhost (lower case, no port). */
  readonly allowedHosts?: readonly string[];
}

/** Bounds of the server (Node's http.Server options). */
export const HTTP_LIMITS = Object.freeze({
  maxConnections: 64,
  /** The whole request head must arrive within this. */
  headersTimeoutMs: 10_000,
  /** The whole request must arrive within this. */
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxHeadersCount: 64,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: MAX_BODY_BYTES,
});

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { host, port: Number(listen.slice(i + 1)) };
}

export function startHttp(options: string | HttpOptions, deps: HttpDeps): Promise<Server> {
  const o: HttpOptions = typeof options === 'string' ? { listen: options } : options;
  const allowedHosts = new Set((o.allowedHosts ?? []).map((h) => h.toLowerCase()));
  const server = createServer(
    {
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
      maxHeaderSize: HTTP_LIMITS.maxHeaderBytes,
      // How often Node checks the two timeouts above (default 30 s would let them slip).
      connectionsCheckingInterval: 1_000,
      requireHostHeader: true,
    },
    (req, res) => {
      handle(req, res, o, allowedHosts, deps).catch((err: Error) => {
        if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${err.message}\n`, true);
        else res.destroy();
      });
    },
  );
  server.maxConnections = HTTP_LIMITS.maxConnections;
  server.maxHeadersCount = HTTP_LIMITS.maxHeadersCount;
  const { host, port } = parseListen(o.listen);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function send(res: ServerResponse, code: number, type: string, body: string, close = false, extra: Record<string, string> = {}): void {
  res.writeHead(code, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...(close ? { connection: 'close' } : {}),
    ...extra,
  });
  res.end(body);
}

function refused(res: ServerResponse, v: Verdict & { ok: false }, extra: Record<string, string> = {}): void {
  send(res, v.status, 'text/plain', `${v.message}\n`, true, extra);
}

async function handle(req: IncomingMessage, res: ServerResponse, o: HttpOptions, allowedHosts: ReadonlySet<string>, deps: HttpDeps): Promise<void> {
  for (const v of [checkHost(req.headers.host, allowedHosts), checkContentLength(req.headers['content-length']), checkOrigin(req.method, req.headers.origin)]) {
    if (!v.ok) return refused(res, v);
  }
  const url = new URL(req.url ?? '/', 'http://bridge');
  const path = url.pathname;

  if (path === '/release' && deps.release) {
    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'POST /release only\n', true, { allow: 'POST' });
    const ct = checkJsonContentType(req.headers['content-type']);
    if (!ct.ok) return refused(res, ct);
    const auth = checkBearer(req.headers.authorization, o.token?.reveal());
    if (!auth.ok) return refused(res, auth, auth.status === 401 ? { 'www-authenticate': 'Bearer realm="kube-salt-bridge"' } : {});
    const body = await readBody(req, HTTP_LIMITS.maxBodyBytes);
    if (body === undefined) return refused(res, { ok: false, status: 413, message: `request body larger than ${HTTP_LIMITS.maxBodyBytes} bytes` });
    const params = releaseParams(url, body);
    if (typeof params === 'string') return send(res, 400, 'text/plain', `${params}\n`, true);
    const r = deps.release(params.cluster, params.digest);
    return send(res, r.released ? 200 : 409, 'application/json', JSON.stringify(r) + '\n');
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', true, { allow: 'GET, HEAD' });
  if ((await readBody(req, HTTP_LIMITS.maxBodyBytes)) === undefined) {
    return refused(res, { ok: false, status: 413, message: `request body larger than ${HTTP_LIMITS.maxBodyBytes} bytes` });
  }
  switch (path) {
    case '/healthz':
      return send(res, 200, 'text/plain', 'ok\n');
    case '/readyz': {
      const reasons = deps.notReady();
      return reasons.length === 0
        ? send(res, 200, 'text/plain', 'ready\n')
        : send(res, 503, 'text/plain', reasons.map((r) => `not ready: ${r}`).join('\n') + '\n');
    }
    case '/metrics':
      try {
        return send(res, 200, deps.registry.contentType, await deps.registry.metrics());
      } catch (err) {
        return send(res, 500, 'text/plain', `metrics failed: ${(err as Error).message}\n`);
      }
    case '/status':
      return send(res, 200, 'application/json', JSON.stringify(deps.status(), null, 2) + '\n');
    default:
      return send(res, 404, 'text/plain', 'not found: try /healthz /readyz /metrics /status\n');
  }
}

/** Reads the body up to `max` bytes; undefined when it is larger (the rest is not read). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** cluster and digest from the query string, or from a JSON object body ({"cluster", "digest"}). */
function releaseParams(url: URL, body: Buffer): { cluster: string; digest: string | undefined } | string {
  let cluster = url.searchParams.get('cluster') ?? undefined;
  let digest = url.searchParams.get('digest') ?? undefined;
  const text = body.toString('utf8').trim();
  if (text !== '') {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return 'the body must be a JSON object';
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'the body must be a JSON object';
    const d = doc as Record<string, unknown>;
    if (d.cluster !== undefined && typeof d.cluster !== 'string') return 'cluster must be a string';
    if (d.digest !== undefined && typeof d.digest !== 'string') return 'digest must be a string';
    cluster ??= d.cluster;
    digest ??= d.digest;
  }
  if (!cluster) return 'release needs a cluster (?cluster=NAME or {"cluster": NAME})';
  return { cluster, digest };
}
