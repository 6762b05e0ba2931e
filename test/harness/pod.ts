// deploy/kubernetes on the real test kube-apiserver, without a kubelet: the kustomization is
// rendered (only what this project's kustomization.yaml uses: `resources`; anything else is an
// error, so a render that is not kustomize's can never pass), every object is created through the
// API with strict field validation, and a pod of the Deployment is run the way a kubelet would run
// it: the apiserver admits the pod (dry run, so PodSecurity and the ServiceAccount admission see
// it), its volumes are written from the API objects they name (configMap, secret with
// defaultMode and fsGroup, emptyDir, the projected service-account token from the TokenRequest
// API), and the container's command runs in a private mount and UTS namespace: the image's
// layout (node and the npm package in /usr/local), each volume mounted at its mountPath, a
// read-only root, the pod's user and groups, no capabilities, no_new_privs, the container's
// env (fieldRefs and $(VAR) resolved). The host's file system is never changed. Not emulated:
// the seccomp profile, the pod network (each pod gets its own loopback address instead).
import { request } from 'node:https';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { startDaemon, workDir, type Daemon } from './proc.ts';
import type { KubeCluster } from './kube.ts';
import type { V1ConfigMap, V1EnvVar, V1PodSpec, V1Secret } from '@kubernetes/client-node';

/** An object of the manifests: the kind's own fields stay unknown here (the apiserver validates them). */
export type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } } & Record<
  string,
  unknown
>;

/** Where each kind this project deploys lives in the API. */
const KINDS: Record<string, { apiVersion: string; collection: (ns?: string) => string }> = {
  Namespace: { apiVersion: 'v1', collection: () => '/api/v1/namespaces' },
  ServiceAccount: { apiVersion: 'v1', collection: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts` },
  ConfigMap: { apiVersion: 'v1', collection: (ns) => `/api/v1/namespaces/${ns}/configmaps` },
  Secret: { apiVersion: 'v1', collection: (ns) => `/api/v1/namespaces/${ns}/secrets` },
  Pod: { apiVersion: 'v1', collection: (ns) => `/api/v1/namespaces/${ns}/pods` },
  ClusterRole: { apiVersion: 'rbac.authorization.k8s.io/v1', collection: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles' },
  ClusterRoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', collection: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings' },
  Role: { apiVersion: 'rbac.authorization.k8s.io/v1', collection: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles` },
  RoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', collection: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings` },
  Deployment: { apiVersion: 'apps/v1', collection: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments` },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', collection: (ns) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies` },
  PodDisruptionBudget: { apiVersion: 'policy/v1', collection: (ns) => `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets` },
};

/** The objects `kubectl apply -k dir` would send, in kustomization order. */
export function renderKustomization(dir: string): Obj[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Record<string, unknown>;
  const known = new Set(['apiVersion', 'kind', 'resources']);
  const unsupported = Object.keys(k).filter((key) => !known.has(key));
  if (unsupported.length > 0) throw new Error(`kustomization.yaml uses ${unsupported.join(', ')}: teach test/harness/pod.ts the same transformation first`);
  if (k.kind !== 'Kustomization' || !Array.isArray(k.resources)) throw new Error('kustomization.yaml: not a Kustomization with resources');
  const out: Obj[] = [];
  for (const r of k.resources as string[]) {
    // YAML 1.1, as kubectl reads it (0400 is octal there, decimal in YAML 1.2).
    for (const d of parseAllDocuments(readFileSync(join(dir, r), 'utf8'), { version: '1.1' })) {
      if (d.errors.length > 0) throw new Error(`${r}: ${d.errors[0]!.message}`);
      const o = d.toJS() as Obj | null;
      if (o === null) continue;
      const spec = KINDS[o.kind];
      if (spec === undefined) throw new Error(`${r}: kind ${o.kind} is not in test/harness/pod.ts KINDS`);
      if (o.apiVersion !== spec.apiVersion) throw new Error(`${r}: ${o.kind} ${o.metadata.name} has apiVersion ${o.apiVersion}, expected ${spec.apiVersion}`);
      out.push(o);
    }
  }
  return out;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  /** The Warning headers (PodSecurity warnings, deprecations). */
  warnings: string[];
}

