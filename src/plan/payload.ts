// The signed event body (docs/event-contract.md, version 2): digest, canonical form, Ed25519
// signature. Pure computation; the key arrives as a Signer, never as a file.

import { createHash } from 'node:crypto';
import type { AllowListPayload, DeltaPayload, EventPayload } from '../seams.ts';
import { canonicalJson } from './canonical.ts';
import { diffLists, type Diff } from './diff.ts';
import type { Signer, Verifier } from './keys.ts';

export const PAYLOAD_VERSION = 2;
export const TAG_PREFIX = 'kube-salt-bridge/cluster/';
/** A Salt minion id as the contract admits it (bus events, the unsigned `minions` hint). */
export const MINION_ID = /^[A-Za-z0-9._-]{1,128}$/;
const DIGEST_PREFIX = 'sha256:';
/** A digest as the contract writes it: `sha256:` + 64 lower-case hex digits. */
const DIGEST_TEXT = /^sha256:[0-9a-f]{64}$/;
/** What `--dry-run` logs instead of the signature: a logged payload must never be one that could be fired. */
export const DRY_RUN_SIGNATURE = '<not signed: dry run>';

/** salt-api's default max_request_body_size. */
export const SALT_API_MAX_BODY_BYTES = 1024 * 1024;

export interface AllowList {
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
}

export function eventTag(cluster: string): string {
  return `${TAG_PREFIX}${cluster}/nodes`;
}

