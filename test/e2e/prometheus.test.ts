// Monitoring against the real thing: a real Prometheus (Debian's package) scrapes a running bridge
// on loopback by IP, loads deploy/monitoring's alert rules and evaluates them on what it scraped;
// every query of the Grafana dashboard is run through that Prometheus.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startLab, type Lab } from '../harness/netns.ts';
import { startSalt, type SaltStack } from '../harness/salt.ts';
import { startBridge, type BridgeProc } from '../harness/bridge.ts';
import { ROOT, freePort, requireTools } from '../harness/tools.ts';
import { startDaemon, stopInOrder, waitFor, workDir, type Daemon } from '../harness/proc.ts';
import { testKeys } from '../harness/keys.ts';

const RULES = join(ROOT, 'deploy', 'monitoring', 'prometheus', 'kube-salt-bridge.rules.yml');
const DASHBOARD = join(ROOT, 'deploy', 'monitoring', 'grafana', 'kube-salt-bridge.json');
const JOB = 'kube-salt-bridge';

let kube: KubeCluster;
let lab: Lab;
let salt: SaltStack;
let bridge: BridgeProc;
let prometheus: Daemon;
let promUrl: string;

interface PromAlert {
  labels: Record<string, string>;
  state: string;
}

async function api<T>(path: string): Promise<T> {
  const r = await fetch(`${promUrl}${path}`);
  const body = (await r.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? r.status}`);
  return body.data;
}
const query = (q: string) =>
  api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(q)}`);
const alerts = async () => (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;

/** The dashboard's PromQL with its template variables replaced the way Grafana would (All selected). */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }> };
  return d.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      panel: p.title,
      expr: t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', JOB).replaceAll('$instance', '.*').replaceAll('$cluster', '.*'),
    })),
  );
}

before(
  async () => {
    requireTools(['prometheus']);
    kube = await startKube('prom');
    lab = await startLab();
    salt = await startSalt(lab, { minions: 0 });
    await kube.createNode('p1', [{ type: 'InternalIP', address: '10.42.0.1' }]);
    await kube.createNode('p2', [{ type: 'InternalIP', address: '10.42.0.2' }]);
    bridge = await startBridge({ clusters: [{ name: 'alpha', kube, families: ['ipv4'] }], salt, privateKey: testKeys().privateText });
    await bridge.waitReady();

    const dir = workDir('prometheus');
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const target = new URL(bridge.url).host; // 127.0.0.1:<port>: an IP literal, as the bridge requires in Host
    writeFileSync(
      join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES],
        scrape_configs: [{ job_name: JOB, static_configs: [{ targets: [target] }] }],
      }),
    );
    prometheus = startDaemon(
      'prometheus',
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { logFile: join(dir, 'prometheus.log') },
    );
    await waitFor(
      'prometheus /-/ready',
      async () => {
        if (prometheus.exited()) throw new Error(`prometheus exited: ${readFileSync(join(dir, 'prometheus.log'), 'utf8').slice(-3000)}`);
        return (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok;
      },
      60_000,
    );
  },
  { timeout: 300_000 },
);

after(async () => {
  await stopInOrder(prometheus, bridge, salt, lab, kube);
});

test('Prometheus scrapes the bridge by IP on loopback: the target is up and ksb_ metrics arrive', async () => {
  const synced = await waitFor(
    'ksb_cluster_synced{cluster="alpha"} in Prometheus',
    async () => {
      const r = await query(`ksb_cluster_synced{job="${JOB}", cluster="alpha"}`);
      return r.result.length > 0 ? r.result : undefined;
    },
    60_000,
    500,
  );
  assert.equal(synced[0]!.value[1], '1');
  assert.equal(synced[0]!.metric.instance, new URL(bridge.url).host);
  const nodes = await query(`ksb_cluster_nodes{job="${JOB}", cluster="alpha"}`);
  assert.equal(nodes.result[0]?.value[1], '2');
  const targets = await api<{ activeTargets: Array<{ labels: Record<string, string>; health: string; lastError: string }> }>('/api/v1/targets');
  const t = targets.activeTargets.find((a) => a.labels.job === JOB);
  assert.equal(t?.health, 'up', `target: ${JSON.stringify(t)}`);
  assert.equal(t?.lastError, '', 'no 421: the bridge accepts the IP literal Prometheus sends in Host');
});

