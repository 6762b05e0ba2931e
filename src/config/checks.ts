// Cross-field checks and the final assembly of Config from the parsed file: defaults that depend
// on other fields, secrets, and the rules no single field can express.

import { readFileSync } from 'node:fs';
import { parseKeyText, signerFromSeed, sortedCodePoint, type Signer } from '../plan/index.ts';
import type { Family } from '../seams.ts';
import { envValue, ENV_SALT_PASSWORD, ENV_SIGNING_KEY, type Env } from './env.ts';
import { absolutePath, kubeconfigProblem, readSecretBytes, readSecretFile } from './files.ts';
import { withEnv, type Issue } from './issues.ts';
import type { ParsedConfig } from './schema.ts';
import { Secret } from './secret.ts';
import type { ClusterConfig, Config } from './types.ts';

const KEY_FIELD = 'signing.keyFile';
const KEYGEN_HINT = 'create one with: kube-salt-bridge keygen --out FILE';

export interface AssembleContext {
  readonly source: string;
  readonly baseDir: string;
  readonly env: Env;
  readonly envSources: ReadonlyMap<string, string>;
  readonly hostname: string;
}

export function assemble(p: ParsedConfig, ctx: AssembleContext): { config: Config; issues: Issue[] } {
  const issues: Issue[] = [];
  const warnings: string[] = [];
  const add = (path: string, message: string): void => {
    issues.push({ path, message: withEnv(path, message, ctx.envSources) });
  };

  // salt
  if (p.salt.caFile !== undefined && p.salt.insecureSkipVerify) {
    add('salt.insecureSkipVerify', 'cannot be true together with salt.caFile');
  }
  if (p.salt.caFile !== undefined && !readFileSync(p.salt.caFile, 'utf8').includes('-----BEGIN CERTIFICATE-----')) {
    add('salt.caFile', `no PEM certificate in ${p.salt.caFile}`);
  }
  if (p.salt.insecureSkipVerify && p.salt.url.startsWith('https:')) {
    warnings.push('salt.insecureSkipVerify is true: the salt-api certificate is not verified');
  }
  if (p.salt.eventStream === 'ws' && p.salt.websocketUrl === undefined) {
    add('salt.eventStream', 'ws needs salt.websocketUrl (rest_tornado with websockets: true; rest_cherrypy has no working websocket)');
  }
  const password = secret(ctx.env, ENV_SALT_PASSWORD, p.salt.passwordFile, 'salt.passwordFile', add, warnings);
  const signer = signingKey(ctx.env, p.signing.keyFile, add, warnings);
  const httpToken = p.http.tokenFile === undefined ? undefined : readHttpToken(p.http.tokenFile, add, warnings);

  // clusters
  const names = new Map<string, number>();
  let inClusterAt: number | undefined;
  const clusters = p.clusters.map((c, i): ClusterConfig => {
    const at = `clusters[${i}]`;
    const dup = names.get(c.name);
    if (dup !== undefined) add(`${at}.name`, `duplicate cluster name "${c.name}" (also clusters[${dup}])`);
    else names.set(c.name, i);

    if (c.kubeconfig !== undefined && c.inCluster) add(`${at}.inCluster`, 'kubeconfig and inCluster: true are exclusive');
    if (c.kubeconfig === undefined && !c.inCluster) {
      add(`${at}.kubeconfig`, 'required: a kubeconfig path, or inCluster: true (there is no fallback to localhost)');
    }
    if (c.context !== undefined && c.kubeconfig === undefined) add(`${at}.context`, 'only meaningful with kubeconfig');
    if (c.kubeconfig !== undefined) {
      const problem = kubeconfigProblem(c.kubeconfig, c.context);
      if (problem !== undefined) add(`${at}.${problem.field}`, problem.reason);
    }
    if (c.inCluster && c.kubeconfig === undefined) {
      if (inClusterAt !== undefined) add(`${at}.inCluster`, `only one cluster can be inCluster (also clusters[${inClusterAt}])`);
      inClusterAt ??= i;
      if (envValue(ctx.env, 'KUBERNETES_SERVICE_HOST') === undefined || envValue(ctx.env, 'KUBERNETES_SERVICE_PORT') === undefined) {
        add(`${at}.inCluster`, 'KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set: not running in a pod');
      }
    }

    const families = new Set<Family>(c.families);
    c.extraEntries.forEach((e, k) => {
      if (!families.has(e.family)) add(`${at}.extraEntries[${k}]`, `${e.value} is ${e.family} but families is [${c.families.join(', ')}]`);
    });
    if (c.safety.allowEmpty && c.safety.minNodes > 0) {
      add(`${at}.safety.minNodes`, 'must be 0 when safety.allowEmpty is true (an empty list has no nodes)');
    }
    if (c.watch.watchdogSeconds <= c.watch.timeoutSeconds) {
      add(`${at}.watch.watchdogSeconds`, `must be greater than watch.timeoutSeconds (${c.watch.timeoutSeconds})`);
    }
    if (c.allowedNetworks !== undefined) {
      const have = new Set(c.allowedNetworks.map((n) => n.family));
      for (const f of c.families) {
        if (!have.has(f))
          add(
            `${at}.allowedNetworks`,
            `no ${f} network, but families includes ${f}: every ${f} address would be refused (add one, or drop ${f} from families)`,
          );
      }
    }

    return {
      name: c.name,
      source: c.kubeconfig !== undefined ? { kind: 'kubeconfig', kubeconfig: c.kubeconfig, context: c.context } : { kind: 'inCluster' },
      labelSelector: c.labelSelector === '' ? undefined : c.labelSelector,
      addressTypes: c.addressTypes,
      families: c.families,
      podCIDRs: c.podCIDRs,
      extraEntries: sortedCodePoint(new Set(c.extraEntries.map((e) => e.value))),
      maxAddressesPerNode: c.maxAddressesPerNode,
      allowedNetworks: c.allowedNetworks === undefined ? undefined : sortedCodePoint(new Set(c.allowedNetworks.map((n) => n.value))),
      safety: c.safety,
      watch: c.watch,
    };
  });

  // publish
  if (p.publish.minIntervalMs > p.publish.maxDelayMs) {
    add('publish.maxDelayMs', `must be >= publish.minIntervalMs (${p.publish.minIntervalMs})`);
  }
  if (p.publish.retry.initialMs > p.publish.retry.maxMs) {
    add('publish.retry.maxMs', `must be >= publish.retry.initialMs (${p.publish.retry.initialMs})`);
  }

  // leader election: client-go's rule, leaseDuration > renewDeadline > retryPeriod
  const le = p.leaderElection;
  if (le.leaseDurationSeconds <= le.renewDeadlineSeconds) {
    add('leaderElection.renewDeadlineSeconds', `must be less than leaderElection.leaseDurationSeconds (${le.leaseDurationSeconds})`);
  }
  if (le.renewDeadlineSeconds <= le.retryPeriodSeconds) {
    add('leaderElection.retryPeriodSeconds', `must be less than leaderElection.renewDeadlineSeconds (${le.renewDeadlineSeconds})`);
  }
  const leaseCluster = le.cluster ?? p.clusters[0]?.name ?? '';
  if (le.cluster !== undefined && !names.has(le.cluster)) {
    add('leaderElection.cluster', `no cluster named "${le.cluster}" (have: ${[...names.keys()].join(', ')})`);
  }

  const config: Config = {
    source: ctx.source,
    salt: {
      url: p.salt.url,
      username: p.salt.username,
      password: new Secret(password ?? ''),
      eauth: p.salt.eauth,
      caFile: p.salt.caFile,
      insecureSkipVerify: p.salt.insecureSkipVerify,
      timeoutMs: p.salt.timeoutMs,
      eventStream: p.salt.eventStream,
      websocketUrl: p.salt.websocketUrl,
    },
    // Without a signer there is an issue, and a config with issues is never handed out.
    signing: { signer: signer as Signer },
    clusters,
    publish: p.publish,
    state: { dir: absolutePath(p.state.dir, ctx.baseDir) },
    http: { ...p.http.listen, token: httpToken === undefined ? undefined : new Secret(httpToken), allowedHosts: p.http.allowedHosts },
    leaderElection: {
      enabled: le.enabled,
      cluster: leaseCluster,
      namespace: le.namespace,
      name: le.name,
      identity: le.identity ?? ctx.hostname,
      leaseDurationSeconds: le.leaseDurationSeconds,
      renewDeadlineSeconds: le.renewDeadlineSeconds,
      retryPeriodSeconds: le.retryPeriodSeconds,
    },
    log: p.log,
    warnings,
  };
  return { config, issues };
}

