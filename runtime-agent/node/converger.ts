import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../platform/logger.js';
import type { CreateRequest } from '../api.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { LogEntry } from '../container/logs/log-entry.js';
import type { Assignment, ReplicaReport } from './assignment.js';
import { ReplicaChecks, replicaHealth } from './replica-checks.js';
import { containerHealth } from './replica-health.js';
import { replicaLogs, type LogRequest, type ReplicaLogLine } from './replica-logs.js';
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
  /** The container's log (its json-file), from its last `tail` lines, followed until `signal` or its run ends. */
  logs(id: string, options: { tail: number | undefined; follow: boolean; signal: AbortSignal }): AsyncIterable<LogEntry>;
}

/** A failed attempt to make a replica's container is tried again after this long. */
const RETRY_AFTER_MS = 5_000;
/** How much longer than its grace period a stopping container holding host ports is waited for. */
const STOP_SLACK_MS = 10_000;

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
  /** Container ids being stopped and removed, and when that ends. */
  private readonly retiring = new Map<string, Promise<void>>();
  private readonly checks = new ReplicaChecks();

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
    // A problem is the assignment's: one taken away is forgotten (kept, it would grow with every failed
    // revision, and a replica assigned again would start out failed for a cause that may be gone).
    const assigned = new Set(assignments.map(keyOf));
    for (const key of this.problems.keys()) if (!assigned.has(key)) this.problems.delete(key);
    for (const assignment of assignments) {
      this.convergeReplica(
        assignment,
        managed.filter((container) => container.replica === assignment.replica),
      );
    }
    this.checks.follow(
      assignments.flatMap((assignment) => {
        const container = currentOf(managed, assignment);
        return container ? [{ record: container.record, checks: assignment.spec.berth.checks }] : [];
      }),
    );
  }

  /** Ends the x-berth checks (the agent stops; its containers keep running). */
  stop(): void {
    this.checks.stop();
  }

  /** The logs of the containers of the requested replicas (`berth service logs`). */
  logs(request: LogRequest, signal: AbortSignal): AsyncGenerator<ReplicaLogLine> {
    return replicaLogs(this.runtime, request, signal);
  }

  /** The state of each assigned replica, for the registry. */
  reports(assignments: readonly Assignment[]): ReplicaReport[] {
    const managed = this.managed();
    return assignments.map((assignment) => {
      const container = currentOf(managed, assignment);
      const base = { replica: assignment.replica, revision: assignment.revision };
      const health = container && this.health(assignment, container);
      if (container && health && awaitsPorts(assignment, container) && health.health === 'healthy')
        return { ...base, health: 'starting', message: 'healthy, taking over the published ports' };
      if (health) return { ...base, ...health };
      const problem = this.problems.get(keyOf(assignment));
      if (problem) return { ...base, health: 'failed', message: problem.message };
      return { ...base, health: 'starting', message: this.making.has(keyOf(assignment)) ? 'pulling the image' : 'pending' };
    });
  }

  /** The container's own health check and the replica's x-berth checks together. */
  private health(assignment: Assignment, container: ReplicaContainer): { health: ReplicaReport['health']; message: string } {
    return replicaHealth(containerHealth(container.record), this.checks.statuses(container.record, assignment.spec.berth.checks));
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
      if (this.health(assignment, keep).health !== 'healthy') return;
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
    // A container still stopping (its replica taken away, or an adopted one retired) keeps its host ports
    // until it is gone, within its grace period: claimed before then, the new one could not start.
    await this.portHoldersRetired(assignment);
    const running = others.filter((old) => old.record.state.status === 'running');
    if (assignment.spec.deploy.update.order === 'stop-first') {
      await Promise.all(others.map((old) => this.retireNow(old, `revision ${assignment.revision} replaces it (stop-first)`)));
    } else if (publishesHostPorts(assignment.spec) && running.length > 0) {
      // Start-first on host ports: the new container starts without them and takes them over once healthy.
      request.publish = [];
    }
    const record = await this.runtime.create(request);
    this.logger.info({ replica: assignment.replica, revision: assignment.revision, container: record.id }, 'starting a replica');
    await this.startOrDiscard(record.id);
  }

  /**
   * A container whose start failed never ran: it goes, so that the replica is made again after the retry
   * delay (kept, it would stand for the replica as failed for good).
   */
  private async startOrDiscard(id: string): Promise<void> {
    try {
      await this.runtime.start(id);
    } catch (error) {
      await this.runtime
        .remove(id)
        .catch((removal: Error) => this.logger.warn({ container: id, err: removal }, 'could not remove a replica that failed to start'));
      throw error;
    }
  }

  private async portHoldersRetired(assignment: Assignment): Promise<void> {
    const wanted = new Set(
      assignment.spec.ports.filter((port) => port.published !== null).map((port) => `${port.protocol}-${port.published}`),
    );
    if (wanted.size === 0) return;
    const holders = this.runtime
      .containers()
      .filter(
        (record) => this.retiring.has(record.id) && record.spec.ports.some((port) => wanted.has(`${port.protocol}-${port.hostPort}`)),
      );
    if (holders.length === 0) return;
    // Bounded: a stop that never ends must not hold the replica back for good (its start then fails and is retried).
    const boundMs = Math.max(...holders.map((record) => record.spec.stopTimeoutSeconds * 1000)) + STOP_SLACK_MS;
    await Promise.race([Promise.all(holders.map((record) => this.retiring.get(record.id))), sleep(boundMs, undefined, { ref: false })]);
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
    this.startOrDiscard(container.record.id)
      .catch((error: Error) => this.logger.warn({ container: container.record.id, err: error }, 'could not start an adopted replica'))
      .finally(() => this.making.delete(key));
  }

  private retire(container: ReplicaContainer, why: string): void {
    if (this.retiring.has(container.record.id)) return;
    this.retireNow(container, why).catch((error: Error) =>
      this.logger.warn({ container: container.record.id, err: error }, 'could not remove a retired replica'),
    );
  }

  /** Stops and removes; settles (never rejects, for those waiting on the ports) once done or failed. */
  private retireNow(container: ReplicaContainer, why: string): Promise<void> {
    const { id } = container.record;
    this.logger.info({ replica: container.replica, revision: container.revision, container: id, why }, 'stopping a replica');
    const done = (async () => {
      await this.runtime.stop(id);
      await this.runtime.remove(id);
    })();
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.retiring.set(id, settled);
    void settled.then(() => this.retiring.delete(id));
    return done;
  }
}

/** A start-first container that still runs without the host ports its service publishes. */
function awaitsPorts(assignment: Assignment, container: ReplicaContainer): boolean {
  return publishesHostPorts(assignment.spec) && container.record.spec.ports.length === 0;
}

/** The replica's container of the assigned revision. */
function currentOf(managed: ReplicaContainer[], assignment: Assignment): ReplicaContainer | undefined {
  return newestOf(managed.filter((candidate) => candidate.replica === assignment.replica && candidate.revision === assignment.revision));
}

function keyOf(assignment: Assignment): string {
  return `${assignment.replica}@${assignment.revision}`;
}

/** A running container before a stopped one, then the newest. */
function newestOf(containers: ReplicaContainer[]): ReplicaContainer | undefined {
  const rank = (container: ReplicaContainer) => (container.record.state.status === 'running' ? 1 : 0);
  return [...containers].sort((a, b) => rank(b) - rank(a) || b.record.createdAt.localeCompare(a.record.createdAt))[0];
}