/** An API client with the given credentials that never throws on a status (the test judges). */
export class Api {
  readonly url: string;
  private readonly tls: { ca: Buffer; cert?: Buffer; key?: Buffer; token?: string };
  constructor(url: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer; token?: string }) {
    this.url = url;
    this.tls = tls;
  }

  static admin(kube: KubeCluster): Api {
    const kc = JSON.parse(readFileSync(kube.adminKubeconfig, 'utf8')) as { users: Array<{ user: Record<string, string> }> };
    const u = kc.users[0]!.user;
    return new Api(kube.url, {
      ca: readFileSync(kube.caFile),
      cert: Buffer.from(u['client-certificate-data']!, 'base64'),
      key: Buffer.from(u['client-key-data']!, 'base64'),
    });
  }

  withToken(token: string): Api {
    return new Api(this.url, { ca: this.tls.ca, token });
  }

  req<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    const u = new URL(this.url + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const r = request(
        {
          hostname: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          method,
          ca: this.tls.ca,
          cert: this.tls.cert,
          key: this.tls.key,
          timeout: 30_000,
          headers: {
            accept: 'application/json',
            ...(this.tls.token ? { authorization: `Bearer ${this.tls.token}` } : {}),
            ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              /* not JSON */
            }
            const w = res.headers.warning;
            resolve({ status: res.statusCode ?? 0, body: parsed as T, warnings: w === undefined ? [] : Array.isArray(w) ? w : [w] });
          });
        },
      );
      r.on('timeout', () => r.destroy(new Error(`${method} ${u.pathname}: timeout`)));
      r.on('error', reject);
      if (payload) r.write(payload);
      r.end();
    });
  }

  /** Creates an object (strict field validation: an unknown or misspelt field is an error). */
  async create(o: Obj, query = ''): Promise<ApiResponse<Obj>> {
    const path = `${KINDS[o.kind]!.collection(o.metadata.namespace)}?fieldValidation=Strict${query}`;
    return this.req<Obj>('POST', path, o);
  }
}

/** A container's environment as the kubelet computes it: fieldRefs, then $(VAR) from earlier entries. */
export function containerEnv(env: V1EnvVar[], pod: { name: string; namespace: string; podIP: string }): Record<string, string> {
  const out: Record<string, string> = {};
  const fields: Record<string, string> = { 'metadata.name': pod.name, 'metadata.namespace': pod.namespace, 'status.podIP': pod.podIP };
  for (const e of env) {
    if (e.valueFrom !== undefined) {
      const path = e.valueFrom.fieldRef?.fieldPath;
      if (path === undefined || fields[path] === undefined) throw new Error(`env ${e.name}: valueFrom ${JSON.stringify(e.valueFrom)} is not emulated`);
      out[e.name] = fields[path];
    } else {
      out[e.name] = expandVars(e.value ?? '', out);
    }
  }
  return out;
}

/** Kubernetes' $(VAR) expansion ($$ escapes; an unknown name stays as written). */
export function expandVars(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : (vars[name!] ?? m)));
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A path of the container as it resolves inside its root, which starts as a copy of the host's:
 * symlinks on the way are followed there, not in the namespace building it (/var/run -> /run).
 */
function inImage(path: string): string {
  let out = '/';
  const parts = path.split('/').filter(Boolean);
  for (let i = 0, hops = 0; i < parts.length; i++) {
    const next = join(out, parts[i]!);
    let target: string | undefined;
    try {
      target = lstatSync(next).isSymbolicLink() ? readlinkSync(next) : undefined;
    } catch {
      target = undefined;
    }
    if (target === undefined) {
      out = next;
      continue;
    }
    if (++hops > 40) throw new Error(`${path}: too many symlinks`);
    parts.splice(0, i + 1, ...(target.startsWith('/') ? target : join(out, target)).split('/').filter(Boolean));
    out = '/';
    i = -1;
  }
  return out;
}

export interface PodProc {
  readonly name: string;
  readonly ip: string;
  readonly daemon: Daemon;
  /** The service-account tokens written into its volumes (secrets: never in a log). */
  readonly tokens: readonly string[];
  logs(): Array<Record<string, unknown>>;
  output(): string;
  stop(): Promise<void>;
}

