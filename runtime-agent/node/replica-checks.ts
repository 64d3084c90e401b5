import { request } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerRecord } from '../container/container-record.js';
import type { HealthConfig } from '../container/health/health-config.js';
import { applyResult, healthAtStart, nextProbeDelayMs, type HealthResult, type HealthState } from '../container/health/health-state.js';
import type { ReplicaCheck, ReplicaHealth } from './assignment.js';

/**
 * The `x-berth` http and tcp checks of the replicas: run by the agent from its own network namespace
 * against the container's bridge address and the container port (not a published port: a start-first
 * replica has none until it is healthy), with the compose healthcheck's timing and docker's rules
 * (health-state.ts): failures within the start period do not count, `retries` failures in a row make the
 * check unhealthy, one success makes it healthy. A container on the host network is reached on 127.0.0.1
 * (it shares the agent's namespace); one on `none` has no address the agent can reach, so its checks fail
 * and say so rather than pass unchecked.
 */

/** One check's state, for the replica's report. */
export interface CheckStatus {
  label: string;
  state: HealthState;
}

/** `http :80/healthz` or `tcp :5432`, as a report names the check. */
export function checkLabel(check: ReplicaCheck): string {
  return check.kind === 'http' ? `http :${check.port}${check.path}` : `tcp :${check.port}`;
}

/** The check's timing as a docker health config, so that docker's rules (health-state.ts) apply as they are. */
export function checkConfig(check: ReplicaCheck): HealthConfig {
  const { timing } = check;
  return {
    Test: ['CMD', checkLabel(check)],
    Interval: timing.intervalMs * 1e6,
    Timeout: timing.timeoutMs * 1e6,
    StartPeriod: timing.startPeriodMs * 1e6,
    StartInterval: timing.startIntervalMs * 1e6,
    Retries: timing.retries,
  };
}

/**
 * The replica's health: its container's (a failed or unhealthy container says why) and then every check's;
 * healthy only when the container and all the checks are. A failing check is named with its last answer.
 */
export function replicaHealth(
  container: { health: ReplicaHealth; message: string },
  checks: readonly CheckStatus[],
): { health: ReplicaHealth; message: string } {
  if (container.health === 'failed') return container;
  const unhealthy = checks.find((check) => check.state.Status === 'unhealthy');
  if (unhealthy) return { health: 'unhealthy', message: describe(unhealthy) };
  if (container.health !== 'healthy') return container;
  const starting = checks.find((check) => check.state.Status === 'starting');
  if (!starting) return container;
  const last = starting.state.Log.at(-1);
  const detail = last && last.ExitCode !== 0 ? ` (last: ${describe(starting)})` : '';
  return { health: 'starting', message: `waiting for ${starting.label}${detail}` };
}

function describe(check: CheckStatus): string {
  return `${check.label} ${check.state.Log.at(-1)?.Output ?? 'not run yet'}`;
}

/** The address the agent reaches the container at, or undefined when it has none (`--network none`). */
export function probeAddress(record: ContainerRecord): string | undefined {
  if (record.network?.mode === 'host') return '127.0.0.1';
  return record.network?.mode === 'bridge' ? record.network.ipAddress : undefined;
}

/** One probe, over within its timeout (or when `stop` aborts): exit code 0 when it passed, and what it saw. */
export async function probeOnce(check: ReplicaCheck, address: string | undefined, stop: AbortSignal): Promise<HealthResult> {
  const Start = new Date().toISOString();
  const timeout = AbortSignal.timeout(check.timing.timeoutMs);
  const signal = AbortSignal.any([stop, timeout]);
  let outcome: { passed: boolean; output: string };
  if (address === undefined) outcome = { passed: false, output: 'cannot be reached: the container has no network address' };
  else
    try {
      outcome =
        check.kind === 'http' ? await httpProbe(address, check.port, check.path, signal) : await tcpProbe(address, check.port, signal);
    } catch (error) {
      const output = timeout.aborted ? `timed out after ${check.timing.timeoutMs} ms` : `failed: ${(error as Error).message}`;
      outcome = { passed: false, output };
    }
  return { Start, End: new Date().toISOString(), ExitCode: outcome.passed ? 0 : 1, Output: outcome.output };
}

function httpProbe(host: string, port: number, path: string, signal: AbortSignal): Promise<{ passed: boolean; output: string }> {
  return new Promise((resolve, reject) => {
    // No keep-alive agent: every probe is its own connection, closed with it.
    const sent = request(
      { host, port, path, method: 'GET', agent: false, signal, headers: { 'User-Agent': 'berth-agent-check' } },
      (response) => {
        const status = response.statusCode ?? 0;
        response.destroy();
        resolve({ passed: status >= 200 && status < 400, output: `answered ${status}` });
      },
    );
    sent.on('error', reject);
    sent.end();
  });
}

function tcpProbe(host: string, port: number, signal: AbortSignal): Promise<{ passed: boolean; output: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ passed: true, output: 'accepted the connection' });
    });
    socket.once('error', reject);
  });
}

/** The checks of one run of one container: each check probes on its own schedule, one probe at a time. */
class CheckRun {
  readonly statuses: CheckStatus[];
  private readonly ended = new AbortController();

  constructor(
    readonly startedAt: string | undefined,
    checks: readonly ReplicaCheck[],
    address: string | undefined,
  ) {
    this.statuses = checks.map((check) => ({ label: checkLabel(check), state: healthAtStart(undefined) }));
    checks.forEach((check, index) => void this.loop(check, index, address));
  }

  stop(): void {
    this.ended.abort();
  }

  private async loop(check: ReplicaCheck, index: number, address: string | undefined): Promise<void> {
    const config = checkConfig(check);
    const signal = this.ended.signal;
    while (!signal.aborted) {
      const status = this.statuses[index]!;
      try {
        await sleep(nextProbeDelayMs(status.state, config, this.startedAt), undefined, { signal, ref: false });
      } catch {
        return;
      }
      // The next probe is scheduled only once this one is over: probes never pile up.
      const result = await probeOnce(check, address, signal);
      if (signal.aborted) return;
      status.state = applyResult(status.state, result, config, this.startedAt);
    }
  }
}

/** The checks of every assigned replica's container, started and stopped as the containers come and go. */
export class ReplicaChecks {
  /** Container id -> the checks of its current run. */
  private readonly runs = new Map<string, CheckRun>();

  /** Checks each running container given (again from the start when it was restarted); stops checking the others. */
  follow(targets: ReadonlyArray<{ record: ContainerRecord; checks: readonly ReplicaCheck[] }>): void {
    const wanted = new Map(
      targets
        .filter((target) => target.checks.length > 0 && target.record.state.status === 'running')
        .map((target) => [target.record.id, target]),
    );
    for (const [id, run] of this.runs) {
      if (wanted.get(id)?.record.state.startedAt === run.startedAt) continue;
      run.stop();
      this.runs.delete(id);
    }
    for (const [id, { record, checks }] of wanted)
      if (!this.runs.has(id)) this.runs.set(id, new CheckRun(record.state.startedAt, checks, probeAddress(record)));
  }

  /** Where the container's checks stand; `starting` for checks not running (yet). */
  statuses(record: ContainerRecord, checks: readonly ReplicaCheck[]): CheckStatus[] {
    const run = this.runs.get(record.id);
    if (run && run.startedAt === record.state.startedAt) return run.statuses;
    return checks.map((check) => ({ label: checkLabel(check), state: healthAtStart(undefined) }));
  }

  stop(): void {
    for (const run of this.runs.values()) run.stop();
    this.runs.clear();
  }
}
