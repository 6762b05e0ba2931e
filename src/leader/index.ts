// Public entry point of src/leader.
export { LeaderElector, type LeaderElectorOptions, type LeaderElectorStats } from './elector.ts';
export { createLeaseLock, type LeaseLock, type LeaseLockOptions } from './leaseLock.ts';
export { LeaderDecider, validateTiming, DEFAULT_TIMING, type LeaderTiming, type LeaseRecord, type ObservedLease, type Decision } from './decide.ts';
