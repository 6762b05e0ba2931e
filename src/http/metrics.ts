// Prometheus metrics (prom-client). One registry per bridge so tests can run several.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

/** Watch counters of one cluster's node source (src/kube stats), read at scrape time. */
export interface WatchStats {
  cluster: string;
  gone: number;
  watchdogRestarts: number;
  errors: number;
  watchResumes: number;
  lists: number;
}

export function createMetrics(defaults = true, watchStats: () => WatchStats[] = () => []) {
  const registry = new Registry();
  // The event-loop lag histogram samples every 100 ms, not prom-client's 10 ms: 100 wake-ups a
  // second cost an idle bridge ~4 ms of CPU per second, most of what it spends when nothing changes.
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'ksb_process_', eventLoopMonitoringPrecision: 100 });
  const m = {
    registry,
    nodes: new Gauge({ name: 'ksb_cluster_nodes', help: 'Nodes contributing addresses, per cluster', labelNames: ['cluster'], registers: [registry] }),
    addresses: new Gauge({
      name: 'ksb_cluster_addresses',
      help: 'Entries in the desired allow-list, per cluster and family',
      labelNames: ['cluster', 'family'],
      registers: [registry],
    }),
    synced: new Gauge({
      name: 'ksb_cluster_synced',
      help: '1 when the cluster is listed and watched, 0 when unknown',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    generation: new Gauge({ name: 'ksb_cluster_generation', help: 'Last published generation, per cluster', labelNames: ['cluster'], registers: [registry] }),
    publishes: new Counter({
      name: 'ksb_publishes_total',
      help: 'Events fired, per cluster and reason',
      labelNames: ['cluster', 'reason'],
      registers: [registry],
    }),
    publishForms: new Counter({
      name: 'ksb_publish_forms_total',
      help: 'Events fired, per cluster and payload form (full: the whole list; delta: a new generation as its change; check: the resync naming the published digest)',
      labelNames: ['cluster', 'form'],
      registers: [registry],
    }),
    needFull: new Counter({
      name: 'ksb_minion_need_full_total',
      help: 'Credited minion answers asking for the full list of a delta, per cluster (each minion gets one full re-send per generation)',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    publishErrors: new Counter({
      name: 'ksb_publish_errors_total',
      help: 'Failed publishes, per cluster and error code',
      labelNames: ['cluster', 'code'],
      registers: [registry],
    }),
    held: new Gauge({
      name: 'ksb_held_publishes',
      help: '1 while a publish is held by the safety policy, per cluster',
      labelNames: ['cluster', 'reason'],
      registers: [registry],
    }),
    holds: new Counter({ name: 'ksb_holds_total', help: 'Publishes held by the safety policy', labelNames: ['cluster', 'reason'], registers: [registry] }),
    addressesRejected: new Counter({
      name: 'ksb_addresses_rejected_total',
      help: 'Node addresses and pod CIDRs left out of the allow-list, per cluster and reason (invalid, not-host, too-many, outside-allowed); each node, value and reason counted once',
      labelNames: ['cluster', 'reason'],
      registers: [registry],
    }),
    saltErrors: new Counter({ name: 'ksb_salt_api_errors_total', help: 'salt-api errors by code', labelNames: ['code'], registers: [registry] }),
    watchRestarts: new Counter({
      name: 'ksb_watch_restarts_total',
      help: 'Node watch restarts, per cluster and reason (gone: 410 relist; watchdog: silent watch; error; timeout: normal server timeout, resumed)',
      labelNames: ['cluster', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of watchStats()) {
          this.inc({ cluster: s.cluster, reason: 'gone' }, s.gone);
          this.inc({ cluster: s.cluster, reason: 'watchdog' }, s.watchdogRestarts);
          this.inc({ cluster: s.cluster, reason: 'error' }, s.errors);
          this.inc({ cluster: s.cluster, reason: 'timeout' }, s.watchResumes);
        }
      },
    }),
    relists: new Counter({
      name: 'ksb_relists_total',
      help: 'Full node lists (initial, after 410, periodic, after an outage), per cluster',
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of watchStats()) this.inc({ cluster: s.cluster }, s.lists);
      },
    }),
    minionsOutOfDate: new Gauge({
      name: 'ksb_minions_out_of_date',
      help: 'Targeted minions whose applied generation is behind, per cluster',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    applyResults: new Counter({
      name: 'ksb_minion_apply_results_total',
      help: 'Minion apply results seen on the bus, per cluster and result (applied, current, refused, stale, need_full, failed)',
      labelNames: ['cluster', 'result'],
      registers: [registry],
    }),
    minionRefusals: new Gauge({
      name: 'ksb_minion_refusals',
      help: 'Minions holding out against the list they refused (reason shrink, empty, conflict, skew, version, key, signature, tag, invalid) or found stale (reason stale); not re-sent until they accept a list or an operator releases them',
      labelNames: ['cluster', 'reason'],
      registers: [registry],
    }),
    jobsUnseen: new Counter({
      name: 'ksb_jobs_unseen_total',
      help: 'Publishes whose job never appeared on the open bus stream within the ack timeout (a lossy stream, or no reactor), per cluster',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    changeToApplied: new Histogram({
      name: 'ksb_change_to_applied_seconds',
      help: 'From an address change seen in Kubernetes to a minion reporting it applied',
      labelNames: ['cluster'],
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60],
      registers: [registry],
    }),
    streamConnected: new Gauge({ name: 'ksb_event_stream_connected', help: '1 while the salt-api event stream is open', registers: [registry] }),
    leader: new Gauge({ name: 'ksb_leader', help: '1 while this bridge holds the lease (or leader election is off)', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
