import type { Logger } from '../../platform/logger.js';
import type { CreateRequest } from '../api.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { Assignment, ReplicaReport } from './assignment.js';
import { containerHealth } from './replica-health.js';
import { publishesHostPorts, replicaOf, replicaRequest, type ReplicaContainer } from './replica-container.js';

/** The agent's containers and images, as the converger uses them (the daemon's container manager and puller behind). */
export interface ReplicaRuntime {
  /** Every container of the agent, managed or not. */
  containers(): ContainerRecord[];
  /** Pulls `<registry>/<repository>@<digest>` (nothing to fetch when the image is there). */
  pull(reference: string): Promise<void>;
  create(request: CreateRequest): Promise<ContainerRecord>;
  start(id: string): Promise<void>;
  /** Stops with the container's own stop signal and grace period (stop_grace_period), then SIGKILL. */
  stop(id: string): Promise<void>;
  remove(id: string): Promise<void>;
  /**
   * Gives `toId` (running, created without ports) the host ports `fromId` publishes, or `publish` (run's
   * `-p` values) when `fromId` is undefined or publishes none.
   */
  movePorts(fromId: string | undefined, toId: string, publish: string[]): Promise<void>;
}

/** A failed attempt to make a replica's container is tried again after this long. */
const RETRY_AFTER_MS = 5_000;

/**
 * Makes the node's managed containers match its assignments, one step per call, never waiting for a pull or
 * a stop (those run in the background and the next call sees their result): each assigned replica gets a
 * container of its revision, pulled by digest before anything is stopped; the container of an older
 * revision is stopped (after its grace period) once the new one is healthy (start-first), or before the
 * new one starts when the service publishes host ports or asks for stop-first; containers of replicas no
 * longer assigned are stopped and removed. Containers without Berth's labels are never touched.
 */
export class Converger {
  /** `replica@revision` -> why its container could not be made, and when to try again. */
  private readonly problems = new Map<string, { message: string; retryAt: number }>();
  /** `replica@revision` being pulled and created. */
  private readonly making = new Set<string>();
  /** Container ids being stopped and removed. */
  private readonly retiring = new Set<string>();

