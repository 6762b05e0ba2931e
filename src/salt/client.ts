// SaltApiClient: the bridge's one way into salt-api (rest_cherrypy). It logs in with eauth, keeps and
// renews the session token, and fires events through the runner client (`event.send`), which the
// eauth ACL can restrict to our tags. The webhook (/hook) is not used: it copies every request
// header, X-Auth-Token included, into the event it fires.
//
// Secrets: the password is only read through the getter at login time; the token lives in a private
// field. Neither ever goes into a message, a log line or an error cause (see translate.ts, scrub.ts).
// Redirects are not followed (a redirect would carry X-Auth-Token to another place), and proxies
// from the environment are not used (the CA/agent would be bypassed).

import type { Readable } from 'node:stream';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { Logger } from 'pino';
import type { AllowListPayload, EventSink } from '../seams.ts';
import { Backoff, type BackoffOptions } from '../util/backoff.ts';
import { SaltAuthError, SaltDeniedError, SaltPayloadTooLargeError, SaltProtocolError, SaltRunnerError } from './errors.ts';
import { withRetries } from './retry.ts';
import { safeUrl, serverText } from './scrub.ts';
import { DEFAULT_SESSION_MAX_MS, needsRenewal, parseLoginResponse, type SaltSession } from './session.ts';
import { buildAgents, type Agents } from './tls.ts';
import { statusError, translateError } from './translate.ts';

export interface SaltApiClientOptions {
  /** Base URL of salt-api, e.g. https://salt.example:8000 (a path prefix is kept). */
  url: string;
  username: string;
  /** Read at each login; keeps the secret out of any printable options object. */
  password: () => string;
  /** eauth backend: pam, ldap, sharedsecret, auto, file, ... */
  eauth: string;
  caPem?: string;
  insecureSkipVerify?: boolean;
  /** Deadline of one request (for /events: until the response headers arrive). */
  timeoutMs: number;
  logger: Logger;
  backoff?: Pick<BackoffOptions, 'initialMs' | 'maxMs'> & Partial<Pick<BackoffOptions, 'factor' | 'jitter'>>;
  /** Tries per call for retryable failures (default 4). */
  maxAttempts?: number;
  /** Refuse request bodies over this size before sending (default 1 MiB, salt-api's documented limit). */
  maxBodyBytes?: number;
  /** Cap of a session's life (default 10 h: CherryPy's session timeout in rest_cherrypy). */
  sessionMaxMs?: number;
  /** Renew this long before the session would expire (default 5 min). */
  refreshMarginMs?: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** What `ping()` reports (no secret in it). */
export interface SaltPing {
  readonly url: string;
  readonly latencyMs: number;
  readonly user: string | undefined;
  readonly eauth: string | undefined;
  readonly sessionExpiresAt: number;
  readonly perms: unknown;
}

/** Session facts without the token. */
export type SaltSessionInfo = Omit<SaltSession, 'token'>;

/** Keys of a low-state chunk that are not runner arguments. */
const RESERVED_LOWSTATE_KEYS = new Set(['client', 'fun', 'arg', 'kwarg', 'token', 'username', 'password', 'eauth', 'user', 'key']);

const DEFAULT_MAX_BODY = 1024 * 1024;

export class SaltApiClient implements EventSink {
  readonly url: string;
  private readonly o: SaltApiClientOptions;
  private readonly log: Logger;
  private readonly http: AxiosInstance;
  private readonly agents: Agents;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private session: SaltSession | undefined;
  private loggingIn: Promise<SaltSession> | undefined;

  constructor(options: SaltApiClientOptions) {
    this.o = options;
    this.url = options.url.replace(/\/+$/, '');
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.agents = buildAgents({ caPem: options.caPem, insecureSkipVerify: options.insecureSkipVerify });
    if (options.insecureSkipVerify === true && this.url.startsWith('https:')) {
      this.log.warn({ salt: { url: safeUrl(this.url) } }, 'salt-api TLS certificate verification is disabled');
    }
    this.http = axios.create({
      baseURL: this.url,
      httpAgent: this.agents.httpAgent,
      httpsAgent: this.agents.httpsAgent,
      proxy: false,
      maxRedirects: 0,
      maxBodyLength: Infinity,
      maxContentLength: 16 * 1024 * 1024,
      validateStatus: () => true,
      headers: { Accept: 'application/json' },
    });
  }

  /** Agents shared with the websocket stream (same TLS settings). */
  get httpsAgent(): Agents['httpsAgent'] {
    return this.agents.httpsAgent;
  }
  get httpAgent(): Agents['httpAgent'] {
    return this.agents.httpAgent;
  }

  /** The current session without its token, if logged in. */
  sessionInfo(): SaltSessionInfo | undefined {
    if (this.session === undefined) return undefined;
    const { token: _t, ...rest } = this.session;
    return rest;
  }

