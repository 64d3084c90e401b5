import test from 'ava';
import { silentLogger } from '../../platform/logger.js';
import type { CreateRequest } from '../../runtime-agent/api.js';
import type { ContainerRecord } from '../../runtime-agent/container/container-record.js';
import type { LogEntry } from '../../runtime-agent/container/logs/log-entry.js';
import { parsePublish } from '../../runtime-agent/container/run-options.js';
import type { Assignment, ReplicaReport } from '../../runtime-agent/node/assignment.js';
import { Converger, type ReplicaRuntime } from '../../runtime-agent/node/converger.js';

/**
 * A node's containers with what matters to the converger and nothing else: host port claims that a start
 * needs free (as the agent's network claims them) and stops that end only when the test says so.
 */
class FakeHost implements ReplicaRuntime {
  readonly records: ContainerRecord[] = [];
  /** `tcp-8081` -> the id of the container publishing it. */
  readonly claims = new Map<string, string>();
  holdStops = false;
  private readonly pendingStops: Array<() => void> = [];
  private ids = 0;

  containers(): ContainerRecord[] {
    return this.records;
  }

  async pull(): Promise<void> {}

  async create(request: CreateRequest): Promise<ContainerRecord> {
    const record = {
      id: `c${++this.ids}`,
      name: request.name ?? '',
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, this.ids)).toISOString(),
      spec: { labels: request.labels ?? {}, ports: (request.publish ?? []).flatMap(parsePublish), stopTimeoutSeconds: 1 },
      state: { status: 'created' },
      healthcheck: undefined,
    } as unknown as ContainerRecord;
    this.records.push(record);
    return record;
  }

  /** A container of someone else's holding a host port. */
  occupy(port: string): ContainerRecord {
    const record = {
      id: 'theirs',
      spec: { labels: {}, ports: [] },
      state: { status: 'running' },
      createdAt: new Date(0).toISOString(),
    } as unknown as ContainerRecord;
    this.records.push(record);
    this.claims.set(port, record.id);
    return record;
  }

  async start(id: string): Promise<void> {
    const record = this.get(id);
    for (const port of record.spec.ports) {
      const name = `${port.protocol}-${port.hostPort}`;
      const holder = this.claims.get(name);
      if (holder !== undefined && holder !== id) {
        Object.assign(record.state, {
          status: 'exited',
          error: `host port ${port.hostPort}/${port.protocol} is already published by another container`,
        });
        throw new Error(record.state.error);
      }
      this.claims.set(name, id);
    }
    record.state.status = 'running';
  }

  async stop(id: string): Promise<void> {
    if (this.holdStops) await new Promise<void>((resolve) => this.pendingStops.push(resolve));
    this.get(id).state.status = 'exited';
    this.release(id);
  }

  async remove(id: string): Promise<void> {
    this.release(id);
    this.records.splice(this.records.indexOf(this.get(id)), 1);
  }

  async movePorts(): Promise<void> {
    throw new Error('not used here');
  }

  logs(): AsyncIterable<LogEntry> {
    throw new Error('not used here');
  }

  finishStops(): void {
    this.holdStops = false;
    for (const resolve of this.pendingStops.splice(0)) resolve();
  }

  release(id: string): void {
    for (const [name, holder] of this.claims) if (holder === id) this.claims.delete(name);
  }

  private get(id: string): ContainerRecord {
    const record = this.records.find((candidate) => candidate.id === id);
    if (!record) throw new Error(`no container ${id}`);
    return record;
  }
}

const edge: Assignment = {
  replica: 'shop/edge/n2',
  stack: 'shop',
  service: 'edge',
  slot: 'n2',
  revision: 1,
  image: `shop@sha256:${'a'.repeat(64)}`,
  spec: {
    command: null,
    entrypoint: null,
    environment: {},
    ports: [{ target: 80, published: 8081, hostIp: null, protocol: 'tcp' }],
    volumes: [],
    healthcheck: null,
    labels: {},
    stopSignal: 'SIGTERM',
    stopGracePeriodMs: 1000,
    user: null,
    workingDir: null,
    readOnly: false,
    tmpfs: [],
    deploy: {
      limits: { cpus: null, memoryBytes: null, pids: null },
      restartPolicy: { condition: 'any', maxAttempts: null },
      update: { order: 'start-first' },
    },
    berth: { checks: [] },
  },
};

/** Lets the converger's background pulls, starts and stops run. */
const settle = async () => {
  for (let round = 0; round < 20; round++) await new Promise((resolve) => setImmediate(resolve));
};

function node(host: FakeHost) {
  let now = 0;
  const converger = new Converger(host, 'registry.test', silentLogger(), () => now);
  return {
    converger,
    later: (ms: number) => (now += ms),
    /** One tick of the node agent: converge, then what it would report. */
    tick: async (assignments: Assignment[]): Promise<ReplicaReport[]> => {
      converger.converge(assignments);
      await settle();
      return converger.reports(assignments);
    },
  };
}

test('a replica assigned while a retired container still holds its host port starts once that one is gone, never reported failed', async (t) => {
  const host = new FakeHost();
  const { tick } = node(host);
  t.is((await tick([edge]))[0]!.health, 'healthy');
  const first = host.records[0]!.id;

  // Taken away (an agent restarted and retiring what it adopted, or the registry moving it), then given back
  // while the old container is still within its stop grace period, holding port 8081.
  host.holdStops = true;
  await tick([]);
  const meanwhile = [await tick([edge]), await tick([edge])].flat();
  t.deepEqual(
    meanwhile.filter((report) => report.health === 'failed'),
    [],
    'not failed while the old container stops',
  );

  host.finishStops();
  await settle();
  const reports = await tick([edge]);
  t.is(reports[0]!.health, 'healthy', JSON.stringify(reports));
  t.is(host.records.length, 1, 'one container for the replica');
  t.not(host.records[0]!.id, first);
  t.is(host.claims.get('tcp-8081'), host.records[0]!.id, 'and it publishes the port');
});

test('a replica whose container cannot start is reported failed with the reason, and made again once the cause is gone', async (t) => {
  const host = new FakeHost();
  const { tick, later } = node(host);
  const theirs = host.occupy('tcp-8081');

  const failed = await tick([edge]);
  t.is(failed[0]!.health, 'failed');
  t.regex(failed[0]!.message, /host port 8081\/tcp is already published by another container/);
  t.deepEqual(
    host.records.map((record) => record.id),
    [theirs.id],
    'the container that could not start is not kept',
  );

  await host.remove(theirs.id);
  later(5_000);
  const reports = await tick([edge]);
  t.is(reports[0]!.health, 'healthy', JSON.stringify(reports));
  t.is(host.records.length, 1);
});

test('a replica that failed, was taken away and is assigned again is made at once, not reported failed for the old cause', async (t) => {
  const host = new FakeHost();
  const { tick } = node(host);
  const theirs = host.occupy('tcp-8081');
  t.is((await tick([edge]))[0]!.health, 'failed');

  await tick([]);
  await host.remove(theirs.id);
  // Within the 5 s retry delay of the old failure: a new assignment owes it nothing.
  const reports = await tick([edge]);
  t.is(reports[0]!.health, 'healthy', JSON.stringify(reports));
  t.is(host.records.length, 1);
});
