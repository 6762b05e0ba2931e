// One cluster's run, as the controller calls it: project the nodes, digest, diff against what was
// last published, ask the safety policies. Still pure; publishing (generation, signature, I/O)
// follows only on a 'publish' verdict.

import type { ClusterView } from '../seams.ts';
import { diffLists, type Diff, type EntryLists } from './diff.ts';
import { allowListDigest } from './payload.ts';
import { evaluate, safetyPolicies, type SafetyOptions, type Verdict } from './policy.ts';
import { projectNodes, type Projection, type ProjectionOptions } from './project.ts';

export interface ClusterPlanInput {
  readonly view: ClusterView;
  readonly projection: ProjectionOptions;
  readonly safety: SafetyOptions;
  /** What was last published for this cluster (persisted by the controller), if anything. */
  readonly published: (EntryLists & { readonly digest: string }) | undefined;
  /** Operator override token: the digest of a held plan to publish anyway. */
  readonly override?: string;
}

export interface ClusterPlan {
  readonly projection: Projection;
  readonly digest: string;
  readonly diff: Diff;
  readonly verdict: Verdict;
}

export function planCluster(input: ClusterPlanInput): ClusterPlan {
  const projection = projectNodes(input.view.synced ? input.view.nodes.values() : [], input.projection);
  const digest = allowListDigest(projection);
  const verdict = evaluate(
    {
      synced: input.view.synced,
      desired: { ipv4: projection.ipv4, ipv6: projection.ipv6, nodes: projection.nodes, digest },
      published: input.published,
    },
    safetyPolicies(input.safety),
    input.override,
  );
  return { projection, digest, diff: diffLists(input.published, projection), verdict };
}
