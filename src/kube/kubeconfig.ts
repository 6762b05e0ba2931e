// One KubeConfig object per cluster (credentials of two clusters must never share an object).
// Never loadFromDefault(): it silently falls back to http://localhost:8080 when nothing is found.

import fs from 'node:fs';
import path from 'node:path';
import { KubeConfig } from './clientNode.ts';
import { KubeConfigError, safeMessage } from './errors.ts';

export interface LoadKubeConfigOptions {
  /** Path of a kubeconfig file. Exactly one of kubeconfig / inCluster. */
  kubeconfig?: string;
  /** Context to use; default: the file's current-context. Only with kubeconfig. */
  context?: string;
  /** Use the pod's service account (KUBERNETES_SERVICE_HOST/PORT + token + ca.crt). */
  inCluster?: boolean;
  /** Label for messages, e.g. the cluster name from our config. */
  label?: string;
  /** Tests only: prefix for /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountPrefix?: string;
  /** Tests only: environment to read KUBERNETES_SERVICE_HOST/PORT from. */
  env?: NodeJS.ProcessEnv;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function loadKubeConfig(options: LoadKubeConfigOptions): KubeConfig {
  const label = options.label ? `cluster "${options.label}": ` : '';
  const kc = new KubeConfig();
  if (options.inCluster && options.kubeconfig) {
    throw new KubeConfigError(`${label}set either kubeconfig or inCluster, not both`);
  }
  if (options.inCluster) {
    if (options.context) throw new KubeConfigError(`${label}context cannot be used with inCluster`);
    const env = options.env ?? process.env;
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) {
      throw new KubeConfigError(`${label}inCluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set (not running in a pod?)`);
    }
    const prefix = options.serviceAccountPrefix ?? '';
    for (const f of ['token', 'ca.crt']) {
      const p = `${prefix}${SA_DIR}/${f}`;
      if (!fs.existsSync(p)) throw new KubeConfigError(`${label}inCluster: service account file ${p} is missing`);
    }
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    try {
      // loadFromCluster reads process.env; honour an injected env without leaking it.
      process.env.KUBERNETES_SERVICE_HOST = host;
      process.env.KUBERNETES_SERVICE_PORT = port;
      kc.loadFromCluster(prefix);
    } finally {
      restoreEnv('KUBERNETES_SERVICE_HOST', saved.host);
      restoreEnv('KUBERNETES_SERVICE_PORT', saved.port);
    }
  } else if (options.kubeconfig) {
    const file = options.kubeconfig;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw new KubeConfigError(`${label}kubeconfig ${file}: cannot read (${code})`);
    }
    try {
      // FILTER: an invalid entry for another cluster must not break this one; what we use is
      // checked below.
      kc.loadFromString(text, { onInvalidEntry: 'filter' });
      kc.makePathsAbsolute(path.dirname(file));
    } catch (err) {
      // YAML parser messages quote the offending lines, which may hold tokens or keys: never repeat them.
      const e = err as Error;
      const detail = e?.name === 'YAMLException' ? 'invalid YAML' : safeMessage(String(e?.message ?? '')) || 'invalid';
      throw new KubeConfigError(`${label}kubeconfig ${file}: cannot parse (${detail})`);
    }
    if (options.context !== undefined) {
      if (!kc.getContextObject(options.context)) {
        const known =
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none';
        throw new KubeConfigError(`${label}kubeconfig ${file}: context "${options.context}" not found (contexts: ${known})`);
      }
      kc.setCurrentContext(options.context);
    } else if (!kc.getCurrentContext() || !kc.getContextObject(kc.getCurrentContext())) {
      throw new KubeConfigError(`${label}kubeconfig ${file}: no usable current-context; set context`);
    }
  } else {
    throw new KubeConfigError(`${label}set kubeconfig (a file) or inCluster: true; the default lookup is not used`);
  }

  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError(`${label}context "${kc.getCurrentContext()}" names no known cluster`);
  if (!cluster.server) throw new KubeConfigError(`${label}cluster "${cluster.name}" has an empty server`);
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new KubeConfigError(`${label}cluster "${cluster.name}": server is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError(`${label}cluster "${cluster.name}": server must be http(s)`);
  }
  return kc;
}

/** Where a KubeConfig points, for logs and `check`: server URL and context, nothing secret. */
export function describeKubeConfig(kc: KubeConfig): { server: string; context: string; user: string } {
  return {
    server: kc.getCurrentCluster()?.server ?? '',
    context: kc.getCurrentContext() ?? '',
    user: kc.getCurrentUser()?.name ?? '',
  };
}

function restoreEnv(key: string, value: string | undefined): void {
  if (value === undefined) delete process.env[key];
  else process.env[key] = value;
}
