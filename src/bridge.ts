// Wiring: one KubeConfig + node source per cluster, the salt-api client (event sink), the event
// stream, the controller, the HTTP endpoints and (optionally) leader election. No process exits
// here; main.ts owns the process.
import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterConfig, Config } from './config/index.ts';
import type { NodeSource, EventStream } from './seams.ts';
import { createKubeNodeSource, loadKubeConfig, type KubeNodeSource } from './kube/index.ts';
import { SaltApiClient, createEventStream, interpret } from './salt/index.ts';
import { Controller } from './controller/controller.ts';
import { StateStore } from './controller/stateStore.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { startHttp } from './http/server.ts';
import { LeaderElector, createLeaseLock } from './leader/index.ts';
import { systemClock } from './util/clock.ts';

export interface BridgeOptions {
  dryRun: boolean;
  /** Serve /healthz, /readyz, /metrics, /status (run: yes; once: no). */
  http: boolean;
  /** Read the event bus (job returns, minion starts): run yes, once no. */
  stream: boolean;
  /** Ignore leader election (once). */
  leaderElection: boolean;
}

export interface Bridge {
  readonly config: Config;
  readonly controller: Controller;
  readonly sources: ReadonlyMap<string, NodeSource>;
  readonly salt: SaltApiClient;
  readonly metrics: Metrics;
  start(): Promise<void>;
  /** Resolves when every cluster is synced, or rejects after timeoutMs naming the ones that are not. */
  waitSynced(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
  readonly httpServer: Server | undefined;
}

export function createSaltClient(config: Config, log: Logger, url = config.salt.url): SaltApiClient {
  return new SaltApiClient({
    url,
    username: config.salt.username,
    password: () => config.salt.password.reveal(),
    eauth: config.salt.eauth,
    caPem: config.salt.caFile ? readFileSync(config.salt.caFile, 'utf8') : undefined,
    insecureSkipVerify: config.salt.insecureSkipVerify,
    timeoutMs: config.salt.timeoutMs,
    logger: log.child({ component: 'salt' }),
    backoff: config.publish.retry,
  });
}

/** The one KubeConfig of a configured cluster (never a default fallback). */
export function kubeConfigFor(c: ClusterConfig): KubeConfig {
  return loadKubeConfig(
    c.source.kind === 'inCluster' ? { inCluster: true, label: c.name } : { kubeconfig: c.source.kubeconfig, context: c.source.context, label: c.name },
  );
}

export function createSources(config: Config, log: Logger): Map<string, KubeNodeSource> {
  const sources = new Map<string, KubeNodeSource>();
  for (const c of config.clusters) {
    const kubeConfig = kubeConfigFor(c);
    sources.set(
      c.name,
      createKubeNodeSource({
        cluster: c.name,
        kubeConfig,
        labelSelector: c.labelSelector,
        watchTimeoutSeconds: c.watch.timeoutSeconds,
        relistIntervalMs: c.watch.relistIntervalSeconds * 1000,
        pageSize: c.watch.listPageSize,
        watchdogMs: c.watch.watchdogSeconds * 1000,
        logger: log,
      }),
    );
  }
  return sources;
}

/** The bus stream: websocket through rest_tornado when salt.websocketUrl is set, else SSE /events. */
export function createStream(config: Config, salt: SaltApiClient, log: Logger): EventStream {
  const wsClient = config.salt.websocketUrl ? createSaltClient(config, log, config.salt.websocketUrl) : undefined;
  return createEventStream(salt, { mode: config.salt.eventStream, wsClient, logger: log.child({ component: 'salt-events' }) });
}

export function createBridge(config: Config, log: Logger, o: BridgeOptions): Bridge {
  const sources = createSources(config, log);
  const metrics = createMetrics(true, () => [...sources].map(([cluster, s]) => ({ cluster, ...s.stats() })));
  const salt = createSaltClient(config, log);
  const controller = new Controller({
    config,
    sources,
    sink: salt,
    store: new StateStore(config.state.dir),
    metrics,
    log: log.child({ component: 'controller' }),
    clock: systemClock,
    dryRun: o.dryRun,
    busStream: o.stream,
  });
  let stream: EventStream | undefined;
  let elector: LeaderElector | undefined;
  let httpServer: Server | undefined;
  let streamOpen = false;
  let saltReachable = true;
  let stopProbe = () => {};

  const notReady = (): string[] => {
    const reasons = controller.unsynced().map((c) => `cluster ${c} not synced`);
    if (!saltReachable) reasons.push('salt-api unreachable');
    if (o.stream && !streamOpen) reasons.push('salt event stream not connected');
    return reasons;
  };

  const bridge: Bridge = {
    config,
    controller,
    sources,
    salt,
    metrics,
    get httpServer() {
      return httpServer;
    },
    async start() {
      for (const w of config.warnings) log.warn({ config: { warning: w } }, w);
      if (o.http) {
        httpServer = await startHttp(config.http, {
          registry: metrics.registry,
          notReady,
          status: () => ({ ...controller.status(), ready: notReady() }),
          release: (cluster, digest) => controller.release(cluster, digest),
        });
        const a = httpServer.address();
        log.info({ http: { listen: typeof a === 'object' && a ? `${a.address}:${a.port}` : config.http.listen } }, 'serving /healthz /readyz /metrics /status');
      }
      controller.start();
      if (o.stream) {
        stream = createStream(config, salt, log);
        stream.onState((s) => {
          streamOpen = s === 'open';
          metrics.streamConnected.set(streamOpen ? 1 : 0);
          controller.streamState(streamOpen, stream?.transport === 'ws');
        });
        stream.onEvent((e) => {
          const signal = interpret(e);
          if (signal) controller.onBus(signal);
        });
        await stream.start();
      }
      for (const s of sources.values()) await s.start();
      if (o.leaderElection && config.leaderElection.enabled) {
        const le = config.leaderElection;
        const cluster = config.clusters.find((c) => c.name === le.cluster)!;
        const kc = kubeConfigFor(cluster);
        elector = new LeaderElector({
          lock: createLeaseLock(kc, { namespace: le.namespace, name: le.name }),
          identity: le.identity,
          timing: {
            leaseDurationMs: le.leaseDurationSeconds * 1000,
            renewDeadlineMs: le.renewDeadlineSeconds * 1000,
            retryPeriodMs: le.retryPeriodSeconds * 1000,
          },
          onStartedLeading: () => controller.setActive(true),
          onStoppedLeading: () => controller.setActive(false),
          onNewLeader: (id) => log.info({ leader: { holder: id } }, `leader is ${id}`),
          logger: log,
        });
        elector.start();
      } else {
        controller.setActive(true);
      }
      // salt-api reachability for /readyz, checked in the background; two failed pings in a row
      // (each already retried with backoff) make it unreachable, so one slow moment does not.
      let failures = 0;
      const probe = async () => {
        try {
          await salt.ping();
          failures = 0;
          saltReachable = true;
        } catch (err) {
          failures += 1;
          if (failures >= 2 && saltReachable) {
            log.warn({ err }, 'salt-api not reachable');
            saltReachable = false;
          }
        }
      };
      if (o.http) {
        await probe();
        const t = setInterval(() => void probe(), 15_000);
        t.unref();
        stopProbe = () => clearInterval(t);
      }
    },
    async waitSynced(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (controller.unsynced().length > 0) {
        if (Date.now() > deadline) throw new Error(`not synced within ${timeoutMs} ms: ${controller.unsynced().join(', ')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      stopProbe();
      await elector?.stop();
      await stream?.stop();
      for (const s of sources.values()) await s.stop();
      await controller.stop();
      if (httpServer) await new Promise<void>((r) => httpServer!.close(() => r()));
    },
  };
  return bridge;
}
