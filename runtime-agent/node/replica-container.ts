import { randomBytes } from 'node:crypto';
import type { CreateRequest } from '../api.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { Assignment, ReplicaSpec } from './assignment.js';

/**
 * How a replica's container is made from its assignment, and how the agent recognises the containers it
 * manages: by labels, so that a restarted agent adopts them, and containers it did not make are left alone.
 */
export const ReplicaLabel = {
  managed: 'io.berth.managed',
  replica: 'io.berth.replica',
  revision: 'io.berth.revision',
  stack: 'io.berth.stack',
  service: 'io.berth.service',
} as const;

/** A managed container as the converger sees it. */
export interface ReplicaContainer {
  record: ContainerRecord;
  replica: string;
  revision: number;
}

/** The replica a container runs, or undefined for a container Berth did not make. */
export function replicaOf(record: ContainerRecord): ReplicaContainer | undefined {
  const labels = record.spec.labels ?? {};
  const replica = labels[ReplicaLabel.replica];
  const revision = Number(labels[ReplicaLabel.revision]);
  if (labels[ReplicaLabel.managed] !== 'true' || replica === undefined || !Number.isInteger(revision)) return undefined;
  return { record, replica, revision };
}

/**
 * `<stack>_<service>.<slot>.<revision>.<random>`, as Swarm names its tasks: the random part lets a new
 * container of the same revision start while an earlier one (of an assignment taken back) is still stopping.
 */
export function containerName(assignment: Assignment): string {
  return `${assignment.stack}_${assignment.service}.${assignment.slot}.${assignment.revision}.${randomBytes(3).toString('hex')}`;
}

/** A service publishing host ports cannot run two replicas of a slot side by side: the ports are taken. */
export function publishesHostPorts(spec: ReplicaSpec): boolean {
  return spec.ports.some((port) => port.published !== null);
}

/** The run request the compose spec means, with the image by digest in the registry at `registryHost`. */
export function replicaRequest(assignment: Assignment, registryHost: string): CreateRequest {
  const { spec } = assignment;
  const [entrypoint, ...entrypointArgs] = spec.entrypoint ?? [];
  // compose's entrypoint list replaces the image's whole Entrypoint; the agent takes one executable, so the
  // rest of the list leads the arguments.
  const command = spec.entrypoint === null ? spec.command : [...entrypointArgs, ...(spec.command ?? [])];
  return {
    image: `${registryHost}/${assignment.image}`,
    name: containerName(assignment),
    command: command ?? undefined,
    entrypoint: spec.entrypoint === null ? undefined : (entrypoint ?? ''),
    env: Object.entries(spec.environment).map(([key, value]) => `${key}=${value}`),
    volumes: spec.volumes.filter((mount) => mount.type !== 'tmpfs').map(volumeFlag),
    tmpfs: [...spec.tmpfs, ...spec.volumes.filter((mount) => mount.type === 'tmpfs').map((mount) => mount.target)],
    publish: spec.ports.map(
      (port) =>
        `${port.hostIp === null ? '' : `${port.hostIp}:`}${port.published === null ? '' : `${port.published}:`}${port.target}/${port.protocol}`,
    ),
    memory: spec.deploy.limits.memoryBytes === null ? undefined : `${spec.deploy.limits.memoryBytes}b`,
    cpus: spec.deploy.limits.cpus === null ? undefined : String(spec.deploy.limits.cpus),
    pidsLimit: spec.deploy.limits.pids ?? undefined,
    readOnly: spec.readOnly,
    network: 'bridge',
    restart: restartFlag(spec.deploy.restartPolicy),
    user: spec.user ?? undefined,
    workdir: spec.workingDir ?? undefined,
    stopSignal: spec.stopSignal,
    stopTimeout: stopTimeoutSeconds(spec),
    ...healthFlags(spec.healthcheck),
    labels: {
      ...spec.labels,
      [ReplicaLabel.managed]: 'true',
      [ReplicaLabel.replica]: assignment.replica,
      [ReplicaLabel.revision]: String(assignment.revision),
      [ReplicaLabel.stack]: assignment.stack,
      [ReplicaLabel.service]: assignment.service,
    },
  };
}

/** stop_grace_period in the whole seconds `stop` takes, never less than the period. */
export function stopTimeoutSeconds(spec: ReplicaSpec): number {
  return Math.ceil(spec.stopGracePeriodMs / 1000);
}

function volumeFlag(mount: ReplicaSpec['volumes'][number]): string {
  if (mount.source === null) throw new Error(`anonymous volume at ${mount.target}: a deployed service needs a named volume`);
  return `${mount.source}:${mount.target}${mount.readOnly ? ':ro' : ''}`;
}

function restartFlag(policy: ReplicaSpec['deploy']['restartPolicy']): string {
  if (policy.condition === 'none') return 'no';
  if (policy.condition === 'any') return 'always';
  return policy.maxAttempts === null ? 'on-failure' : `on-failure:${policy.maxAttempts}`;
}

/** The compose healthcheck as the run flags: null keeps the image's; a CMD probe runs without a shell, as docker runs it. */
function healthFlags(check: ReplicaSpec['healthcheck']): Partial<CreateRequest> {
  if (check === null) return {};
  const [kind, ...args] = check.test;
  if (kind === 'NONE') return { noHealthcheck: true };
  const duration = (ms: number) => (ms > 0 ? `${ms}ms` : undefined);
  return {
    healthTest: kind === 'CMD-SHELL' ? ['CMD-SHELL', args.join(' ')] : ['CMD', ...args],
    healthInterval: duration(check.intervalMs),
    healthTimeout: duration(check.timeoutMs),
    healthStartPeriod: duration(check.startPeriodMs),
    healthStartInterval: duration(check.startIntervalMs),
    healthRetries: check.retries > 0 ? check.retries : undefined,
  };
}