/** A container image as the pod needs it: its config (from the Dockerfile) and its files. */
export interface Image {
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  /** Host paths that stand in for the image's files (dest: absolute path in the image). */
  files: Array<{ src: string; dest: string }>;
}

/** ENTRYPOINT, CMD, WORKDIR, ENV and USER of a Dockerfile's last stage, and what its COPYs name. */
export function imageConfig(dockerfile: string): Omit<Image, 'files'> & { copied: string[] } {
  const text = readFileSync(dockerfile, 'utf8').replace(/\\\n/g, ' ');
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const last = lines
    .map((l, i) => (/^FROM\s/i.test(l) ? i : -1))
    .filter((i) => i >= 0)
    .at(-1);
  if (last === undefined) throw new Error(`${dockerfile}: no FROM`);
  const cfg = {
    entrypoint: [] as string[],
    cmd: [] as string[],
    workdir: '/',
    env: {} as Record<string, string>,
    user: undefined as string | undefined,
    copied: [] as string[],
  };
  const json = (v: string, what: string): string[] => {
    try {
      return JSON.parse(v) as string[];
    } catch {
      throw new Error(`${dockerfile}: ${what} must be in exec (JSON) form`);
    }
  };
  for (const l of lines.slice(last + 1)) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(l) ?? [];
    switch (op?.toUpperCase()) {
      case 'ENTRYPOINT':
        cfg.entrypoint = json(rest!, 'ENTRYPOINT');
        cfg.cmd = [];
        break;
      case 'CMD':
        cfg.cmd = json(rest!, 'CMD');
        break;
      case 'WORKDIR':
        cfg.workdir = rest!;
        break;
      case 'USER':
        cfg.user = rest!;
        break;
      case 'ENV':
        for (const m of rest!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) cfg.env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
        break;
      case 'COPY': {
        const words = rest!.split(/\s+/).filter((w) => !w.startsWith('--'));
        const dest = words.pop()!;
        for (const src of words)
          cfg.copied.push(join(dest.startsWith('/') ? dest : join(cfg.workdir, dest), dest.endsWith('/') || words.length > 1 ? src.split('/').pop()! : ''));
        break;
      }
      default:
        break;
    }
  }
  return cfg;
}

export interface RunPodOptions {
  api: Api;
  /** The pod as the apiserver admitted it (dry run). */
  pod: Obj;
  /** Its address (a loopback address of its own, standing in for the pod network). */
  podIP: string;
  image: Image;
  /** What the kubelet injects: KUBERNETES_SERVICE_HOST/PORT. */
  service: { host: string; port: string };
}

