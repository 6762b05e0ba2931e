// Minimal JSON-over-HTTPS for harness code (client certificates and a private CA).
import { request } from 'node:https';

export interface HttpsOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  contentType?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  timeoutMs?: number;
}

export class HttpError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(message: string, status: number, body: string) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function httpsJson<T = unknown>(url: string, o: HttpsOptions = {}): Promise<T> {
  const u = new URL(url);
  const method = o.method ?? 'GET';
  const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
  return new Promise<T>((resolve, reject) => {
    const r = request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        headers: {
          accept: 'application/json',
          ...o.headers,
          ...(payload ? { 'content-type': o.contentType ?? 'application/json', 'content-length': String(payload.length) } : {}),
        },
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 300) {
            reject(new HttpError(`${method} ${u.pathname} → ${status}: ${text.slice(0, 500)}`, status, text));
            return;
          }
          try {
            resolve((text ? JSON.parse(text) : {}) as T);
          } catch {
            resolve(text as T);
          }
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error(`${method} ${u.pathname}: timeout`)));
    r.on('error', reject);
    if (payload) r.write(payload);
    r.end();
  });
}
