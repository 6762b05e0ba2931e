// The signed event body (docs/event-contract.md): digest, canonical form, HMAC-SHA256.
// node:crypto is pure computation here; the key arrives as a value, never as a file.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AllowListPayload } from '../seams.ts';
import { canonicalJson } from './canonical.ts';
import type { Diff } from './diff.ts';

export const PAYLOAD_VERSION = 1;
export const TAG_PREFIX = 'kube-salt-bridge/cluster/';
const DIGEST_PREFIX = 'sha256:';
const SIGNATURE_PREFIX = 'hmac-sha256:';

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

export type UnsignedPayload = Omit<AllowListPayload, 'signature'>;

export interface PayloadInput {
  readonly cluster: string;
  readonly generation: number;
  readonly list: AllowList;
  readonly diff: Diff;
  readonly nodes: number;
  readonly target: string;
  /** Publication time in ms since the epoch; printed as RFC 3339 UTC with milliseconds. */
  readonly issuedAtMs: number;
}

/** Builds and signs a payload. `key` is the shared signing key (UTF-8). */
export function buildPayload(input: PayloadInput, key: string | Uint8Array): AllowListPayload {
  const unsigned: UnsignedPayload = {
    version: PAYLOAD_VERSION,
    cluster: input.cluster,
    generation: input.generation,
    digest: allowListDigest(input.list),
    ipv4: [...input.list.ipv4],
    ipv6: [...input.list.ipv6],
    added: [...input.diff.added],
    removed: [...input.diff.removed],
    ...(input.diff.added_truncated ? { added_truncated: true } : {}),
    ...(input.diff.removed_truncated ? { removed_truncated: true } : {}),
    nodes: input.nodes,
    target: input.target,
    issued_at: new Date(input.issuedAtMs).toISOString(),
  };
  return signPayload(unsigned, key);
}

/** The keys that are signed (docs/event-contract.md); anything else on an event (Salt's `_stamp`) is not. */
export const SIGNED_KEYS = [
  'version', 'cluster', 'generation', 'digest', 'ipv4', 'ipv6', 'added', 'removed', 'nodes', 'target', 'issued_at',
  'added_truncated', 'removed_truncated',
] as const;

/** The exact bytes that are signed: the contract's keys that are present, sorted, no whitespace. */
export function canonicalForm(payload: UnsignedPayload | AllowListPayload): string {
  const src = payload as unknown as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const k of SIGNED_KEYS) if (src[k] !== undefined) picked[k] = src[k];
  return canonicalJson(picked);
}

export function signPayload(unsigned: UnsignedPayload, key: string | Uint8Array): AllowListPayload {
  const mac = createHmac('sha256', key).update(canonicalForm(unsigned), 'utf8').digest('hex');
  return { ...unsigned, signature: SIGNATURE_PREFIX + mac };
}

/** What a minion checks: signature over the canonical form, and the digest over the lists. */
export function verifyPayload(payload: AllowListPayload, key: string | Uint8Array): boolean {
  if (payload.digest !== allowListDigest(payload)) return false;
  const expected = Buffer.from(signPayload(payload, key).signature);
  const actual = Buffer.from(String(payload.signature));
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Size of the salt-api request body that carries this payload (approximate: the payload's JSON). */
export function payloadBytes(payload: AllowListPayload): number {
  return Buffer.byteLength(JSON.stringify(payload), 'utf8');
}
