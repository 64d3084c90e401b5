import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import { newLeaseHolder } from '../metadata/lease-holder.js';
import { serviceId } from './deploy-keys.js';
import type { ControllerWrite, DeployStore, WriteOutcome } from './deploy-store.js';
import type {
  Assignment,
  HistoryEntry,
  NodeRecord,
  ReplicaReport,
  Revision,
  ServiceRecord,
  ServiceState,
  SlotRecord,
} from './deploy-types.js';
import { place, type PlacementNode } from './placement.js';
import { isActive, startRollout, stepRollout, type RolloutEvent, type SlotView } from './rollout.js';

export interface ControllerOptions {
  leaseMs: number;
  tickMs: number;
  /** A node silent this long is down and its replicas are placed elsewhere. */
  nodeGraceMs: number;
  now: () => number;
  /** How long a pass over every service took (the controller's tick time), for the metrics. */
  observePass: (seconds: number) => void;
}

/** Everything one reconciliation pass reads once, for every service. */
interface Snapshot {
  now: number;
  nodes: PlacementNode[];
  /** The nodes silent past the grace period. */
  down: Set<string>;
  reports: Map<string, ReplicaReport>;
}

/**
 * The deployment controller: in each registry replica, but acting only while it holds the controller lease.
 * Each pass reads every service, places its slots, steps its rollout and writes the result with the lease's
 * epoch as a fencing token, so a controller that lost its lease (paused, partitioned) changes nothing. It
 * runs on a wake-up (a deploy, a push to a tracked tag, a node report: Redis pub/sub) and every tick (for
 * deadlines and heartbeats).
 */
