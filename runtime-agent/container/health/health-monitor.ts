import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from '../../../platform/logger.js';
import type { ContainerObserver } from '../container-observer.js';
import type { ContainerRecord } from '../container-record.js';
import { effectiveTiming, probeCommand } from './health-config.js';
import { runProbe, type RunningProbe } from './health-probe.js';
import { applyResult, healthAtStart, healthAtStop, nextProbeDelayMs, type HealthStatus } from './health-state.js';

export interface HealthMonitorDependencies {
  /** Starts a process in the running container (`runc exec`, the path `exec` takes), its stdio piped. */
  exec(containerId: string, args: string[]): ChildProcessWithoutNullStreams;
  /** Saves the record, whose state now holds the new health. */
  save(record: ContainerRecord): Promise<void>;
  /** The status changed (docker's `health_status` event). */
  statusChanged(record: ContainerRecord, status: HealthStatus): void;
  logger: Logger;
}

/** The checks of one run: the timer to the next probe, the probe in flight, the last save. */
interface Schedule {
  timer: NodeJS.Timeout | undefined;
  probe: RunningProbe | undefined;
  saving: Promise<void>;
  ended: boolean;
}

/**
 * Runs each running container's health check on docker's schedule and applies docker's rules to the
 * results; the state is saved with the record after every probe, so a restarted daemon resumes it (status,
 * failing streak and log) instead of starting over. Being unhealthy never restarts a container: it is an
 * event others act on, as in docker.
 */
export class HealthMonitor implements ContainerObserver {
  private readonly schedules = new Map<string, Schedule>();

  constructor(private readonly deps: HealthMonitorDependencies) {}

  started(record: ContainerRecord, resumed: boolean): void {
    if (!probeCommand(record.healthcheck, record.imageConfig.Shell)) return;
    const schedule: Schedule = { timer: undefined, probe: undefined, saving: Promise.resolve(), ended: false };
    this.schedules.set(record.id, schedule);
    if (!resumed || !record.state.health) {
      record.state.health = healthAtStart(record.state.health);
      this.save(record, schedule);
    }
    this.scheduleNext(record, schedule);
  }

  created(): void {}

  killed(): void {}

  stopped(): void {}

  destroyed(): void {}

  /** Ends the run's checks (a probe in flight is killed) and marks it unhealthy, as docker does. */
  async exited(record: ContainerRecord): Promise<void> {
    const schedule = this.schedules.get(record.id);
    this.schedules.delete(record.id);
    if (schedule) {
      schedule.ended = true;
      clearTimeout(schedule.timer);
      schedule.probe?.cancel();
      await schedule.probe?.result;
      await schedule.saving;
    }
    if (record.state.health) record.state.health = healthAtStop(record.state.health);
  }

  private scheduleNext(record: ContainerRecord, schedule: Schedule): void {
    const health = record.state.health;
    if (!health || !record.healthcheck) return;
    const delayMs = nextProbeDelayMs(health, record.healthcheck, record.state.startedAt);
    schedule.timer = setTimeout(() => void this.probe(record, schedule), delayMs);
  }

  private async probe(record: ContainerRecord, schedule: Schedule): Promise<void> {
    const config = record.healthcheck;
    const command = probeCommand(config, record.imageConfig.Shell);
    if (!config || !command || schedule.ended) return;
    schedule.probe = runProbe(() => this.deps.exec(record.id, command), effectiveTiming(config).timeoutMs);
    const result = await schedule.probe.result;
    schedule.probe = undefined;
    const before = record.state.health;
    if (schedule.ended || !before) return;
    const after = applyResult(before, result, config, record.state.startedAt);
    record.state.health = after;
    if (after.Status !== before.Status) this.deps.statusChanged(record, after.Status);
    this.save(record, schedule);
    this.scheduleNext(record, schedule);
  }

  private save(record: ContainerRecord, schedule: Schedule): void {
    schedule.saving = schedule.saving
      .then(() => this.deps.save(record))
      .catch((error: unknown) => this.deps.logger.warn({ err: error, container: record.id }, 'saving the health state failed'));
  }
}