/** Writes the pod's volumes and starts its (single) container as described in the file comment. */
export async function runPod(o: RunPodOptions): Promise<PodProc> {
  const { pod, api } = o;
  const name = pod.metadata.name;
  const ns = pod.metadata.namespace!;
  const spec = pod.spec as V1PodSpec;
  if (spec.containers.length !== 1) throw new Error('one container per pod is emulated');
  const c = spec.containers[0]!;
  const sc = { ...spec.securityContext, ...c.securityContext };
  const uid = Number(sc.runAsUser);
  const gid = Number(sc.runAsGroup ?? sc.runAsUser);
  const fsGroup = spec.securityContext?.fsGroup;
  if (!Number.isInteger(uid) || uid === 0) throw new Error('the pod must name a non-root runAsUser');
  const dir = workDir(`pod-${name}`);
  const logFile = join(dir, 'container.log');

  // Files the kubelet writes for the volumes: atomic-writer modes, then fsGroup ownership (the
  // group and its read bit for every file: a 0400 Secret becomes 0440 root:fsGroup).
  const writeFiles = (vdir: string, files: Record<string, Buffer>, mode: number, readOnly: boolean): void => {
    mkdirSync(vdir, { recursive: true, mode: 0o755 });
    for (const [f, content] of Object.entries(files)) {
      const p = join(vdir, f);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, content);
      chmodSync(p, fsGroup === undefined ? mode : mode | (readOnly ? 0o440 : 0o660));
      if (fsGroup !== undefined) chownSync(p, 0, fsGroup);
    }
    if (fsGroup !== undefined) {
      chownSync(vdir, 0, fsGroup);
      chmodSync(vdir, 0o2755);
    }
  };
  const get = async <T extends V1ConfigMap | V1Secret>(path: string): Promise<T> => {
    const r = await api.req<T>('GET', path);
    if (r.status !== 200) throw new Error(`GET ${path} → ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  };
  const keyFiles = (
    data: Record<string, string> | undefined,
    items: Array<{ key: string; path: string }> | undefined,
    decode: boolean,
  ): Record<string, Buffer> => {
    const all = Object.entries(data ?? {}).map(([k, v]) => [k, decode ? Buffer.from(v, 'base64') : Buffer.from(v)] as const);
    if (items === undefined) return Object.fromEntries(all);
    const m = new Map(all);
    return Object.fromEntries(
      items.map((i) => {
        const v = m.get(i.key);
        if (v === undefined) throw new Error(`volume item ${i.key} is not in the object`);
        return [i.path, v];
      }),
    );
  };

  const tokens: string[] = [];
  const volumes = new Map<string, { kind: 'files'; path: string } | { kind: 'emptyDir' }>();
  for (const v of spec.volumes ?? []) {
    const vdir = join(dir, 'volumes', v.name);
    if (v.configMap) {
      const cm = await get<V1ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/${v.configMap.name}`);
      writeFiles(vdir, keyFiles(cm.data, v.configMap.items, false), v.configMap.defaultMode ?? 0o644, true);
      volumes.set(v.name, { kind: 'files', path: vdir });
    } else if (v.secret) {
      const s = await get<V1Secret>(`/api/v1/namespaces/${ns}/secrets/${v.secret.secretName}`);
      writeFiles(vdir, keyFiles(s.data, v.secret.items, true), v.secret.defaultMode ?? 0o644, true);
      volumes.set(v.name, { kind: 'files', path: vdir });
    } else if (v.emptyDir) {
      volumes.set(v.name, { kind: 'emptyDir' });
    } else if (v.projected) {
      const files: Record<string, Buffer> = {};
      for (const src of v.projected.sources ?? []) {
        if (src.serviceAccountToken) {
          const tr = await api.req<{ status: { token: string } }>('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${spec.serviceAccountName}/token`, {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: {
              expirationSeconds: src.serviceAccountToken.expirationSeconds ?? 3600,
              ...(src.serviceAccountToken.audience ? { audiences: [src.serviceAccountToken.audience] } : {}),
            },
          });
          if (tr.status !== 201 && tr.status !== 200) throw new Error(`TokenRequest → ${tr.status}: ${JSON.stringify(tr.body).slice(0, 300)}`);
          files[src.serviceAccountToken.path] = Buffer.from(tr.body.status.token);
          tokens.push(tr.body.status.token);
        } else if (src.configMap) {
          Object.assign(
            files,
            keyFiles((await get<V1ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/${src.configMap.name}`)).data, src.configMap.items, false),
          );
        } else if (src.downwardAPI) {
          for (const it of src.downwardAPI.items ?? []) {
            const value = containerEnv([{ name: 'x', valueFrom: { fieldRef: it.fieldRef } }], { name, namespace: ns, podIP: o.podIP }).x!;
            files[it.path] = Buffer.from(value);
          }
        } else {
          throw new Error(`projected source ${Object.keys(src).join(',')} is not emulated`);
        }
      }
      writeFiles(vdir, files, v.projected.defaultMode ?? 0o644, true);
      volumes.set(v.name, { kind: 'files', path: vdir });
    } else {
      throw new Error(
        `volume ${v.name}: ${Object.keys(v)
          .filter((k) => k !== 'name')
          .join(',')} is not emulated`,
      );
    }
  }

  const env = containerEnv(c.env ?? [], { name, namespace: ns, podIP: o.podIP });
  // Kubernetes: command replaces the image's ENTRYPOINT (and drops its CMD), args replace CMD.
  const argv = [...(c.command ?? o.image.entrypoint), ...(c.args ?? (c.command ? [] : o.image.cmd))].map((a: string) => expandVars(a, env));
  if (argv.length === 0) throw new Error('neither the container nor the image names a command');
  const fullEnv: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: name,
    HOME: '/',
    ...o.image.env,
    KUBERNETES_SERVICE_HOST: o.service.host,
    KUBERNETES_SERVICE_PORT: o.service.port,
    ...env,
  };

  // The container's root: a copy-on-write view of the host's root (overlay, its upper layer on a
  // tmpfs of this mount namespace), the image's files bound in, then each volume at its mountPath.
  const R = '/run/pod/root';
  const at = (p: string): string => q(join(R, inImage(p)));
  const lines = [
    'set -eu',
    `hostname ${q(name)}`,
    'mount -t tmpfs -o mode=755 tmpfs /run',
    `mkdir -p /run/pod/u /run/pod/w ${R}`,
    `mount -t overlay overlay -o lowerdir=/,upperdir=/run/pod/u,workdir=/run/pod/w ${R}`,
    `mount -t proc proc ${at('/proc')}`,
    `mount --rbind /dev ${at('/dev')}`,
    `mount --bind /sys ${at('/sys')}`,
    `mount -o remount,bind,ro ${at('/sys')}`,
  ];
  const bind = (src: string, dest: string, readOnly: boolean, file: boolean): void => {
    lines.push(file ? `mkdir -p ${at(dirname(dest))} && : > ${at(dest)}` : `mkdir -p ${at(dest)}`);
    lines.push(`mount --bind ${q(src)} ${at(dest)}`);
    if (readOnly) lines.push(`mount -o remount,bind,ro ${at(dest)}`);
  };
  for (const f of o.image.files) bind(f.src, f.dest, true, statSync(f.src).isFile());
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (v === undefined) throw new Error(`volumeMount ${m.name} names no volume`);
    if (v.kind === 'emptyDir') {
      if (m.subPath) throw new Error('subPath of an emptyDir is not emulated');
      lines.push(`mkdir -p ${at(m.mountPath)}`, `mount -t tmpfs -o mode=${fsGroup === undefined ? '0777' : '2777'},size=16m tmpfs ${at(m.mountPath)}`);
      if (fsGroup !== undefined) lines.push(`chgrp ${fsGroup} ${at(m.mountPath)}`);
    } else {
      const src = m.subPath ? join(v.path, m.subPath) : v.path;
      bind(src, m.mountPath, m.readOnly === true, statSync(src).isFile());
    }
  }
  if (sc.readOnlyRootFilesystem) lines.push(`mount -o remount,ro ${R}`);
  const groups = [gid, ...(fsGroup === undefined ? [] : [fsGroup]), ...(spec.securityContext?.supplementalGroups ?? [])];
  const caps = sc.capabilities?.drop?.includes('ALL') ? ['--inh-caps=-all', '--bounding-set=-all'] : [];
  const nnp = sc.allowPrivilegeEscalation === false ? ['--no-new-privs'] : [];
  const inner =
    `cd ${q(o.image.workdir)} && exec setpriv --reuid=${uid} --regid=${gid} --groups=${[...new Set(groups)].join(',')} ${[...caps, ...nnp].join(' ')} -- ` +
    `/usr/bin/env -i ${Object.entries(fullEnv)
      .map(([k, v]) => q(`${k}=${v}`))
      .join(' ')} ${argv.map(q).join(' ')}`;
  lines.push(`exec chroot ${R} /bin/sh -c ${q(inner)}`);
  const script = join(dir, 'start.sh');
  writeFileSync(script, lines.join('\n') + '\n');

  // A pid namespace too: the container's first process is its PID 1, and killing it (or the
  // test's process group) ends everything in the pod.
  const daemon = startDaemon(`pod-${name}`, 'unshare', ['--pid', '--fork', '--mount', '--uts', '--propagation', 'private', 'bash', script], { logFile });
  const output = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    name,
    ip: o.podIP,
    daemon,
    tokens,
    output,
    logs: () =>
      output()
        .split('\n')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    stop: () => daemon.stop(15_000),
  };
}