/** `sha256:` + hex SHA-256 of the canonical JSON of `{"ipv4": [...], "ipv6": [...]}`. */
export function allowListDigest(list: AllowList): string {
  const canonical = canonicalJson({ ipv4: list.ipv4, ipv6: list.ipv6 });
  return DIGEST_PREFIX + createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** A payload before signing (the unsigned routing hint `minions` is added, if at all, after). */
export type UnsignedPayload = Omit<AllowListPayload, 'signature' | 'minions'>;
/** A delta (or check form) before signing. */
export type UnsignedDelta = Omit<DeltaPayload, 'signature' | 'minions'>;

/** Whether an event payload is the delta form (it carries `base_digest`). */
export function isDelta(p: EventPayload): p is DeltaPayload {
  return Object.hasOwn(p, 'base_digest');
}

export interface PayloadInput {
  readonly cluster: string;
  readonly generation: number;
  readonly list: AllowList;
  readonly diff: Diff;
  readonly nodes: number;
  /** Publication time in ms since the epoch; printed as RFC 3339 UTC with milliseconds. */
  readonly issuedAtMs: number;
}

/** Builds and signs a payload with the bridge's key; `key_id` names that key. */
export function buildPayload(input: PayloadInput, signer: Pick<Signer, 'keyId' | 'sign'>): AllowListPayload {
  return signPayload(unsignedPayload(input, signer.keyId), signer);
}

/** The payload's fields before the signature; `digest` is the list's when the caller has it already. */
function unsignedPayload(input: PayloadInput & { readonly digest?: string }, keyId: string): UnsignedPayload {
  return {
    version: PAYLOAD_VERSION,
    cluster: input.cluster,
    generation: input.generation,
    digest: input.digest ?? allowListDigest(input.list),
    ipv4: [...input.list.ipv4],
    ipv6: [...input.list.ipv6],
    added: [...input.diff.added],
    removed: [...input.diff.removed],
    ...(input.diff.added_truncated ? { added_truncated: true } : {}),
    ...(input.diff.removed_truncated ? { removed_truncated: true } : {}),
    nodes: input.nodes,
    issued_at: new Date(input.issuedAtMs).toISOString(),
    key_id: keyId,
  };
}

/**
 * The full payload of a generation whose signature is made when first read, not before: a
 * generation fired as a delta needs its full form only if a minion asks for it (need_full), a
 * re-send or the resync goes out, and most never do. Ed25519 is deterministic and the payload is
 * frozen, so the signature is the same whenever it is read; to every reader (JSON, spread,
 * structuredClone, verifyPayload) the object is the one buildPayload returns. `digest` is the
 * list's, when the caller has it already (planCluster computed it); `bytes` is payloadBytes of
 * the payload, computed without signing.
 */
export function deferredPayload(
  input: PayloadInput & { readonly digest?: string },
  signer: Pick<Signer, 'keyId' | 'sign'>,
): { readonly payload: AllowListPayload; readonly bytes: number } {
  const unsigned = unsignedPayload(input, signer.keyId);
  for (const list of [unsigned.ipv4, unsigned.ipv6, unsigned.added, unsigned.removed]) Object.freeze(list);
  let signature: string | undefined;
  const payload = { ...unsigned } as AllowListPayload;
  Object.defineProperty(payload, 'signature', {
    enumerable: true,
    get: () => (signature ??= signer.sign(canonicalForm(unsigned))),
  });
  Object.freeze(payload);
  // The JSON of the lists without stringifying them: canonical entries (addresses and networks)
  // hold no character JSON escapes, so each is its length + 2 quotes, with commas between.
  const listBytes = (l: readonly string[]) => l.reduce((n, e) => n + e.length + 3, l.length ? 1 : 2);
  const rest = payloadBytes({ ...unsigned, ipv4: [], ipv6: [], signature: SIGNATURE_PLACEHOLDER });
  return { payload, bytes: rest - 4 + listBytes(unsigned.ipv4) + listBytes(unsigned.ipv6) };
}

/** As long as every signature the Signer makes: `ed25519:` + base64 of 64 bytes. */
const SIGNATURE_PLACEHOLDER = 'ed25519:' + 'A'.repeat(86) + '==';

export interface DeltaInput {
  readonly cluster: string;
  readonly generation: number;
  /** The list the delta applies to: the one published before. */
  readonly base: AllowList;
  /** The list that results. */
  readonly list: AllowList;
  readonly nodes: number;
  readonly issuedAtMs: number;
}

/**
 * Builds and signs the delta from `base` to `list`: the complete change (never capped), each
 * family's entries together, sorted; `base_digest` names the base, `digest` the result.
 */
export function buildDeltaPayload(input: DeltaInput, signer: Pick<Signer, 'keyId' | 'sign'>): DeltaPayload {
  const change = diffLists(input.base, input.list, Number.POSITIVE_INFINITY);
  return signDelta(
    { ...input, digest: allowListDigest(input.list), baseDigest: allowListDigest(input.base), added: change.added, removed: change.removed },
    signer,
  );
}

/**
 * The delta of a change already known: `added` and `removed` complete and sorted (the plan's
 * change from the list of `baseDigest` to the one of `digest`). buildDeltaPayload computes them.
 */
export function signDelta(
  input: {
    readonly cluster: string;
    readonly generation: number;
    readonly digest: string;
    readonly baseDigest: string;
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly nodes: number;
    readonly issuedAtMs: number;
  },
  signer: Pick<Signer, 'keyId' | 'sign'>,
): DeltaPayload {
  const unsigned: UnsignedDelta = {
    version: PAYLOAD_VERSION,
    cluster: input.cluster,
    generation: input.generation,
    digest: input.digest,
    base_digest: input.baseDigest,
    added: [...input.added],
    removed: [...input.removed],
    nodes: input.nodes,
    issued_at: new Date(input.issuedAtMs).toISOString(),
    key_id: signer.keyId,
  };
  return signPayload(unsigned, signer);
}

/**
 * The check form of a published generation: "the list of this generation has digest D" (a delta
 * from D to D, nothing added or removed), signed now. A minion at that list answers already
 * current; any other asks for the full list.
 */
export function buildCheckPayload(
  input: { readonly cluster: string; readonly generation: number; readonly digest: string; readonly nodes: number; readonly issuedAtMs: number },
  signer: Pick<Signer, 'keyId' | 'sign'>,
): DeltaPayload {
  const unsigned: UnsignedDelta = {
    version: PAYLOAD_VERSION,
    cluster: input.cluster,
    generation: input.generation,
    digest: input.digest,
    base_digest: input.digest,
    added: [],
    removed: [],
    nodes: input.nodes,
    issued_at: new Date(input.issuedAtMs).toISOString(),
    key_id: signer.keyId,
  };
  return signPayload(unsigned, signer);
}

/** The keys that are signed (docs/event-contract.md); anything else on an event (Salt's `_stamp`, `minions`) is not. */
export const SIGNED_KEYS = [
  'version',
  'cluster',
  'generation',
  'digest',
  'base_digest',
  'ipv4',
  'ipv6',
  'added',
  'removed',
  'nodes',
  'issued_at',
  'key_id',
  'added_truncated',
  'removed_truncated',
] as const;

/** The exact text that is signed: the contract's keys that are present, sorted, no whitespace, ASCII. */
export function canonicalForm(payload: UnsignedPayload | UnsignedDelta | EventPayload): string {
  const src = payload as unknown as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const k of SIGNED_KEYS) if (src[k] !== undefined) picked[k] = src[k];
  return canonicalJson(picked);
}

