import type { ExitRecord } from '../shim/shim-protocol.js';
import type { ContainerRecord } from './container-record.js';

/**
 * What the container manager tells the rest of the agent about a container's life: the event stream and
 * the health checks hang here, so the manager knows neither.
 */
export interface ContainerObserver {
  created(record: ContainerRecord): void;
  /** A run began; `resumed` when it is one that outlived the previous daemon, found again at start. */
  started(record: ContainerRecord, resumed: boolean): void;
  /** A signal is about to be sent to the running container. */
  killed(record: ContainerRecord, signal: string): void;
  /** The run ended (its exit is in the record); awaited before the run's resources are released. */
  exited(record: ContainerRecord, exit: ExitRecord): Promise<void>;
  /** `stop` brought the container down. */
  stopped(record: ContainerRecord): void;
  /** The container and its files are gone. */
  destroyed(record: ContainerRecord): void;
}

/** Several observers as one, told in order. */
export function observeAll(observers: readonly ContainerObserver[]): ContainerObserver {
  return {
    created: (record) => observers.forEach((observer) => observer.created(record)),
    started: (record, resumed) => observers.forEach((observer) => observer.started(record, resumed)),
    killed: (record, signal) => observers.forEach((observer) => observer.killed(record, signal)),
    exited: async (record, exit) => {
      for (const observer of observers) await observer.exited(record, exit);
    },
    stopped: (record) => observers.forEach((observer) => observer.stopped(record)),
    destroyed: (record) => observers.forEach((observer) => observer.destroyed(record)),
  };
}
