import { isDeepStrictEqual } from 'node:util';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { EventSink, RegistryEvent } from '../webhooks/events.js';
import { ComposeError, validateCompose } from './compose/compose.js';
import type { ServiceSpec } from './compose/stack-spec.js';
import { DeployErrors } from './deploy-errors.js';
import { serviceId } from './deploy-keys.js';
import type { DeployStore, NewRevision } from './deploy-store.js';
import type { HistoryEntry, ReplicaReport, Revision, ServiceRecord } from './deploy-types.js';

const STACK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface ServiceStatus {
  service: string;
  desired: number;
  rollout: ServiceRecord['state']['rollout'];
  unplaced: ServiceRecord['state']['unplaced'];
  replicas: Array<{ slot: string; node: string; revision: number; health: string; message: string }>;
}

/** A replica is as healthy as its node last reported it, once that report is of the revision it should run. */
function statusOf(id: string, record: ServiceRecord, reports: Map<string, ReplicaReport>): ServiceStatus {
  return {
    service: id,
    desired: record.desired,
    rollout: record.state.rollout,
    unplaced: record.state.unplaced,
    replicas: Object.entries(record.state.slots).map(([slot, value]) => {
      const report = reports.get(`${id}/${slot}`);
      return {
        slot,
        node: value.node,
        revision: value.revision,
        health: report?.revision === value.revision ? report.health : 'starting',
        message: report?.message ?? '',
      };
    }),
  };
}

export interface DeployResult {
  stack: string;
  /** Service -> the revision it now wants (unchanged services keep theirs). */
  services: Record<string, { revision: number; digest: string; changed: boolean }>;
}

/**
 * What the admin API and the push hook change: they record the wanted revision of each service (spec +
 * digest) and wake the controller, which does the rest. Nothing is stored unless every service of the
 * file is valid and every image resolves.
 */
export class DeployService {
  constructor(
    private readonly store: DeployStore,
    private readonly metadata: MetadataStore,
    private readonly logger: Logger,
  ) {}

  async deploy(stack: string, document: unknown): Promise<DeployResult> {
    assertStackName(stack);
    let services: Record<string, ServiceSpec>;
    try {
      services = validateCompose(document).services;
      await this.checkPortsFreeOfOtherStacks(stack, services);
    } catch (error) {
      if (error instanceof ComposeError)
        throw new CodedError(DeployErrors.COMPOSE_INVALID, error.message, { detail: { issues: error.issues } });
      throw error;
    }
    const resolved = await Promise.all(
      Object.entries(services).map(async ([name, spec]) => ({ name, spec, digest: await this.resolve(name, spec) })),
    );
    const result: DeployResult = { stack, services: {} };
    const changes: NewRevision[] = [];
    for (const { name, spec, digest } of resolved) {
      const current = await this.currentRevision(stack, name);
      if (current && current.digest === digest && isDeepStrictEqual(current.spec, spec)) {
        result.services[name] = { revision: current.number, digest, changed: false };
        continue;
      }
      changes.push(newRevision(name, spec, digest, 'deploy'));
    }
    const numbers = changes.length === 0 ? [] : await this.store.createRevisions(stack, changes, (name) => created(changes, name));
    changes.forEach(
      (change, index) => (result.services[change.service] = { revision: numbers[index]!, digest: change.revision.digest, changed: true }),
    );
    return result;
  }

  /** A push to a tag that services follow: each gets a revision with the new digest, unless it failed before. */
  async pushed(repository: string, tag: string, digest: string): Promise<void> {
    for (const id of await this.store.trackers(repository, tag)) {
      const [stack = '', name = ''] = id.split('/');
      const current = await this.currentRevision(stack, name);
      if (!current || current.spec.berth.track !== tag || current.spec.repository !== repository || current.digest === digest) continue;
      if (await this.store.isQuarantined(repository, tag, digest)) {
        this.logger.warn({ stack, service: name, digest }, 'a push of a quarantined digest is not rolled out');
        continue;
      }
      const change = newRevision(name, current.spec, digest, 'push');
      await this.store.createRevisions(stack, [change], () => created([change], name));
    }
  }

  /** A new revision with the spec and digest of the last fully healthy one (or the one before the current). */
  async rollback(stack: string, name: string): Promise<{ revision: number; from: number }> {
    const record = await this.requireService(stack, name);
    const id = serviceId(stack, name);
    const target = record.state.rollout?.lastHealthy ?? (record.desired > 1 ? record.desired - 1 : undefined);
    const revision = target === undefined || target === record.desired ? undefined : await this.store.revision(id, target);
    if (!revision) throw new CodedError(DeployErrors.REQUEST_INVALID, `${id} has no earlier healthy revision to roll back to`);
    const change = newRevision(name, revision.spec, revision.digest, 'rollback');
    const [number] = await this.store.createRevisions(stack, [change], () => ({
      ...created([change], name),
      detail: `rollback to revision ${target}`,
    }));
    return { revision: number!, from: target! };
  }

  async scale(stack: string, name: string, replicas: number): Promise<{ revision: number }> {
    const current = await this.currentRevision(stack, name);
    if (!current) throw new CodedError(DeployErrors.SERVICE_UNKNOWN, `no service ${serviceId(stack, name)}`);
    if (current.spec.deploy.mode === 'global')
      throw new CodedError(DeployErrors.REQUEST_INVALID, 'a global service runs once per eligible node: it cannot be scaled');
    const spec = { ...current.spec, deploy: { ...current.spec.deploy, replicas } };
    const change = newRevision(name, spec, current.digest, 'scale');
    const [number] = await this.store.createRevisions(stack, [change], () => created([change], name));
    return { revision: number! };
  }