/** Signs as it stands: `unsigned.key_id` must already be the signer's (buildPayload sees to it). */
export function signPayload(unsigned: UnsignedPayload, signer: Pick<Signer, 'keyId' | 'sign'>): AllowListPayload;
export function signPayload(unsigned: UnsignedDelta, signer: Pick<Signer, 'keyId' | 'sign'>): DeltaPayload;
export function signPayload(unsigned: UnsignedPayload | UnsignedDelta, signer: Pick<Signer, 'keyId' | 'sign'>): EventPayload {
  if (unsigned.key_id !== signer.keyId) throw new RangeError(`key_id ${unsigned.key_id} is not the signer's (${signer.keyId})`);
  return { ...unsigned, signature: signer.sign(canonicalForm(unsigned)) };
}

/** The same payload as `--dry-run` logs it: every field but the signature, which is replaced by a marker. */
export function unsignedForLog<P extends EventPayload>(payload: P): P {
  return { ...payload, signature: DRY_RUN_SIGNATURE };
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrings = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isFlag = (v: unknown): boolean => v === undefined || typeof v === 'boolean';

/** The keys only the full form has; a delta carries none of them. */
const FULL_ONLY_KEYS = ['ipv4', 'ipv6', 'added_truncated', 'removed_truncated'] as const;

/**
 * True only for a well-formed version 2 payload whose `key_id` is this key's and whose signature
 * verifies; in the full form its digest must also match its lists. A delta (it carries
 * `base_digest`) has no list to check its digest against: both digests must be well-formed and
 * none of the full form's keys may be present (a payload mixing the forms is refused). Anything
 * else (another version, another key, a changed field, a malformed value) is false, never an
 * exception. The unsigned `minions` hint is not looked at.
 */
export function verifyPayload(payload: unknown, verifier: Pick<Verifier, 'keyId' | 'verify'>): boolean {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return false;
  const p = payload as Record<string, unknown>;
  const common =
    p.version === PAYLOAD_VERSION &&
    typeof p.cluster === 'string' &&
    DNS_LABEL.test(p.cluster) &&
    isCount(p.generation) &&
    isCount(p.nodes) &&
    typeof p.digest === 'string' &&
    typeof p.issued_at === 'string' &&
    isStrings(p.added) &&
    isStrings(p.removed) &&
    typeof p.key_id === 'string' &&
    typeof p.signature === 'string';
  if (!common || p.key_id !== verifier.keyId) return false;
  const delta = Object.hasOwn(p, 'base_digest');
  const formOk = delta
    ? typeof p.base_digest === 'string' &&
      DIGEST_TEXT.test(p.base_digest) &&
      DIGEST_TEXT.test(p.digest as string) &&
      FULL_ONLY_KEYS.every((k) => !Object.hasOwn(p, k))
    : isStrings(p.ipv4) && isStrings(p.ipv6) && isFlag(p.added_truncated) && isFlag(p.removed_truncated);
  if (!formOk) return false;
  try {
    if (!delta && p.digest !== allowListDigest({ ipv4: p.ipv4 as string[], ipv6: p.ipv6 as string[] })) return false;
    return verifier.verify(canonicalForm(p as unknown as EventPayload), p.signature as string);
  } catch {
    return false;
  }
}

/** Size of the salt-api request body that carries this payload (approximate: the payload's JSON). */
export function payloadBytes(payload: EventPayload): number {
  return Buffer.byteLength(JSON.stringify(payload), 'utf8');
}
