// The shape of the YAML file, with defaults, as zod schemas. Field-level checks live here (they
// run even when other fields are wrong, so one run reports every problem); cross-field checks
// are in checks.ts. Paths are resolved against the config file's directory.

import { z } from 'zod';
import { canonicalEntry, DEFAULT_MAX_ADDRESSES_PER_NODE, formatNetwork, parseNetwork } from '../plan/index.ts';
import { DEFAULT_LIST_PAGE_SIZE } from '../kube/reflectorTypes.ts';
import { absolutePath, unreadableFile } from './files.ts';
import { checkSaltUrl, parseListen } from './net.ts';
import { parseLabelSelector } from './selector.ts';

// salt-api URLs: https, or http to a loopback address only.
const saltUrl = () =>
  z.string().transform((text, ctx) => {
    const r = checkSaltUrl(text);
    if (!r.ok) {
      ctx.issues.push({ code: 'custom', message: r.reason, input: text });
      return z.NEVER;
    }
    return r.url;
  });

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A DNS name for http.allowedHosts (lower case; matched case-insensitively). */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

function readableFile(baseDir: string) {
  return z
    .string()
    .min(1)
    .transform((p, ctx) => {
      const abs = absolutePath(p, baseDir);
      const why = unreadableFile(abs);
      if (why !== undefined) {
        ctx.issues.push({ code: 'custom', message: why, input: p });
        return z.NEVER;
      }
      return abs;
    });
}

const network = z.string().transform((text, ctx) => {
  const r = parseNetwork(text);
  if (!r.ok) {
    ctx.issues.push({ code: 'custom', message: `"${text}" refused: ${r.reason}`, input: text });
    return z.NEVER;
  }
  return { family: r.network.ip.family, value: formatNetwork(r.network) };
});

const entry = z.string().transform((text, ctx) => {
  const r = canonicalEntry(text);
  if (!r.ok) {
    ctx.issues.push({ code: 'custom', message: `"${text}" refused: ${r.reason}`, input: text });
    return z.NEVER;
  }
  return { family: r.family, value: r.value };
});

function uniqueList<T extends z.ZodType>(item: T) {
  return z.array(item).superRefine((list, ctx) => {
    const seen = new Set<unknown>();
    list.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate ${JSON.stringify(v)}` });
      seen.add(v);
    });
  });
}

export function configSchema(baseDir: string) {
  const file = readableFile(baseDir);

  const salt = z.strictObject({
    url: saltUrl(),
    websocketUrl: saltUrl().optional(),
    username: z.string().min(1),
    passwordFile: file.optional(),
    eauth: z.string().min(1).default('pam'),
    caFile: file.optional(),
    insecureSkipVerify: z.boolean().default(false),
    timeoutMs: int(100, 300_000).default(10_000),
    eventStream: z.enum(['ws', 'sse', 'auto']).default('auto'),
  });

  const safety = z.strictObject({
    allowEmpty: z.boolean().default(false),
    maxShrinkFraction: z.number().min(0).max(1).default(0.5),
    minNodes: int(0, 1_000_000).default(1),
  });

  const watch = z.strictObject({
    timeoutSeconds: int(1, 3600).default(300),
    relistIntervalSeconds: int(0, 7 * 86400).default(1800),
    watchdogSeconds: int(1, 86400).default(600),
    listPageSize: int(1, 100_000).default(DEFAULT_LIST_PAGE_SIZE),
  });

  const cluster = z.strictObject({
    name: z.string().regex(DNS_LABEL, 'must be a DNS label: lower-case letters, digits and "-", at most 63'),
    kubeconfig: file.optional(),
    context: z.string().min(1).optional(),
    inCluster: z.boolean().default(false),
    labelSelector: z
      .string()
      .max(4096)
      .transform((text, ctx) => {
        const r = parseLabelSelector(text);
        if (!r.ok) {
          ctx.issues.push({ code: 'custom', message: `not a Kubernetes label selector: ${r.reason}`, input: text });
          return z.NEVER;
        }
        return text.trim();
      })
      .optional(),
    addressTypes: uniqueList(z.enum(['InternalIP', 'ExternalIP']))
      .min(1)
      .default(['InternalIP']),
    families: uniqueList(z.enum(['ipv4', 'ipv6']))
      .min(1)
      .default(['ipv4', 'ipv6']),
    podCIDRs: z.boolean().default(false),
    extraEntries: z.array(entry).max(10_000).default([]),
    maxAddressesPerNode: int(1, 1000).default(DEFAULT_MAX_ADDRESSES_PER_NODE),
    allowedNetworks: z.array(network).min(1).max(1000).optional(),
    safety: safety.prefault({}),
    watch: watch.prefault({}),
  });

  const publish = z.strictObject({
    minIntervalMs: int(1, 3_600_000).default(500),
    maxDelayMs: int(1, 3_600_000).default(2000),
    resyncIntervalSeconds: int(0, 7 * 86400).default(600),
    delta: z.boolean().default(true),
    deltaMinEntries: int(0, 10_000_000).default(256),
    retry: z
      .strictObject({
        initialMs: int(1, 3_600_000).default(1000),
        maxMs: int(1, 3_600_000).default(60_000),
      })
      .prefault({}),
  });

  const leaderElection = z.strictObject({
    enabled: z.boolean().default(false),
    cluster: z.string().min(1).optional(),
    namespace: z.string().regex(DNS_LABEL, 'must be a namespace name (DNS label)').default('kube-system'),
    name: z
      .string()
      .max(253)
      .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a Lease name (DNS subdomain)')
      .default('kube-salt-bridge'),
    identity: z.string().min(1).max(128).optional(),
    leaseDurationSeconds: int(1, 3600).default(15),
    renewDeadlineSeconds: int(1, 3600).default(10),
    retryPeriodSeconds: int(1, 3600).default(2),
  });

  return z.strictObject({
    salt,
    signing: z.strictObject({ keyFile: file.optional() }).prefault({}),
    clusters: z.array(cluster).min(1),
    publish: publish.prefault({}),
    state: z.strictObject({ dir: z.string().min(1).default('/var/lib/kube-salt-bridge') }).prefault({}),
    http: z
      .strictObject({
        listen: z
          .string()
          .default('127.0.0.1:9540')
          .transform((text, ctx) => {
            const r = parseListen(text);
            if (!r.ok) {
              ctx.issues.push({ code: 'custom', message: r.reason, input: text });
              return z.NEVER;
            }
            return { listen: text, host: r.host, port: r.port };
          }),
        tokenFile: file.optional(),
        allowedHosts: uniqueList(
          z
            .string()
            .transform((h) => h.toLowerCase().replace(/\.$/, ''))
            .pipe(z.string().regex(HOST_NAME, 'must be a DNS name without port (IP literals and localhost are always allowed)')),
        )
          .max(100)
          .default([]),
      })
      .prefault({}),
    leaderElection: leaderElection.prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
  });
}

export type ParsedConfig = z.output<ReturnType<typeof configSchema>>;