  /**
   * `stack rm`: the stack and its services are gone at once (from \`stack ls\` and every view); the controller
   * then takes their replicas back from the nodes, which stop and remove the containers.
   */
  async removeStack(stack: string): Promise<{ stack: string; services: string[] }> {
    assertStackName(stack);
    const services = await this.store.removeStack(stack);
    if (services.length === 0) throw new CodedError(DeployErrors.STACK_UNKNOWN, `no stack ${stack}`);
    this.logger.info({ stack, services }, 'stack removed');
    return { stack, services };
  }

  /** Every service of the stack with its replicas' health, reading the nodes' reports once. */
  async stackStatus(stack: string): Promise<ServiceStatus[]> {
    const names = await this.store.stackServices(stack);
    if (names.length === 0) throw new CodedError(DeployErrors.STACK_UNKNOWN, `no stack ${stack}`);
    const [records, reports] = await Promise.all([Promise.all(names.map((name) => this.requireService(stack, name))), this.allReports()]);
    return records.map((record, index) => statusOf(serviceId(stack, names[index]!), record, reports));
  }

  /** Node -> the ids of the service's replicas placed on it: whom `service logs` asks. */
  async logTargets(stack: string, name: string): Promise<Map<string, string[]>> {
    const record = await this.requireService(stack, name);
    const targets = new Map<string, string[]>();
    for (const [slot, { node }] of Object.entries(record.state.slots))
      targets.set(node, [...(targets.get(node) ?? []), `${serviceId(stack, name)}/${slot}`]);
    return targets;
  }

  async serviceStatus(stack: string, name: string): Promise<ServiceStatus> {
    const [record, reports] = await Promise.all([this.requireService(stack, name), this.allReports()]);
    return statusOf(serviceId(stack, name), record, reports);
  }

  private async allReports(): Promise<Map<string, ReplicaReport>> {
    return this.store.reports((await this.store.nodes()).map((node) => node.name));
  }

  async requireService(stack: string, name: string): Promise<ServiceRecord> {
    const record = await this.store.service(stack, name);
    // desired 0: its stack was removed, and the controller is taking its replicas back.
    if (!record || record.desired === 0) throw new CodedError(DeployErrors.SERVICE_UNKNOWN, `no service ${serviceId(stack, name)}`);
    return record;
  }

  /** Sends each push of a tag to `pushed`, after `events` got it; a failure is logged, never the push's. */
  pushHook(events: EventSink): EventSink {
    return {
      emit: async (event: RegistryEvent) => {
        await events.emit(event);
        const tag = event.target.tag;
        if (event.action !== 'push' || tag === undefined) return;
        await this.pushed(event.repository, tag, event.target.digest).catch((error: unknown) =>
          this.logger.error({ err: error, repository: event.repository, tag }, 'a tracked tag push could not be rolled out'),
        );
      },
    };
  }

  /**
   * A host port is published by one stack: two stacks' replicas publishing it could be placed on one node,
   * where the second could never start (as within a stack, refused before anything is stored).
   */
  private async checkPortsFreeOfOtherStacks(stack: string, services: Record<string, ServiceSpec>): Promise<void> {
    const owners = new Map<string, string>();
    for (const other of await this.store.stacks()) {
      if (other === stack) continue;
      for (const name of await this.store.stackServices(other)) {
        for (const port of (await this.currentRevision(other, name))?.spec.ports ?? [])
          if (port.published !== null) owners.set(`${port.published}/${port.protocol}`, serviceId(other, name));
      }
    }
    const issues = Object.entries(services).flatMap(([name, spec]) =>
      spec.ports.flatMap((port, index) => {
        const owner = owners.get(`${port.published}/${port.protocol}`);
        return owner === undefined
          ? []
          : [
              {
                path: `services.${name}.ports[${index}]`,
                message: `port ${port.published}/${port.protocol} is already published by ${owner}`,
              },
            ];
      }),
    );
    if (issues.length > 0) throw new ComposeError(issues);
  }

  private async currentRevision(stack: string, name: string): Promise<Revision | undefined> {
    const record = await this.store.service(stack, name);
    return record ? this.store.revision(serviceId(stack, name), record.desired) : undefined;
  }

  private async resolve(name: string, spec: ServiceSpec): Promise<string> {
    const reference = spec.digest !== null ? { digest: spec.digest } : { tag: spec.tag! };
    const lookup = await this.metadata.getManifest(spec.repository, reference);
    if (!lookup.found)
      throw new CodedError(DeployErrors.IMAGE_UNKNOWN, `services.${name}.image: ${spec.image} is not in this registry (push it first)`);
    const digest = lookup.manifest.digest;
    if (spec.tag !== null && spec.digest === null && (await this.store.isQuarantined(spec.repository, spec.tag, digest)))
      throw new CodedError(
        DeployErrors.DIGEST_QUARANTINED,
        `services.${name}.image: ${digest} failed a rollout of ${spec.repository}:${spec.tag}; push a new image`,
      );
    return digest;
  }
}

function assertStackName(stack: string): void {
  if (!STACK_NAME.test(stack))
    throw new CodedError(DeployErrors.REQUEST_INVALID, 'a stack name is lowercase letters, digits, - and _, at most 63 characters');
}

function newRevision(service: string, spec: ServiceSpec, digest: string, cause: Revision['cause']): NewRevision {
  return {
    service,
    revision: { spec, digest, cause, createdAt: new Date().toISOString() },
    tracked: spec.berth.track === null ? null : { repository: spec.repository, tag: spec.berth.track },
  };
}

function created(changes: NewRevision[], name: string): HistoryEntry {
  const change = changes.find((each) => each.service === name)!;
  return {
    at: change.revision.createdAt,
    revision: 0,
    event: 'created',
    detail: `${change.revision.cause}: ${change.revision.spec.repository}@${change.revision.digest}`,
  };
}
