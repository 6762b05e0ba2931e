// What several real-stack tests ask of a running SaltStack: the allow-lists on its bus, a barrier
// on the (ordered) bus, and raw requests to its salt-api.
import { request } from 'node:https';
import type { AllowListPayload } from '../../src/seams.ts';
import type { BusEvent, SaltStack } from './salt.ts';

/** The payloads published under `tag`, from bus index `since` on. */
export function payloadsOf(salt: SaltStack, tag: string, since = 0): AllowListPayload[] {
  return salt.events
    .slice(since)
    .filter((e) => e.tag === tag)
    .map((e) => e.data as unknown as AllowListPayload);
}

/**
 * Waits for an event under `tag` whose `ipv4` is `ipv4` (in any order), at bus index `since` or
 * later, that also satisfies `match` when given.
 */
export function waitForAllowList(
  salt: SaltStack,
  tag: string,
  ipv4: readonly string[],
  o: { what?: string; since?: number; timeoutMs?: number; match?: (e: BusEvent) => boolean } = {},
): Promise<BusEvent> {
  const want = JSON.stringify([...ipv4].sort());
  const since = o.since ?? 0;
  return salt.waitForEvent(
    o.what ?? `${tag} = ${want}`,
    (e) => salt.events.indexOf(e) >= since && e.tag === tag && (o.match?.(e) ?? true) && JSON.stringify(e.data.ipv4) === want,
    o.timeoutMs ?? 20_000,
  );
}

let barriers = 0;
/** Fires a unique event through the master and waits until the bus reader has it: the bus is ordered, so anything fired before it has been read too. */
export async function busBarrier(salt: SaltStack): Promise<void> {
  const tag = `ksb-test/barrier/${++barriers}`;
  await salt.saltRun('event.send', [tag]);
  await salt.waitForEvent(`barrier ${tag}`, (e) => e.tag === tag, 20_000);
}

export interface ApiAnswer {
  status: number;
  text: string;
  json: unknown;
  authToken: string | undefined;
}

/**
 * One raw request to the real salt-api (`ca`: its CA certificate); never throws for an HTTP
 * status. With `headersOnly`, a 200 is answered from the headers alone (an event stream never ends).
 */
export function saltApi(
  salt: SaltStack,
  ca: Buffer,
  method: string,
  path: string,
  o: { body?: unknown; token?: string; headersOnly?: boolean; timeoutMs?: number } = {},
): Promise<ApiAnswer> {
  const u = new URL(salt.apiUrl);
  const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
  return new Promise((resolve, reject) => {
    const r = request(
      {
        hostname: u.hostname,
        port: u.port,
        path,
        method,
        ca,
        timeout: o.timeoutMs ?? 30_000,
        headers: {
          accept: o.headersOnly ? 'text/event-stream' : 'application/json',
          ...(o.token ? { 'x-auth-token': o.token } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const authToken = res.headers['x-auth-token'] as string | undefined;
        if (o.headersOnly && status === 200) {
          res.destroy();
          resolve({ status, text: '', json: undefined, authToken });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status, text, json, authToken });
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error(`${method} ${path}: timeout`)));
    r.on('error', reject);
    if (payload) r.write(payload);
    r.end();
  });
}