/**
 * The bridge's Ed25519 private key (its 32-byte seed as text): KSB_SIGNING_KEY wins over
 * signing.keyFile; one of them is required. Problems name the field and the reason, never the text.
 */
function signingKey(env: Env, file: string | undefined, add: (path: string, message: string) => void, warnings: string[]): Signer | undefined {
  const direct = envValue(env, ENV_SIGNING_KEY);
  let text: string | Buffer;
  let from: string;
  if (direct !== undefined) {
    text = direct;
    from = ENV_SIGNING_KEY;
  } else if (file === undefined) {
    add(KEY_FIELD, `required: a file holding the bridge's Ed25519 private key (${KEYGEN_HINT}), or set ${ENV_SIGNING_KEY}`);
    return undefined;
  } else {
    const r = readSecretBytes(file);
    if (!r.ok) {
      add(KEY_FIELD, r.reason);
      return undefined;
    }
    if (r.worldReadable) warnings.push(`${KEY_FIELD}: ${file} is world-readable (mount the Secret with defaultMode 0400)`);
    text = r.bytes;
    from = file;
  }
  const key = parseKeyText(text);
  if (Buffer.isBuffer(text)) text.fill(0);
  if (!key.ok) {
    add(KEY_FIELD, `${from} does not hold an Ed25519 private key: ${key.reason}`);
    return undefined;
  }
  try {
    return signerFromSeed(key.raw);
  } finally {
    key.raw.fill(0);
  }
}

