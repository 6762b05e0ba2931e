// One cluster's run, as the controller calls it: project the nodes, digest, diff against what was
// last published, ask the safety policies. Still pure; publishing (generation, signature, I/O)
// follows only on a 'publish' verdict. planCluster computes it all from the full node set;
// ClusterPlanner gives the same plan from what changed since its last one (incremental.ts).

import type { ClusterView } from '../seams.ts';
import { capDiff, diffLists, type Diff, type EntryLists } from './diff.ts';
import { IncrementalProjection, type Change } from './incremental.ts';
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
  /** Against the published list, capped (DIFF_CAP) as the full form carries it. */
  readonly diff: Diff;
  /** The same, complete: what a delta from the published list carries. */
  readonly change: Change;
  readonly verdict: Verdict;
}

export function planCluster(input: ClusterPlanInput): ClusterPlan {
  const projection = projectNodes(input.view.synced ? input.view.nodes.values() : [], input.projection);
  const all = diffLists(input.published, projection, Number.POSITIVE_INFINITY);
  return finish(input, projection, allowListDigest(projection), { added: all.added, removed: all.removed });
}

/**
 * planCluster for one cluster, run after run: equal to it for every input, at the cost of the
 * nodes whose NodeInfo changed since the last call (plus the digest, O(entries)).
 */
export class ClusterPlanner {
  private readonly incremental = new IncrementalProjection();

  plan(input: ClusterPlanInput): ClusterPlan {
    // Unknown: nothing of the nodes is published (the cache stays for when the view is back).
    if (!input.view.synced) return planCluster(input);
    const projection = this.incremental.update(input.view.nodes, input.projection);
    const digest = allowListDigest(projection);
    return finish(input, projection, digest, this.incremental.change(input.published, projection, digest));
  }
}

function finish(input: ClusterPlanInput, projection: Projection, digest: string, change: Change): ClusterPlan {
  const verdict = evaluate(
    {
      synced: input.view.synced,
      desired: { ipv4: projection.ipv4, ipv6: projection.ipv6, nodes: projection.nodes, digest },
      published: input.published,
      change: { added: change.added.length, removed: change.removed.length },
    },
    safetyPolicies(input.safety),
    input.override,
  );
  return { projection, digest, diff: capDiff(change.added, change.removed), change, verdict };
}
