import type { PlacementConstraint } from './compose/stack-spec.js';

/**
 * Where a service's replicas run: pure logic over the nodes and the current placement, so it can be tested
 * without a cluster. Replicas are numbered slots (`1`..`N`, or a node id for a global service); a slot that
 * sits on a node still eligible stays there, the others go to the eligible node with the fewest replicas of
 * the service (then the fewest replicas overall, then by name), as Swarm's spread strategy does. A global
 * service's slot stays on its node while the node is down.
 */
export interface PlacementNode {
  id: string;
  hostname: string;
  labels: Record<string, string>;
  /** Only `ready` nodes receive replicas; `down` and `drain` ones give theirs up. */
  availability: 'ready' | 'down' | 'drain';
  /** Replicas of every service on the node, for the tie-break. */
  load: number;
}

export interface PlacementRule {
  mode: 'replicated' | 'global';
  replicas: number;
  constraints: PlacementConstraint[];
  /** null: no limit. A service that publishes host ports gets at most one per node, whatever this says. */
  maxReplicasPerNode: number | null;
  publishesPorts: boolean;
}

export interface Placement {
  /** Slot to node, for every slot that could be placed. */
  slots: Record<string, string>;
  /** Slots that no eligible node could take, and why. */
  unplaced: string[];
  reason: string | null;
}

export function satisfies(node: PlacementNode, constraint: PlacementConstraint): boolean {
  const actual = constraint.field.kind === 'hostname' ? node.hostname : node.labels[constraint.field.name];
  return constraint.operator === '==' ? actual === constraint.value : actual !== constraint.value;
}

export function eligibleNodes(nodes: PlacementNode[], constraints: PlacementConstraint[]): PlacementNode[] {
  return nodes.filter((node) => node.availability === 'ready' && constraints.every((constraint) => satisfies(node, constraint)));
}

export function place(rule: PlacementRule, nodes: PlacementNode[], current: Record<string, string>): Placement {
  const eligible = eligibleNodes(nodes, rule.constraints);
  if (rule.mode === 'global') {
    // As Swarm does: a node taken for down keeps its replica, so that on its return it goes on running the
    // same container (placed anew, it would be stopped and another started). Drained, removed or no longer
    // matching the constraints, it gives it up.
    const returning = nodes.filter(
      (node) =>
        node.availability === 'down' && current[node.id] === node.id && rule.constraints.every((constraint) => satisfies(node, constraint)),
    );
    const slots = Object.fromEntries([...eligible, ...returning].map((node) => [node.id, node.id]));
    return { slots, unplaced: [], reason: eligible.length === 0 ? noNodeReason(nodes) : null };
  }
  const perNodeLimit = rule.publishesPorts ? 1 : (rule.maxReplicasPerNode ?? Infinity);
  const counts = new Map(eligible.map((node) => [node.id, 0]));
  const slots: Record<string, string> = {};
  const wanted = Array.from({ length: rule.replicas }, (_, index) => String(index + 1));
  const moving: string[] = [];
  for (const slot of wanted) {
    const node = current[slot];
    const count = node === undefined ? undefined : counts.get(node);
    if (node !== undefined && count !== undefined && count < perNodeLimit) {
      slots[slot] = node;
      counts.set(node, count + 1);
    } else moving.push(slot);
  }
  const unplaced: string[] = [];
  for (const slot of moving) {
    const target = leastLoaded(eligible, counts, perNodeLimit);
    if (target === undefined) {
      unplaced.push(slot);
      continue;
    }
    slots[slot] = target.id;
    counts.set(target.id, counts.get(target.id)! + 1);
  }
  const reason =
    unplaced.length === 0
      ? null
      : eligible.length === 0
        ? noNodeReason(nodes)
        : `${unplaced.length} replica(s) over the limit of ${perNodeLimit} per node on ${eligible.length} eligible node(s)`;
  return { slots, unplaced, reason };
}

function leastLoaded(eligible: PlacementNode[], counts: Map<string, number>, limit: number): PlacementNode | undefined {
  return eligible
    .filter((node) => counts.get(node.id)! < limit)
    .sort((a, b) => counts.get(a.id)! - counts.get(b.id)! || a.load - b.load || a.hostname.localeCompare(b.hostname))[0];
}

function noNodeReason(nodes: PlacementNode[]): string {
  return nodes.some((node) => node.availability === 'ready') ? 'no ready node satisfies the placement constraints' : 'no ready node';
}