  /** Logs in now (replacing any session). One attempt; no retries. */
  async login(): Promise<SaltSessionInfo> {
    const s = await this.loginOnce();
    const { token: _t, ...rest } = s;
    return rest;
  }

  /** A valid token, logging in first when there is none or it is about to expire. */
  async token(): Promise<string> {
    const margin = this.o.refreshMarginMs ?? 5 * 60 * 1000;
    if (this.session !== undefined && !needsRenewal(this.session, this.now(), margin)) return this.session.token;
    return (await this.loginOnce()).token;
  }

  /** Forget a token the server refused (only if it is still the current one). */
  invalidateToken(token: string): void {
    if (this.session?.token === token) this.session = undefined;
  }

  /**
   * Runs a runner function through POST / (`client: runner`) and returns `return[0]`. kwargs are
   * sent as top-level keys of the low-state chunk, as docs/event-contract.md shows.
   */
  async runRunner(fun: string, kwargs: Record<string, unknown> = {}): Promise<unknown> {
    for (const k of Object.keys(kwargs)) {
      if (RESERVED_LOWSTATE_KEYS.has(k)) throw new TypeError(`runRunner: "${k}" is not allowed as a runner argument`);
    }
    const body = JSON.stringify({ client: 'runner', fun, ...kwargs });
    const bytes = Buffer.byteLength(body);
    const max = this.o.maxBodyBytes ?? DEFAULT_MAX_BODY;
    if (bytes > max) {
      throw new SaltPayloadTooLargeError(`salt-api POST /: request body of ${bytes} bytes is over the limit of ${max}`, { request: 'POST /' }, bytes);
    }
    const data = await this.retrying(fun, () => this.authedPost('/', body));
    const ret = data !== null && typeof data === 'object' ? (data as { return?: unknown }).return : undefined;
    if (!Array.isArray(ret) || ret.length === 0) {
      throw new SaltProtocolError(`salt-api POST / (${fun}): response has no return list`, { request: 'POST /', status: 200 });
    }
    return ret[0];
  }

  /**
   * Fires `tag` with `data` on the master bus via the event.send runner. salt-api answers
   * {"return": [true]} on success; a runner failure (bad arguments, exception) is HTTP 200 too,
   * with a string instead of true, and becomes KSB_SALT_RUNNER_FAILED.
   */
  async fireEvent(tag: string, data: AllowListPayload | Record<string, unknown>): Promise<void> {
    const ret = await this.runRunner('event.send', { tag, data });
    if (ret !== true) {
      const text = typeof ret === 'string' ? serverText(ret, this.secrets()) : JSON.stringify(ret)?.slice(0, 200);
      throw new SaltRunnerError(`salt-api event.send did not confirm the event (${text})`, { request: 'POST /', status: 200 });
    }
    this.log.debug({ salt: { tag } }, 'event fired');
  }

  /** EventSink.fire */
  fire(tag: string, data: AllowListPayload): Promise<void> {
    return this.fireEvent(tag, data);
  }

  /**
   * Readiness / `check`: salt-api answers GET / and accepts our credentials. Uses the current
   * session when it is valid, else logs in. One attempt each; errors are thrown as SaltErrors.
   */
  async ping(): Promise<SaltPing> {
    const started = this.now();
    const res = await this.request('GET /', (deadline) => this.http.get('/', { signal: deadline }));
    if (res.status !== 200) throw statusError(res.status, res.data, this.ctx('GET /'));
    await this.token();
    const s = this.session;
    return {
      url: safeUrl(this.url),
      latencyMs: this.now() - started,
      user: s?.user,
      eauth: s?.eauth,
      sessionExpiresAt: s?.expiresAt ?? 0,
      perms: s?.perms,
    };
  }

  /** Ends the session on the server (best effort) and forgets the token. */
  async logout(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s === undefined) return;
    try {
      await this.request('POST /logout', (deadline) => this.http.post('/logout', '', { headers: { 'X-Auth-Token': s.token }, signal: deadline }));
    } catch (err) {
      this.log.debug({ err }, 'salt-api logout failed (ignored)');
    }
  }

  /**
   * Opens GET /events (server-sent events) and resolves with the body stream once the headers
   * arrived. The token goes in the X-Auth-Token header, never in the URL. A refused token is
   * renewed once. `signal` aborts the stream.
   */
  async openEvents(signal: AbortSignal): Promise<Readable> {
    const res = await this.withToken(
      'GET /events',
      (token, deadline) =>
        this.http.get<Readable>('/events', {
          responseType: 'stream',
          headers: { Accept: 'text/event-stream', 'X-Auth-Token': token },
          signal: AbortSignal.any([signal, deadline]),
        }),
      (refused) => readSome(refused.data),
    );
    if (res.status === 200) return res.data;
    const body = await readSome(res.data);
    if (res.status === 401) throw new SaltAuthError('salt-api GET /events: a fresh token was refused (HTTP 401)', { request: 'GET /events', status: 401 });
    throw statusError(res.status, body, this.ctx('GET /events'));
  }

