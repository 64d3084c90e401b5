import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ContainerRecord } from '../../runtime-agent/container/container-record.js';
import { applyResult, healthAtStart } from '../../runtime-agent/container/health/health-state.js';
import type { ReplicaCheck } from '../../runtime-agent/node/assignment.js';
import { checkConfig, ReplicaChecks, replicaHealth, type CheckStatus } from '../../runtime-agent/node/replica-checks.js';
import { eventually } from '../helpers/eventually.js';

const timing = { intervalMs: 100, timeoutMs: 300, retries: 3, startPeriodMs: 0, startIntervalMs: 100 };
const http = (port: number, path: string, overrides: Partial<typeof timing> = {}): ReplicaCheck => ({
  kind: 'http',
  port,
  path,
  timing: { ...timing, ...overrides },
});
const result = (at: number, passed: boolean) => ({
  Start: new Date(at).toISOString(),
  End: new Date(at).toISOString(),
  ExitCode: passed ? 0 : 1,
  Output: passed ? 'answered 200' : 'answered 503',
});

test('a check ignores failures within its start period, is unhealthy after retries failures in a row, healthy after one success', (t) => {
  const check = http(80, '/healthz', { startPeriodMs: 1000, retries: 2 });
  const config = checkConfig(check);
  const started = new Date(0).toISOString();
  let state = healthAtStart(undefined);
  for (const at of [100, 500, 900]) state = applyResult(state, result(at, false), config, started);
  t.is(state.Status, 'starting', 'failures within the start period do not count');
  t.is(state.FailingStreak, 0);
  state = applyResult(state, result(1100, false), config, started);
  t.is(state.Status, 'starting', 'one failure of two retries');
  state = applyResult(state, result(1200, false), config, started);
  t.is(state.Status, 'unhealthy');
  state = applyResult(state, result(1300, true), config, started);
  t.is(state.Status, 'healthy', 'one success is enough');
});

test('a replica is healthy only when its container and every check are, and a failing check is named with its answer', (t) => {
  const status = (label: string, Status: CheckStatus['state']['Status'], passed: boolean): CheckStatus => ({
    label,
    state: { Status, FailingStreak: passed ? 0 : 3, Log: [result(0, passed)] },
  });
  const running = { health: 'healthy' as const, message: 'running (healthy)' };
  t.deepEqual(replicaHealth(running, [status('tcp :5432', 'healthy', true), status('http :80/healthz', 'healthy', true)]), running);
  t.deepEqual(replicaHealth(running, [status('tcp :5432', 'healthy', true), status('http :80/healthz', 'unhealthy', false)]), {
    health: 'unhealthy',
    message: 'http :80/healthz answered 503',
  });
  t.deepEqual(replicaHealth(running, [status('http :80/healthz', 'starting', false)]), {
    health: 'starting',
    message: 'waiting for http :80/healthz (last: http :80/healthz answered 503)',
  });
  const unhealthyContainer = { health: 'unhealthy' as const, message: 'running (unhealthy): exit code 1' };
  t.deepEqual(replicaHealth(unhealthyContainer, [status('tcp :5432', 'healthy', true)]), unhealthyContainer);
  const failed = { health: 'failed' as const, message: 'exited with code 1' };
  t.deepEqual(replicaHealth(failed, [status('tcp :5432', 'unhealthy', false)]), failed);
});

/** A server on 127.0.0.1 answering 200 on /ok, 404 elsewhere, never on /hang; counts requests, and those to /hang in flight. */
async function checkedServer(t: { teardown(fn: () => void): void }) {
  const seen = { requests: 0, hanging: 0, mostHanging: 0 };
  const server: Server = createServer((request, response) => {
    seen.requests++;
    if (request.url !== '/hang') {
      response.statusCode = request.url === '/ok' ? 200 : 404;
      response.end();
      return;
    }
    seen.hanging++;
    seen.mostHanging = Math.max(seen.mostHanging, seen.hanging);
    response.on('close', () => seen.hanging--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

/** A running container on the host network: its checks reach 127.0.0.1. */
const container = (id: string): ContainerRecord =>
  ({
    id,
    state: { status: 'running', startedAt: new Date().toISOString() },
    network: { mode: 'host', netnsPath: undefined, ipAddress: undefined, gateway: undefined, ports: [] },
  }) as unknown as ContainerRecord;

test('the checks probe the container: a 404 makes it unhealthy, a 200 healthy, a hung answer times out without probes piling up, and they stop with the container', async (t) => {
  const { port, seen } = await checkedServer(t);
  const checks = new ReplicaChecks();
  t.teardown(() => checks.stop());
  const [missing, ok, hung] = [container('a'), container('b'), container('c')];
  const targets = [
    { record: missing, checks: [http(port, '/missing')] },
    { record: ok, checks: [http(port, '/ok'), { kind: 'tcp' as const, port, timing }] },
    { record: hung, checks: [http(port, '/hang', { timeoutMs: 200, retries: 2 })] },
  ];
  checks.follow(targets);
  const stateOf = ({ record, checks: list }: (typeof targets)[number]) =>
    replicaHealth({ health: 'healthy', message: 'running' }, checks.statuses(record, list));
  const settled = await eventually(
    async () => targets.map(stateOf),
    (states) => states.every((state) => state.health !== 'starting'),
    10_000,
  );
  t.deepEqual(settled, [
    { health: 'unhealthy', message: `http :${port}/missing answered 404` },
    { health: 'healthy', message: 'running' },
    { health: 'unhealthy', message: `http :${port}/hang timed out after 200 ms` },
  ]);
  // The hung check goes on probing every interval: each probe is over (its connection closed) before the next.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(seen.mostHanging, 1, 'one probe of the hung check in flight at a time');

  checks.follow([]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const after = seen.requests;
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is(seen.requests, after, 'no probe once the containers are gone');
});

test('a container without a network address fails its checks, saying so', async (t) => {
  const checks = new ReplicaChecks();
  t.teardown(() => checks.stop());
  const record = { ...container('d'), network: undefined } as ContainerRecord;
  const list = [{ kind: 'tcp' as const, port: 80, timing: { ...timing, retries: 1 } }];
  checks.follow([{ record, checks: list }]);
  const state = await eventually(
    async () => replicaHealth({ health: 'healthy', message: 'running' }, checks.statuses(record, list)),
    (health) => health.health !== 'starting',
    5_000,
  );
  t.deepEqual(state, { health: 'unhealthy', message: 'tcp :80 cannot be reached: the container has no network address' });
});
