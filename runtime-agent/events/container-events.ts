import { constants } from 'node:os';
import type { ContainerObserver } from '../container/container-observer.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { HealthStatus } from '../container/health/health-state.js';
import type { ExitRecord } from '../shim/shim-protocol.js';
import type { EventBus } from './event-bus.js';

/**
 * The container lifecycle as docker's events: create, start, kill (signal), oom, die (exitCode, execDuration),
 * stop, destroy and `health_status: <status>`, each with the container's image, name and labels.
 */
export class ContainerEvents implements ContainerObserver {
  constructor(private readonly bus: EventBus) {}

  created(record: ContainerRecord): void {
    this.publish(record, 'create');
  }

  started(record: ContainerRecord, resumed: boolean): void {
    if (!resumed) this.publish(record, 'start');
  }

  killed(record: ContainerRecord, signal: string): void {
    const number = (constants.signals as Record<string, number>)[signal];
    this.publish(record, 'kill', { signal: String(number ?? signal) });
  }

  async exited(record: ContainerRecord, exit: ExitRecord): Promise<void> {
    const startedAt = Date.parse(record.state.startedAt ?? exit.finishedAt);
    const seconds = Math.max(0, Math.floor((Date.parse(exit.finishedAt) - startedAt) / 1000));
    // docker's order: the OOM notification comes first, then the death it caused.
    if (exit.oomKilled === true) this.publish(record, 'oom');
    this.publish(record, 'die', { exitCode: String(exit.exitCode), execDuration: String(seconds) });
  }

  stopped(record: ContainerRecord): void {
    this.publish(record, 'stop');
  }

  destroyed(record: ContainerRecord): void {
    this.publish(record, 'destroy');
  }

  healthChanged(record: ContainerRecord, status: HealthStatus): void {
    this.publish(record, `health_status: ${status}`);
  }

  private publish(record: ContainerRecord, Action: string, extra: Record<string, string> = {}): void {
    const Attributes = { ...(record.imageConfig.Labels ?? {}), ...extra, image: record.spec.image, name: record.name };
    this.bus.publish({ Type: 'container', Action, Actor: { ID: record.id, Attributes } });
  }
}
