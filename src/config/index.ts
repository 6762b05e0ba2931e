// src/config — the one place configuration is read and validated (CONTRIBUTING.md habit 5).

export { loadConfig, validate, type LoadOptions } from './load.ts';
export { Secret } from './secret.ts';
export { ConfigIssuesError, type Issue } from './issues.ts';
export { ENV_OVERRIDES, ENV_SALT_PASSWORD, ENV_SIGNING_KEY, type Env } from './env.ts';
export type {
  ClusterConfig,
  ClusterSource,
  Config,
  EventStreamMode,
  HttpConfig,
  LeaderElectionConfig,
  LogLevel,
  NodeAddressType,
  PublishConfig,
  SafetyConfig,
  SaltConfig,
  SigningConfig,
  WatchConfig,
} from './types.ts';