test('the alert rules load, evaluate cleanly on the scraped data, and a healthy bridge fires none', async () => {
  const groups = await waitFor(
    'every rule evaluated',
    async () => {
      const g = (await api<{ groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string }> }> }>('/api/v1/rules')).groups;
      const rules = g.flatMap((x) => x.rules);
      return rules.length > 0 && rules.every((r) => r.health !== 'unknown') ? g : undefined;
    },
    30_000,
    500,
  );
  const rules = groups.find((g) => g.name === 'kube-salt-bridge')?.rules ?? [];
  assert.equal(rules.length, 10);
  for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
  // Two more evaluation rounds after the data is in, then nothing may be pending or firing.
  await new Promise((r) => setTimeout(r, 3000));
  assert.deepEqual(
    (await alerts()).filter((a) => a.labels.alertname?.startsWith('KubeSaltBridge')),
    [],
  );
});

test('every query of the Grafana dashboard runs in Prometheus, and every ksb_ metric it or the rules name is one the bridge exposes', async () => {
  const exposed = new Set(
    [...(await bridge.metrics()).matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap(([, name, type]) =>
      type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
    ),
  );
  const queries = dashboardQueries();
  assert.ok(queries.length >= 25, `${queries.length} queries`);
  const named = new Set<string>();
  for (const text of [readFileSync(RULES, 'utf8'), readFileSync(DASHBOARD, 'utf8')]) for (const [m] of text.matchAll(/\bksb_[a-z0-9_]+/g)) named.add(m);
  for (const m of named) assert.ok(exposed.has(m), `${m} is not a metric of the bridge`);
  for (const { panel, expr } of queries) await query(expr).catch((e: Error) => assert.fail(`panel "${panel}": ${e.message}`));
  for (const title of ['Bridges up', 'Leader', 'Event stream', 'Clusters synced', 'Nodes', 'Allow-list entries', 'Resident memory']) {
    const q = queries.find((x) => x.panel === title)!;
    const r = await query(q.expr);
    assert.ok(r.result.length > 0, `panel "${title}" shows data: ${q.expr}`);
  }
});

test('a node address the bridge refuses fires KubeSaltBridgeAddressesRejected from its first, only increment', async () => {
  await kube.createNode('p3', [
    { type: 'InternalIP', address: '10.42.0.3' },
    { type: 'InternalIP', address: '10.42.0.0/24' },
  ]);
  const fired = await waitFor(
    'KubeSaltBridgeAddressesRejected firing',
    async () => (await alerts()).find((a) => a.labels.alertname === 'KubeSaltBridgeAddressesRejected' && a.state === 'firing'),
    60_000,
    500,
  );
  assert.equal(fired.labels.cluster, 'alpha');
  assert.equal(fired.labels.reason, 'not-host');
  const counter = await query(`ksb_addresses_rejected_total{job="${JOB}", cluster="alpha", reason="not-host"}`);
  assert.equal(counter.result[0]?.value[1], '1', 'one increment: the series was born with it');
});

test('the bridge stops: up drops to 0 and KubeSaltBridgeDown goes pending', async () => {
  assert.equal(await bridge.stop(), 0);
  const pending = await waitFor(
    'KubeSaltBridgeDown pending',
    async () => (await alerts()).find((a) => a.labels.alertname === 'KubeSaltBridgeDown'),
    60_000,
    500,
  );
  assert.equal(pending.state, 'pending', 'pending until its 5 minutes have passed');
  assert.equal(pending.labels.instance, new URL(bridge.url).host);
  assert.equal(pending.labels.severity, 'critical');
});