export class DeployController {
  private readonly holder = newLeaseHolder();
  private epoch: number | undefined;
  /** When this controller took the lease: heartbeats missed before it (no controller was listening) do not count. */
  private leaderSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly store: DeployStore,
    private readonly subscriber: Redis,
    private readonly logger: Logger,
    private readonly options: ControllerOptions,
  ) {}

  async start(): Promise<void> {
    this.subscriber.on('message', () => this.wake());
    await this.subscriber.subscribe(this.store.keys.wakeChannel());
    this.timer = setInterval(() => this.wake(), this.options.tickMs);
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    if (this.epoch !== undefined) await this.store.releaseController(this.holder).catch(() => undefined);
    this.subscriber.disconnect();
  }

  get isLeader(): boolean {
    return this.epoch !== undefined;
  }

  /** Runs a pass now, or right after the one running. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((error: unknown) => this.logger.error({ err: error }, 'deploy controller pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async pass(): Promise<void> {
    if (!(await this.holdLease())) return;
    const started = performance.now();
    await this.reconcileAll();
    this.options.observePass((performance.now() - started) / 1000);
  }

  private async reconcileAll(): Promise<void> {
    const snapshot = await this.snapshot();
    for (const stack of await this.store.stacks()) {
      for (const name of await this.store.stackServices(stack)) {
        const record = await this.store.service(stack, name);
        if (record && !(await this.reconcile(record, snapshot))) return;
      }
    }
    for (const id of await this.store.removingServices()) {
      const [stack = '', name = ''] = id.split('/');
      const record = await this.store.service(stack, name);
      if (record?.desired === 0 && !(await this.remove(record))) return;
    }
  }

  /** A service of a removed stack: its replicas' assignments and its records go, in one fenced write. */
  private async remove(record: ServiceRecord): Promise<boolean> {
    const id = serviceId(record.stack, record.name);
    const assignments: Record<string, string[]> = {};
    for (const [slot, { node }] of Object.entries(record.state.slots)) (assignments[node] ??= []).push(replicaId(id, slot));
    const tracked = new Map<string, { repository: string; tag: string }>();
    for (const { spec } of await this.store.revisions(id))
      if (spec.berth.track !== null)
        tracked.set(`${spec.repository}:${spec.berth.track}`, { repository: spec.repository, tag: spec.berth.track });
    const outcome = await this.store.removeService({
      holder: this.holder,
      epoch: this.epoch!,
      serviceId: id,
      generation: record.generation,
      tracked: [...tracked.values()],
      assignments,
    });
    if (outcome === 'ok') this.logger.info({ service: id, replicas: Object.values(assignments).flat().length }, 'service removed');
    return this.written(outcome);
  }

  private async holdLease(): Promise<boolean> {
    if (this.epoch !== undefined && (await this.store.renewController(this.holder, this.epoch, this.options.leaseMs))) return true;
    if (this.epoch !== undefined) this.logger.warn({ epoch: this.epoch }, 'deploy controller lease lost');
    this.epoch = await this.store.acquireController(this.holder, this.options.leaseMs);
    if (this.epoch !== undefined) {
      this.leaderSince = this.options.now();
      this.logger.info({ epoch: this.epoch }, 'deploy controller lease taken');
    }
    return this.epoch !== undefined;
  }

  private async snapshot(): Promise<Snapshot> {
    const now = this.options.now();
    const [nodes, seen] = await Promise.all([this.store.nodes(), this.store.lastSeen()]);
    const names = nodes.map((node) => node.name);
    const [reports, loads] = await Promise.all([this.store.reports(names), this.store.assignmentCounts(names)]);
    const placementNodes = nodes.map((node) =>
      placementNode(node, Math.max(seen.get(node.name) ?? 0, this.leaderSince), now, this.options.nodeGraceMs, loads.get(node.name) ?? 0),
    );
    return {
      now,
      nodes: placementNodes,
      down: new Set(placementNodes.filter((node) => node.availability === 'down').map((node) => node.id)),
      reports,
    };
  }

  /** One service, one fenced write; false when the lease turned out to be lost. */
  private async reconcile(record: ServiceRecord, snapshot: Snapshot): Promise<boolean> {
    const id = serviceId(record.stack, record.name);
    const revisions = new RevisionCache(this.store, id);
    const desired = await revisions.get(record.desired);
    if (!desired) return true;
    const { now } = snapshot;
    const history: HistoryEntry[] = [];
    let state: ServiceState = record.state;
    if (state.revision !== desired.number) {
      state = { ...state, revision: desired.number, rollout: this.startFor(desired, state, now) };
      history.push(entry(now, desired.number, 'started', `${desired.cause}: ${desired.spec.repository}@${desired.digest}`));
    }
    const spec = desired.spec;
    const placement = place(
      {
        mode: spec.deploy.mode,
        replicas: spec.deploy.replicas,
        constraints: spec.deploy.placement.constraints,
        maxReplicasPerNode: spec.deploy.placement.maxReplicasPerNode,
        publishesPorts: spec.ports.some((port) => port.published !== null),
      },
      snapshot.nodes,
      Object.fromEntries(Object.entries(state.slots).map(([slot, value]) => [slot, value.node])),
    );
    const steady = state.rollout && !isActive(state.rollout) ? (state.rollout.lastHealthy ?? state.rollout.target) : 0;
    const slots: Record<string, SlotRecord> = {};
    for (const [slot, node] of Object.entries(placement.slots)) {
      const previous = state.slots[slot];
      slots[slot] =
        previous && previous.node === node
          ? observe(previous, snapshot.reports.get(replicaId(id, slot)), now)
          : { node, revision: previous?.revision ?? steady, startedAt: now, healthySince: null };
    }
    shiftLoads(snapshot.nodes, record.state.slots, slots);
    let quarantine: ControllerWrite['quarantine'] = null;
    // A global replica kept on a node taken for down is left out of rollouts until the node is back.
    if (state.rollout && isActive(state.rollout)) {
      const step = stepRollout(
        state.rollout,
        Object.entries(slots)
          .filter(([, value]) => !snapshot.down.has(value.node))
          .map(([slot, value]) => slotView(slot, value, snapshot.reports.get(replicaId(id, slot)))),
        now,
      );
      for (const { slot, revision } of step.assign) slots[slot] = { ...slots[slot]!, revision, startedAt: now, healthySince: null };
      for (const event of step.events) history.push(entry(now, event.revision, event.kind, event.reason));
      quarantine = await this.quarantineOf(step.events, revisions, history, now);
      state = { ...state, rollout: step.state };
    }
    // A replica back on its node after a rollout that completed without it catches up.
    const settled = settledRevision(state);
    for (const [slot, value] of Object.entries(slots)) {
      if (settled !== null && value.revision !== settled && !snapshot.down.has(value.node))
        slots[slot] = { ...value, revision: settled, startedAt: now, healthySince: null };
    }
    const next: ServiceState = { ...state, slots, unplaced: placement.reason };
    const assignments = await this.assignmentChanges(record, id, record.state.slots, slots, revisions);
    if (isDeepStrictEqual(next, record.state) && history.length === 0 && Object.keys(assignments).length === 0) return true;
    const outcome = await this.store.write({
      holder: this.holder,
      epoch: this.epoch!,
      serviceId: id,
      generation: record.generation,
      state: next,
      history,
      quarantine,
      assignments,
    });
    return this.written(outcome);
  }

  /** false when the write was refused for a lost lease; a conflict (another write came first) is read again next pass. */
  private written(outcome: WriteOutcome): boolean {
    if (outcome === 'stale') {
      this.logger.warn({ epoch: this.epoch }, 'deploy controller write refused: the lease is held by another controller');
      this.epoch = undefined;
      return false;
    }
    if (outcome === 'conflict') this.again = true;
    return true;
  }

  private startFor(desired: Revision, previous: ServiceState, now: number) {
    const prior = previous.rollout;
    // The last revision all of whose replicas were healthy: a reverted or paused rollout never was.
    const lastHealthy = prior ? (prior.status === 'succeeded' ? prior.target : prior.lastHealthy) : null;
    return startRollout({
      revision: desired.number,
      lastHealthy,
      update: desired.spec.deploy.update,
      rollback: desired.spec.deploy.rollback,
      healthyDeadlineMs: desired.spec.berth.healthyDeadlineMs,
      progressDeadlineMs: desired.spec.berth.progressDeadlineMs,
      now,
    });
  }

  /** A reverted revision's digest is not tried again for its tag until a new push. */
  private async quarantineOf(
    events: RolloutEvent[],
    revisions: RevisionCache,
    history: HistoryEntry[],
    now: number,
  ): Promise<ControllerWrite['quarantine']> {
    const reverting = events.find((event) => event.kind === 'reverting');
    const failed = reverting ? await revisions.get(reverting.revision) : undefined;
    const tag = failed?.spec.tag;
    if (!failed || !tag || failed.spec.digest !== null) return null;
    history.push(entry(now, failed.number, 'quarantined', `${failed.spec.repository}:${tag} ${failed.digest}`));
    return { repository: failed.spec.repository, tag, digest: failed.digest };
  }

  private async assignmentChanges(
    record: ServiceRecord,
    id: string,
    before: Record<string, SlotRecord>,
    after: Record<string, SlotRecord>,
    revisions: RevisionCache,
  ): Promise<ControllerWrite['assignments']> {
    const changes: ControllerWrite['assignments'] = {};
    const change = (node: string, replica: string, assignment: Assignment | null) => ((changes[node] ??= {})[replica] = assignment);
    for (const [slot, old] of Object.entries(before)) {
      if (after[slot]?.node !== old.node) change(old.node, replicaId(id, slot), null);
    }
    for (const [slot, now] of Object.entries(after)) {
      const old = before[slot];
      if (now.revision === 0 || (old && old.node === now.node && old.revision === now.revision)) continue;
      const revision = await revisions.get(now.revision);
      if (!revision) continue;
      change(now.node, replicaId(id, slot), {
        replica: replicaId(id, slot),
        stack: record.stack,
        service: record.name,
        slot,
        revision: revision.number,
        image: `${revision.spec.repository}@${revision.digest}`,
        spec: revision.spec,
      });
    }
    return changes;
  }
}