/** Bearer tokens shorter than this are refused: POST /release must not be guessable. */
export const MIN_HTTP_TOKEN_LENGTH = 16;

/** http.tokenFile: the bearer token for POST /release (printable ASCII, no spaces, >= 16 characters). */
function readHttpToken(file: string, add: (path: string, message: string) => void, warnings: string[]): string | undefined {
  const r = readSecretFile(file);
  if (!r.ok) {
    add('http.tokenFile', r.reason);
    return undefined;
  }
  const token = r.value.trim();
  if (!/^[\x21-\x7e]+$/.test(token)) {
    add('http.tokenFile', `${file}: the token must be printable ASCII without spaces (try: openssl rand -hex 32 > ${file})`);
    return undefined;
  }
  if (token.length < MIN_HTTP_TOKEN_LENGTH) {
    add('http.tokenFile', `${file}: the token is shorter than ${MIN_HTTP_TOKEN_LENGTH} characters (try: openssl rand -hex 32 > ${file})`);
    return undefined;
  }
  if (r.worldReadable) warnings.push(`http.tokenFile: ${file} is world-readable (mount the Secret with defaultMode 0400)`);
  return token;
}

/** The env variable's value wins over the file; one of them is required. */
function secret(
  env: Env,
  envName: string,
  file: string | undefined,
  field: string,
  add: (path: string, message: string) => void,
  warnings: string[],
): string | undefined {
  const direct = envValue(env, envName);
  if (direct !== undefined) return direct;
  if (file === undefined) {
    add(field, `required (a file holding the secret, e.g. a mounted Kubernetes Secret), or set ${envName}`);
    return undefined;
  }
  const r = readSecretFile(file);
  if (!r.ok) {
    add(field, r.reason);
    return undefined;
  }
  if (r.worldReadable) warnings.push(`${field}: ${file} is world-readable (mount the Secret with defaultMode 0400)`);
  return r.value;
}
