// src/plan — the pure core (CONTRIBUTING.md habits 1, 2, 8): no Kubernetes client, axios, ws,
// pino, fs or clock. Everything here takes data (and `now` where time matters) and returns data.

export { canonicalEntry, canonicalHost, MIN_PREFIX, type EntryResult, type HostResult } from './entry.ts';
export { formatIp, formatNetwork, networkContains, parseIp, parseNetwork, type IpBytes, type IpNetwork } from './ip.ts';
export {
  projectNodes,
  sortedCodePoint,
  DEFAULT_MAX_ADDRESSES_PER_NODE,
  type Projection,
  type ProjectionOptions,
  type RejectReason,
  type RejectedEntry,
} from './project.ts';
export { canonicalJson } from './canonical.ts';
export {
  allowListDigest,
  buildCheckPayload,
  buildDeltaPayload,
  buildPayload,
  deferredPayload,
  signDelta,
  isDelta,
  canonicalForm,
  eventTag,
  payloadBytes,
  signPayload,
  unsignedForLog,
  verifyPayload,
  DRY_RUN_SIGNATURE,
  PAYLOAD_VERSION,
  SALT_API_MAX_BODY_BYTES,
  SIGNED_KEYS,
  TAG_PREFIX,
  MINION_ID,
  type AllowList,
  type DeltaInput,
  type PayloadInput,
  type UnsignedDelta,
  type UnsignedPayload,
} from './payload.ts';
export {
  generateSeed,
  keyIdOf,
  parseKeyText,
  signerFromSeed,
  verifierFromPublicKey,
  KEY_BYTES,
  SIGNATURE_PREFIX,
  type KeyText,
  type Signer,
  type Verifier,
} from './keys.ts';
export { capDiff, diffLists, sameEntries, DIFF_CAP, type Diff, type EntryLists } from './diff.ts';
export { IncrementalProjection, type Change } from './incremental.ts';
export { nextGeneration, raiseFloor } from './generation.ts';
export {
  emptyPolicy,
  evaluate,
  listChange,
  minNodesPolicy,
  safetyPolicies,
  shrinkPolicy,
  syncedPolicy,
  type Hold,
  type HoldReason,
  type ListChange,
  type PolicyInput,
  type SafetyOptions,
  type SafetyPolicy,
  type Verdict,
} from './policy.ts';
export { dueIn, initialSchedule, runFinished, runStarted, scheduleRun, type ScheduleOptions, type ScheduleState } from './schedule.ts';
export { chooseForm, type FormChoice, type FormInput } from './delta.ts';
export { ClusterPlanner, planCluster, type ClusterPlan, type ClusterPlanInput } from './cluster.ts';