  constructor(
    private readonly runtime: ReplicaRuntime,
    private readonly registryHost: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  converge(assignments: readonly Assignment[]): void {
    const managed = this.managed();
    const wanted = new Set(assignments.map((assignment) => assignment.replica));
    for (const container of managed) if (!wanted.has(container.replica)) this.retire(container, 'no longer assigned to this node');
    for (const assignment of assignments) {
      this.convergeReplica(
        assignment,
        managed.filter((container) => container.replica === assignment.replica),
      );
    }
  }

  /** The state of each assigned replica, for the registry. */
  reports(assignments: readonly Assignment[]): ReplicaReport[] {
    const managed = this.managed();
    return assignments.map((assignment) => {
      const container = newestOf(
        managed.filter((candidate) => candidate.replica === assignment.replica && candidate.revision === assignment.revision),
      );
      const base = { replica: assignment.replica, revision: assignment.revision };
      if (container && awaitsPorts(assignment, container) && containerHealth(container.record).health === 'healthy')
        return { ...base, health: 'starting', message: 'healthy, taking over the published ports' };
      if (container) return { ...base, ...containerHealth(container.record) };
      const problem = this.problems.get(keyOf(assignment));
      if (problem) return { ...base, health: 'failed', message: problem.message };
      return { ...base, health: 'starting', message: this.making.has(keyOf(assignment)) ? 'pulling the image' : 'pending' };
    });
  }

  private managed(): ReplicaContainer[] {
    return this.runtime
      .containers()
      .map(replicaOf)
      .filter((container): container is ReplicaContainer => container !== undefined && !this.retiring.has(container.record.id));
  }

  private convergeReplica(assignment: Assignment, mine: ReplicaContainer[]): void {
    const current = mine.filter((container) => container.revision === assignment.revision);
    const others = mine.filter((container) => container.revision !== assignment.revision);
    const keep = newestOf(current);
    for (const extra of current) if (extra !== keep) this.retire(extra, 'a duplicate of the replica');
    if (keep) {
      if (keep.record.state.status === 'created') this.startAdopted(keep);
      if (containerHealth(keep.record).health !== 'healthy') return;
      if (awaitsPorts(assignment, keep)) this.handOverPorts(assignment, keep, others);
      else for (const old of others) this.retire(old, `revision ${assignment.revision} is healthy`);
      return;
    }
    const key = keyOf(assignment);
    if (this.making.has(key) || (this.problems.get(key)?.retryAt ?? 0) > this.now()) return;
    this.making.add(key);
    this.make(assignment, others)
      .then(() => this.problems.delete(key))
      .catch((error: Error) => {
        this.logger.warn({ replica: assignment.replica, revision: assignment.revision, err: error }, 'could not start the replica');
        this.problems.set(key, { message: error.message, retryAt: this.now() + RETRY_AFTER_MS });
      })
      .finally(() => this.making.delete(key));
  }

  private async make(assignment: Assignment, others: ReplicaContainer[]): Promise<void> {
    const request = replicaRequest(assignment, this.registryHost);
    // Pulled first: a revision whose image cannot be had leaves the running replica alone.
    await this.runtime.pull(request.image);
    const running = others.filter((old) => old.record.state.status === 'running');
    if (assignment.spec.deploy.update.order === 'stop-first') {
      await Promise.all(others.map((old) => this.retireNow(old, `revision ${assignment.revision} replaces it (stop-first)`)));
    } else if (publishesHostPorts(assignment.spec) && running.length > 0) {
      // Start-first on host ports: the new container starts without them and takes them over once healthy.
      request.publish = [];
    }
    const record = await this.runtime.create(request);
    this.logger.info({ replica: assignment.replica, revision: assignment.revision, container: record.id }, 'starting a replica');
    await this.runtime.start(record.id);
  }

  /** The new container is healthy: it takes the published ports over, then the old ones stop after their grace period. */
  private handOverPorts(assignment: Assignment, keep: ReplicaContainer, others: ReplicaContainer[]): void {
    const key = `ports:${keyOf(assignment)}`;
    if (this.making.has(key)) return;
    this.making.add(key);
    const holder = others.find((old) => old.record.state.status === 'running' && old.record.spec.ports.length > 0);
    this.runtime
      .movePorts(holder?.record.id, keep.record.id, replicaRequest(assignment, this.registryHost).publish ?? [])
      .then(() => {
        this.logger.info({ replica: assignment.replica, revision: assignment.revision, from: holder?.record.id }, 'published ports moved');
        for (const old of others) this.retire(old, `revision ${assignment.revision} is healthy and has the ports`);
      })
      .catch((error: Error) => this.logger.warn({ replica: assignment.replica, err: error }, 'could not move the published ports'))
      .finally(() => this.making.delete(key));
  }

  /** A container made by an agent that died before starting it. */
  private startAdopted(container: ReplicaContainer): void {
    const key = `${container.replica}@${container.revision}`;
    if (this.making.has(key)) return;
    this.making.add(key);
    this.runtime
      .start(container.record.id)
      .catch((error: Error) => this.logger.warn({ container: container.record.id, err: error }, 'could not start an adopted replica'))
      .finally(() => this.making.delete(key));
  }

  private retire(container: ReplicaContainer, why: string): void {
    if (this.retiring.has(container.record.id)) return;
    this.retireNow(container, why).catch((error: Error) =>
      this.logger.warn({ container: container.record.id, err: error }, 'could not remove a retired replica'),
    );
  }

  private async retireNow(container: ReplicaContainer, why: string): Promise<void> {
    this.retiring.add(container.record.id);
    try {
      this.logger.info(
        { replica: container.replica, revision: container.revision, container: container.record.id, why },
        'stopping a replica',
      );
      await this.runtime.stop(container.record.id);
      await this.runtime.remove(container.record.id);
    } finally {
      this.retiring.delete(container.record.id);
    }
  }
}

/** A start-first container that still runs without the host ports its service publishes. */
function awaitsPorts(assignment: Assignment, container: ReplicaContainer): boolean {
  return publishesHostPorts(assignment.spec) && container.record.spec.ports.length === 0;
}

function keyOf(assignment: Assignment): string {
  return `${assignment.replica}@${assignment.revision}`;
}

/** A running container before a stopped one, then the newest. */
function newestOf(containers: ReplicaContainer[]): ReplicaContainer | undefined {
  const rank = (container: ReplicaContainer) => (container.record.state.status === 'running' ? 1 : 0);
  return [...containers].sort((a, b) => rank(b) - rank(a) || b.record.createdAt.localeCompare(a.record.createdAt))[0];
}
