// Public entry point of src/kube.
export { loadKubeConfig, describeKubeConfig, type LoadKubeConfigOptions } from './kubeconfig.ts';
export {
  KubeNodeSource,
  createKubeNodeSource,
  toNodeInfo,
  type KubeNodeSourceOptions,
  type CreateKubeNodeSourceOptions,
  type KubeNodeSourceStats,
} from './nodeSource.ts';
export { Reflector, type ReflectorOptions, type ReflectorHandler, type ReflectorStats, type ReflectorPhase } from './reflector.ts';
export { createClientNodeApi, type ClientNodeApiOptions } from './clientNodeApi.ts';
export type { NodeApi, KubeNode, ListOptions, ListPage, WatchOptions, WatchEvent, WatchHandle } from './nodeApi.ts';
export * from './errors.ts';