  // ---- internals -------------------------------------------------------------------------------

  private secrets(): Array<string | undefined> {
    let password: string | undefined;
    try {
      password = this.o.password();
    } catch {
      password = undefined;
    }
    return [password, this.session?.token];
  }

  private ctx(request: string, timedOut = false) {
    return { request, timedOut, timeoutMs: this.o.timeoutMs, secrets: this.secrets() };
  }

  private retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    const b = this.o.backoff ?? { initialMs: 500, maxMs: 10_000 };
    const backoff = new Backoff({ ...b, random: this.o.random ?? Math.random, now: this.now });
    return withRetries(op, { maxAttempts: Math.max(1, this.o.maxAttempts ?? 4), backoff, sleep: this.sleep, logger: this.log, what });
  }

  /**
   * Sends one request with a hard deadline (until the response — for a stream, until its headers).
   * Every thrown error is translated here; nothing from axios escapes.
   */
  private async request<T>(label: string, send: (deadline: AbortSignal) => Promise<AxiosResponse<T>>): Promise<AxiosResponse<T>> {
    const deadline = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort();
    }, this.o.timeoutMs);
    const started = this.now();
    try {
      const res = await send(deadline.signal);
      this.log.debug({ salt: { request: label, status: res.status, ms: this.now() - started } }, 'salt-api response');
      return res;
    } catch (err) {
      throw translateError(err, this.ctx(label, timedOut));
    } finally {
      clearTimeout(timer);
    }
  }

  private loginOnce(): Promise<SaltSession> {
    if (this.loggingIn !== undefined) return this.loggingIn;
    const p = (async () => {
      const body = JSON.stringify({ username: this.o.username, password: this.o.password(), eauth: this.o.eauth });
      const res = await this.request('POST /login', (deadline) =>
        this.http.post('/login', body, { headers: { 'Content-Type': 'application/json' }, signal: deadline }),
      );
      if (res.status === 401 || res.status === 403) {
        throw new SaltAuthError(`salt-api POST /login: credentials refused for user "${this.o.username}" with eauth "${this.o.eauth}" (HTTP ${res.status})`, {
          request: 'POST /login',
          status: res.status,
        });
      }
      if (res.status !== 200) throw statusError(res.status, res.data, this.ctx('POST /login'));
      const s = parseLoginResponse(res.data, this.now(), this.o.sessionMaxMs ?? DEFAULT_SESSION_MAX_MS);
      this.session = s;
      this.log.info({ salt: { user: s.user, eauth: s.eauth, expiresInS: Math.round((s.expiresAt - s.obtainedAt) / 1000) } }, 'salt-api login ok');
      return s;
    })();
    this.loggingIn = p;
    const clear = () => {
      if (this.loggingIn === p) this.loggingIn = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /**
   * Sends with the session token. A 401 means "token unknown or expired" (salt-api restarted, session
   * timed out) *or* "the ACL refuses this call": the token is renewed once and the call repeated
   * (`discard` first releases the refused response). Returns the last response: a 401 from it came
   * with a fresh token, a denial.
   */
  private async withToken<T>(
    label: string,
    send: (token: string, deadline: AbortSignal) => Promise<AxiosResponse<T>>,
    discard?: (refused: AxiosResponse<T>) => Promise<unknown>,
  ): Promise<AxiosResponse<T>> {
    const token = await this.token();
    const res = await this.request(label, (deadline) => send(token, deadline));
    if (res.status !== 401) return res;
    await discard?.(res);
    this.log.info({ salt: { request: label } }, 'salt-api refused the token, logging in again');
    this.invalidateToken(token);
    const fresh = await this.token();
    return this.request(label, (deadline) => send(fresh, deadline));
  }

  /** POST with the session token (withToken); a 401 with a fresh token or a 403 is a denial. */
  private async authedPost(path: string, body: string): Promise<unknown> {
    const label = `POST ${path}`;
    const res = await this.withToken(label, (token, deadline) =>
      this.http.post(path, body, {
        headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
        signal: deadline,
      }),
    );
    if (res.status === 200) return res.data;
    if (res.status === 401 || res.status === 403) {
      const text = serverText(res.data, this.secrets());
      throw new SaltDeniedError(
        `salt-api ${label}: refused for user "${this.o.username}" with a fresh token (HTTP ${res.status}${text ? `: ${text}` : ''}); check the eauth ACL`,
        { request: label, status: res.status },
      );
    }
    throw statusError(res.status, res.data, this.ctx(label));
  }
}

/** Reads up to 64 KiB of an error response stream as text (for the message), then discards it. */
async function readSome(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      chunks.push(b);
      size += b.length;
      if (size > 64 * 1024) break;
    }
  } catch {
    // the text is only for the message
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}
