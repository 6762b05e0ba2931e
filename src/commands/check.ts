// `kube-salt-bridge check`: config + connectivity report. Every line says what was tried and
// what came back; secrets never appear (errors are the typed, scrubbed ones from the adapters).
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import { createClientNodeApi, describeKubeConfig } from '../kube/index.ts';
import { createSaltClient, createStream, kubeConfigFor } from '../bridge.ts';
import { table } from './status.ts';
import { withDeadline } from '../util/deadline.ts';

export const CHECK_TAG = 'kube-salt-bridge/check';

interface Line {
  what: string;
  ok: boolean;
  detail: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(p, ms, () => new Error(`${what}: no answer within ${ms} ms`));
}

async function step(lines: Line[], what: string, fn: () => string | Promise<string>): Promise<boolean> {
  try {
    lines.push({ what, ok: true, detail: await fn() });
    return true;
  } catch (err) {
    lines.push({ what, ok: false, detail: (err as Error).message });
    return false;
  }
}

export async function runCheck(config: Config, log: Logger, o: { out: (t: string) => void; timeoutMs: number }): Promise<boolean> {
  const lines: Line[] = [{ what: 'config', ok: true, detail: `${config.source}: ${config.clusters.length} cluster(s), salt-api ${config.salt.url}` }];
  for (const w of config.warnings) lines.push({ what: 'config', ok: true, detail: `warning: ${w}` });
  const { signer } = config.signing;
  lines.push({
    what: 'signing key',
    ok: true,
    detail: `Ed25519 key id ${signer.keyId}, public key ${signer.publicKey} (the minions need it in pillar kube_allowlist:public_keys)`,
  });

  for (const c of config.clusters) {
    const label = `cluster ${c.name}`;
    let kc: ReturnType<typeof kubeConfigFor> | undefined;
    await step(lines, label, () => {
      kc = kubeConfigFor(c);
      const d = describeKubeConfig(kc);
      return `credentials: server ${d.server}, context ${d.context}, user ${d.user}`;
    });
    if (!kc) continue;
    const api = createClientNodeApi(kc, { label: c.name });
    let rv = '';
    const listed = await step(lines, label, async () => {
      const page = await withTimeout(api.list({ labelSelector: c.labelSelector, limit: 500 }), o.timeoutMs, 'list nodes');
      rv = page.resourceVersion;
      return `list nodes: ${page.items.length}${page.continue ? '+' : ''} node(s)${c.labelSelector ? ` matching ${c.labelSelector}` : ''}`;
    });
    if (!listed) continue;
    await step(lines, label, async () => {
      const h = await withTimeout(
        api.watch(
          { labelSelector: c.labelSelector, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 5 },
          () => {},
          () => {},
        ),
        o.timeoutMs,
        'watch nodes',
      );
      h.abort();
      return 'watch nodes: stream opened';
    });
  }

  const salt = createSaltClient(config, log);
  const loggedIn = await step(lines, 'salt-api', async () => {
    const p = await withTimeout(salt.ping(), o.timeoutMs, 'salt-api login');
    return `login as ${p.user ?? config.salt.username} (eauth ${p.eauth ?? config.salt.eauth}) in ${p.latencyMs} ms`;
  });
  if (loggedIn) {
    await step(lines, 'salt-api', async () => {
      await withTimeout(salt.fireEvent(CHECK_TAG, { check: true, clusters: config.clusters.map((c) => c.name) }), o.timeoutMs, 'fire event');
      return `fire event ${CHECK_TAG} (runner event.send): permitted`;
    });
    await step(lines, 'salt events', async () => {
      const stream = createStream(config, salt, log);
      try {
        const opened = new Promise<void>((resolve) =>
          stream.onState((s) => {
            if (s === 'open') resolve();
          }),
        );
        await stream.start();
        await withTimeout(opened, o.timeoutMs, 'event stream');
        return `event stream open (${config.salt.websocketUrl ? `websocket ${config.salt.websocketUrl}, ` : ''}mode ${config.salt.eventStream})`;
      } finally {
        await stream.stop();
      }
    });
  }

  const ok = lines.every((l) => l.ok);
  o.out(
    table(
      ['CHECK', 'RESULT', 'DETAIL'],
      lines.map((l) => [l.what, l.ok ? 'OK' : 'FAIL', l.detail]),
    ),
  );
  o.out(ok ? '\nall checks passed\n' : '\nsome checks FAILED\n');
  return ok;
}