class RevisionCache {
  private readonly cache = new Map<number, Promise<Revision | undefined>>();

  constructor(
    private readonly store: DeployStore,
    private readonly id: string,
  ) {}

  get(number: number): Promise<Revision | undefined> {
    let revision = this.cache.get(number);
    if (!revision) this.cache.set(number, (revision = this.store.revision(this.id, number)));
    return revision;
  }
}

export function replicaId(id: string, slot: string): string {
  return `${id}/${slot}`;
}

function placementNode(node: NodeRecord, lastSeen: number, now: number, graceMs: number, load: number): PlacementNode {
  const down = now - lastSeen > graceMs;
  return {
    id: node.name,
    hostname: node.name,
    labels: node.labels,
    availability: node.availability === 'drain' ? 'drain' : down ? 'down' : 'ready',
    load,
  };
}

/**
 * The revision every replica runs once a rollout has completed (succeeded, or reverted): what a replica that
 * sat out the rollout on a node taken for down is given on the node's return. Null while a rollout runs or
 * after one paused or failed part-way, when replicas rightly differ.
 */
function settledRevision(state: ServiceState): number | null {
  const status = state.rollout?.status;
  return status === 'succeeded' || status === 'reverted' ? state.rollout!.target : null;
}

/**
 * Moves the service's replicas from the nodes it had to the nodes it now has in the pass's view of each node's
 * load, so the next service placed in the same pass spreads over what this one took.
 */
function shiftLoads(nodes: PlacementNode[], before: Record<string, SlotRecord>, after: Record<string, SlotRecord>): void {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  for (const { node } of Object.values(before)) if (byId.has(node)) byId.get(node)!.load -= 1;
  for (const { node } of Object.values(after)) if (byId.has(node)) byId.get(node)!.load += 1;
}

/** Keeps `healthySince` in step with what the node reports for the slot's revision. */
function observe(slot: SlotRecord, report: ReplicaReport | undefined, now: number): SlotRecord {
  const healthy = report?.revision === slot.revision && report.health === 'healthy';
  if (healthy) return slot.healthySince === null ? { ...slot, healthySince: now } : slot;
  return slot.healthySince === null ? slot : { ...slot, healthySince: null };
}

function slotView(slot: string, record: SlotRecord, report: ReplicaReport | undefined): SlotView {
  const current = report?.revision === record.revision ? report : undefined;
  return {
    slot,
    revision: record.revision,
    health: current?.health ?? 'starting',
    message: current?.message ?? '',
    startedAt: record.startedAt,
    healthySince: record.healthySince,
  };
}

function entry(now: number, revision: number, event: HistoryEntry['event'], detail: string | null): HistoryEntry {
  return { at: new Date(now).toISOString(), revision, event, detail };
}
